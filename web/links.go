package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
)

var errCrossOrigin = newError(http.StatusForbidden, "cross_origin", "an upload link is redeemed only by casedrop's own page")

type linkRequest struct {
	// TTLSeconds is how long the link lives: 600 when 0, at most 3600.
	TTLSeconds int `json:"ttl_seconds"`
}

// Link is the JSON of an upload link just issued: the only time its code
// is shown.
type Link struct {
	Code string `json:"code"`
	// URL is the case page with the code in the fragment, which browsers
	// never send to a server.
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// issueLink answers POST /api/v1/cases/{case}/links (admin).
func (s *server) issueLink(w http.ResponseWriter, r *http.Request) error {
	var req linkRequest
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	ttl := time.Duration(req.TTLSeconds) * time.Second
	if req.TTLSeconds < 0 || ttl > cases.MaxLinkTTL {
		return newError(http.StatusBadRequest, "invalid_ttl", "ttl_seconds must be between 1 and 3600")
	}
	caseID := r.PathValue("case")
	link, err := s.Catalog.IssueLink(r.Context(), caseID, ttl, actor(r, "api"))
	if err := s.done(r, err); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "upload link issued", "case", caseID, "link", link.ID, "expires_at", link.ExpiresAt)
	writeJSON(w, http.StatusCreated, Link{Code: link.Code, URL: LinkURL(s.PublicURL, caseID, link.Code), ExpiresAt: link.ExpiresAt})
	return nil
}

// LinkURL is the case page under publicURL that redeems code: the code
// rides in the fragment, which browsers never send to a server.
func LinkURL(publicURL, caseID, code string) string {
	return publicURL + "/cases/" + url.PathEscape(caseID) + "#link=" + code
}

type redeemRequest struct {
	Case string `json:"case"`
	Code string `json:"code"`
}

// redeemLink answers POST /api/v1/links/redeem: the case page trades the
// code of its link for a new customer credential. Only the page itself
// may: a browser names the page that sends a POST in Origin, and any
// other origin is refused, never with CORS, so that a portal that frames
// the page cannot take the credential. A refused code counts as a failed
// login against its source.
func (s *server) redeemLink(w http.ResponseWriter, r *http.Request) error {
	for name := range w.Header() {
		if strings.HasPrefix(name, "Access-Control-") {
			w.Header().Del(name) // whatever wraps this handler: no CORS here
		}
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != s.publicOrigin {
		return errCrossOrigin
	}
	var req redeemRequest // none at all is a code not found
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	remote := clientAddr(r)
	cred, err := s.Catalog.RedeemLink(r.Context(), s.Issuer, req.Case, req.Code, cases.Actor{Door: "api", Remote: remote.String()})
	if linkRefused(err) {
		k := auth.Knock{Door: "api", Remote: remote, On: cases.CleanDetail(r.Method + " " + r.URL.Path)}
		if refused := s.gate.Refuse(r.Context(), k, err); refused.Limited {
			return tooManyTries{errTooManyTries, refused.RetryAfter}
		}
		return err
	}
	if err := s.done(r, err); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "upload link redeemed", "case", cred.Case, "credential", cred.ID, "expires_at", cred.ExpiresAt)
	writeJSON(w, http.StatusOK, s.credentialView(cred))
	return nil
}

// linkRefused reports whether err refuses the link itself, which counts
// against its source as a refused credential does.
func linkRefused(err error) bool {
	for _, e := range []error{cases.ErrLinkNotFound, cases.ErrLinkUsed, cases.ErrLinkExpired, cases.ErrCaseClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// originOf is the origin a browser names in Origin for pages under
// publicURL: scheme://host[:port], the host in lower case, without the
// scheme's default port.
func originOf(publicURL string) string {
	u, err := url.Parse(publicURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && !(scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		host += ":" + port
	}
	return scheme + "://" + host
}
