package testserver

import "net/http"

// Via returns a copy of s whose API and tus helpers (OpenCase, Credential,
// Create, Head, Files, Download...) send their requests to url with
// client instead: through a load balancer in front of s and other
// instances, say. The copy is for requests only: Kill, Stop, Restart and
// the other methods of the process belong to s.
func (s *Server) Via(url string, client *http.Client) *Server {
	v := *s
	v.URL, v.Client = url, client
	return &v
}
