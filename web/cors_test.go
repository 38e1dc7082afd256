package web_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/web"
)

const (
	portal    = "https://support.example.com"
	devPortal = "http://127.0.0.1:9000"
)

// newEmbeddedEnv serves the surface with the portal's origins listed.
func newEmbeddedEnv(t *testing.T) *env {
	return newEnv(t, func(c *web.Config) { c.EmbedOrigins = []string{portal, devPortal} })
}

// preflight sends what a browser sends before a cross-origin method on path.
func (e *env) preflight(origin, method, path string, headers string) *http.Response {
	e.t.Helper()
	return e.do("OPTIONS", path, "", nil, "Origin", origin, "Access-Control-Request-Method", method,
		"Access-Control-Request-Headers", headers)
}

// corsHeaders returns the Access-Control-* headers of resp.
func corsHeaders(resp *http.Response) []string {
	var names []string
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			names = append(names, k)
		}
	}
	return names
}

// headerList reads a comma-separated header as lower-case names.
func headerList(resp *http.Response, name string) []string {
	var out []string
	for _, v := range resp.Header.Values(name) {
		for _, item := range strings.Split(v, ",") {
			out = append(out, strings.ToLower(strings.TrimSpace(item)))
		}
	}
	return out
}

func varies(resp *http.Response, name string) bool {
	return slices.Contains(headerList(resp, "Vary"), strings.ToLower(name))
}

// The requests a case credential makes cross-origin, by method and path.
func crossOriginRequests(e *env, caseID, token string) []struct{ method, path, headers string } {
	upload := e.create(token, 3, meta("filename", "a.txt"))
	return []struct{ method, path, headers string }{
		{"POST", "/files/", "authorization,tus-resumable,upload-length,upload-metadata"},
		{"POST", "/files/", "authorization,tus-resumable,upload-defer-length,upload-metadata,x-request-id"},
		{"HEAD", upload, "authorization,tus-resumable"},
		{"PATCH", upload, "authorization,content-type,tus-resumable,upload-checksum,upload-offset"},
		{"POST", upload, "authorization,content-type,tus-resumable,upload-offset,x-http-method-override,x-requested-with"},
		{"DELETE", upload, "authorization,tus-resumable"},
		{"GET", "/api/v1/whoami", "authorization"},
		{"GET", "/api/v1/cases/" + caseID + "/files", "authorization"},
		{"POST", "/api/v1/cases/" + caseID + "/download-links", "authorization,content-type"},
		{"GET", "/api/v1/cases/" + caseID + "/files/a.txt", "authorization,if-range,range"},
		{"HEAD", "/api/v1/cases/" + caseID + "/files/a.txt", "authorization"},
		{"GET", "/api/v1/cases/" + caseID + "/SHA256SUMS", "authorization"},
		{"GET", "/api/v1/cases/" + caseID + "/SHA256SUMS.sig", "authorization"},
		{"GET", "/api/v1/cases/" + caseID + "/SHA256SUMS.sshsig", "authorization"},
		{"GET", "/api/v1/cases/" + caseID + "/archive.zip", "authorization"},
	}
}

func TestAListedOriginsPreflightIsAllowedOnTusAndTheCaseAPIWithoutACredential(t *testing.T) {
	e := newEmbeddedEnv(t)
	cred := e.openCase("c1")
	for _, req := range crossOriginRequests(e, "c1", cred.Token) {
		for _, origin := range []string{portal, devPortal} {
			resp := e.preflight(origin, req.method, req.path, req.headers)
			e.expect(resp, http.StatusNoContent)
			h := resp.Header
			switch {
			case h.Get("Access-Control-Allow-Origin") != origin:
				t.Errorf("%s %s from %s: Allow-Origin %q", req.method, req.path, origin, h.Get("Access-Control-Allow-Origin"))
			case !slices.Contains(headerList(resp, "Access-Control-Allow-Methods"), strings.ToLower(req.method)):
				t.Errorf("%s %s: Allow-Methods %q", req.method, req.path, h.Values("Access-Control-Allow-Methods"))
			case strings.Join(headerList(resp, "Access-Control-Allow-Headers"), ",") != req.headers:
				t.Errorf("%s %s: Allow-Headers %q, want %s", req.method, req.path, h.Values("Access-Control-Allow-Headers"), req.headers)
			case h.Get("Access-Control-Max-Age") != "86400":
				t.Errorf("%s %s: Max-Age %q", req.method, req.path, h.Get("Access-Control-Max-Age"))
			case h.Get("Access-Control-Allow-Credentials") != "":
				t.Errorf("%s %s: Allow-Credentials is sent; credentials are bearer headers", req.method, req.path)
			case !varies(resp, "Origin"):
				t.Errorf("%s %s: Vary %q", req.method, req.path, h.Values("Vary"))
			}
		}
	}
}

func TestAPreflightFromAnyOtherOriginIsRefusedWithoutCORSHeaders(t *testing.T) {
	e := newEmbeddedEnv(t)
	cred := e.openCase("c1")
	others := []string{"https://evil.example", "https://support.example.com.evil.example", "http://support.example.com",
		"https://support.example.com:8443", "http://127.0.0.1:9001", "null", "*"}
	for _, req := range crossOriginRequests(e, "c1", cred.Token) {
		for _, origin := range others {
			resp := e.preflight(origin, req.method, req.path, req.headers)
			e.expect(resp, http.StatusForbidden)
			if got := corsHeaders(resp); len(got) > 0 {
				t.Errorf("%s %s from %s: %v sent", req.method, req.path, origin, got)
			}
		}
	}
	// A listed origin asking for a method or header outside the policy.
	for _, bad := range []struct{ method, headers string }{{"PUT", "authorization"}, {"POST", "authorization,cookie"}, {"POST", "x-secret"}} {
		resp := e.preflight(portal, bad.method, "/files/", bad.headers)
		e.expect(resp, http.StatusForbidden)
		if got := corsHeaders(resp); len(got) > 0 {
			t.Errorf("preflight for %s with %s: %v sent", bad.method, bad.headers, got)
		}
	}
}

func TestAListedOriginReadsTusAndTheCaseAPIsAnswersAndHeaders(t *testing.T) {
	e := newEmbeddedEnv(t)
	cred := e.openCase("c1")
	exposed := func(t *testing.T, resp *http.Response, names ...string) {
		t.Helper()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != portal {
			t.Fatalf("%s %s: Allow-Origin %q, want %s", resp.Request.Method, resp.Request.URL.Path, got, portal)
		}
		if !varies(resp, "Origin") {
			t.Errorf("%s %s: Vary %q", resp.Request.Method, resp.Request.URL.Path, resp.Header.Values("Vary"))
		}
		if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s %s: Allow-Credentials is sent", resp.Request.Method, resp.Request.URL.Path)
		}
		list := headerList(resp, "Access-Control-Expose-Headers")
		for _, n := range names {
			if !slices.Contains(list, strings.ToLower(n)) {
				t.Errorf("%s %s: %s is not exposed (%v)", resp.Request.Method, resp.Request.URL.Path, n, list)
			}
		}
	}
	t.Run("tus creation, offset, upload and termination", func(t *testing.T) {
		resp := e.do("POST", "/files/", cred.Token, nil, "Origin", portal, "Tus-Resumable", "1.0.0",
			"Upload-Length", "3", "Upload-Metadata", meta("filename", "a.txt"))
		e.expect(resp, http.StatusCreated)
		exposed(t, resp, "Location", "Upload-Offset", "Tus-Resumable", "Upload-Length", "Upload-Metadata",
			"Upload-Defer-Length", "Upload-Expires", "Tus-Version", "Tus-Extension", "Tus-Max-Size")
		if len(resp.Header.Values("Access-Control-Allow-Origin")) != 1 || len(resp.Header.Values("Access-Control-Expose-Headers")) != 1 {
			t.Errorf("tusd added CORS headers of its own: %q", resp.Header)
		}
		upload := strings.TrimPrefix(resp.Header.Get("Location"), e.srv.URL)
		upload = upload[strings.Index(upload, "/files/"):]
		resp = e.do("HEAD", upload, cred.Token, nil, "Origin", portal, "Tus-Resumable", "1.0.0")
		e.expect(resp, http.StatusOK)
		exposed(t, resp, "Upload-Offset", "Upload-Length")
		resp = e.do("PATCH", upload, cred.Token, strings.NewReader("abc"), "Origin", portal, "Tus-Resumable", "1.0.0",
			"Upload-Offset", "0", "Content-Type", "application/offset+octet-stream")
		e.expect(resp, http.StatusNoContent)
		exposed(t, resp, "Upload-Offset")
		second := e.create(cred.Token, 3, meta("filename", "b.txt"))
		resp = e.do("DELETE", second, cred.Token, nil, "Origin", portal, "Tus-Resumable", "1.0.0")
		e.expect(resp, http.StatusNoContent)
		exposed(t, resp)
	})
	t.Run("the case API and downloads", func(t *testing.T) {
		for _, path := range []string{"/api/v1/whoami", "/api/v1/cases/c1/files", "/api/v1/cases/c1/SHA256SUMS", "/api/v1/cases/c1/archive.zip"} {
			exposed(t, e.do("GET", path, cred.Token, nil, "Origin", portal))
		}
		resp := e.do("GET", "/api/v1/cases/c1/files/a.txt", cred.Token, nil, "Origin", portal, "Range", "bytes=1-")
		e.expect(resp, http.StatusPartialContent)
		exposed(t, resp, "Content-Disposition", "Content-Length", "Content-Range", "Repr-Digest", "ETag")
		resp = e.do("GET", "/api/v1/cases/c1/files/a.txt", cred.Token, nil, "Origin", devPortal)
		e.expect(resp, http.StatusOK)
		if resp.Header.Get("Access-Control-Allow-Origin") != devPortal {
			t.Errorf("download from %s: Allow-Origin %q", devPortal, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("errors, which the portal must be able to read", func(t *testing.T) {
		resp := e.do("GET", "/api/v1/whoami", "not-a-token", nil, "Origin", portal)
		e.expect(resp, http.StatusUnauthorized)
		exposed(t, resp)
		resp = e.do("POST", "/files/", cred.Token, nil, "Origin", portal, "Tus-Resumable", "1.0.0", "Upload-Length", "x")
		e.expect(resp, http.StatusBadRequest)
		exposed(t, resp)
	})
}

func TestAnotherOriginsRequestsGetNoCORSHeaders(t *testing.T) {
	e := newEmbeddedEnv(t)
	cred := e.openCase("c1")
	for _, origin := range []string{"https://evil.example", "null", e.srv.URL} {
		resp := e.do("POST", "/files/", cred.Token, nil, "Origin", origin, "Tus-Resumable", "1.0.0",
			"Upload-Length", "3", "Upload-Metadata", meta("filename", "a.txt"))
		e.expect(resp, http.StatusCreated) // the server is no gate: the browser keeps the answer from the script
		if got := corsHeaders(resp); len(got) > 0 {
			t.Errorf("tus creation from %s: %v sent", origin, got)
		}
		resp = e.do("GET", "/api/v1/cases/c1/files", cred.Token, nil, "Origin", origin)
		e.expect(resp, http.StatusOK)
		if got := corsHeaders(resp); len(got) > 0 {
			t.Errorf("file list from %s: %v sent", origin, got)
		}
	}
}

func TestTheAdminAPIAndThePagesAnswerNoOriginEvenAListedOne(t *testing.T) {
	e := newEmbeddedEnv(t)
	e.openCase("c1")
	t.Run("preflights of admin routes", func(t *testing.T) {
		for _, req := range []struct{ method, path string }{
			{"PUT", "/api/v1/cases/c2"}, {"GET", "/api/v1/cases/c1"}, {"POST", "/api/v1/cases/c1/close"},
			{"POST", "/api/v1/cases/c1/credentials"}, {"GET", "/api/v1/cases/c1/credentials"},
			{"DELETE", "/api/v1/credentials/x"}, {"GET", "/api/v1/cases/c1/audit"}, {"GET", "/api/v1/audit"},
			{"GET", "/api/v1/cases"}, {"POST", "/api/v1/purge"},
		} {
			resp := e.preflight(portal, req.method, req.path, "authorization,content-type")
			e.expect(resp, http.StatusNotFound) // as without --embed-origins
			if got := corsHeaders(resp); len(got) > 0 {
				t.Errorf("preflight of %s %s: %v sent", req.method, req.path, got)
			}
		}
	})
	t.Run("admin requests", func(t *testing.T) {
		for _, req := range []struct{ method, path string }{
			{"GET", "/api/v1/cases/c1"}, {"GET", "/api/v1/cases/c1/credentials"}, {"GET", "/api/v1/cases"},
			// a case route the admin token opens too: its answer is not shared
			{"GET", "/api/v1/cases/c1/files"}, {"GET", "/api/v1/cases/c1/SHA256SUMS"},
		} {
			resp := e.do(req.method, req.path, adminToken, nil, "Origin", portal)
			e.expect(resp, http.StatusOK)
			if got := corsHeaders(resp); len(got) > 0 {
				t.Errorf("%s %s with the admin token: %v sent", req.method, req.path, got)
			}
		}
	})
	t.Run("pages and other routes", func(t *testing.T) {
		for _, path := range []string{"/cases/c1", "/staff/cases/c1", "/healthz", "/api/v1/manifest-key.pem"} {
			resp := e.do("GET", path, "", nil, "Origin", portal)
			if got := corsHeaders(resp); len(got) > 0 {
				t.Errorf("GET %s: %v sent", path, got)
			}
			resp = e.preflight(portal, "GET", path, "authorization")
			if got := corsHeaders(resp); len(got) > 0 {
				t.Errorf("preflight of %s: %v sent", path, got)
			}
		}
	})
}

func TestWithoutEmbedOriginsNoOriginGetsCORSHeadersAndPreflightsAreAnsweredAsBefore(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("c1")
	resp := e.preflight(portal, "POST", "/files/", "authorization,tus-resumable,upload-length")
	e.expect(resp, http.StatusOK) // tusd's protocol discovery
	if got := corsHeaders(resp); len(got) > 0 {
		t.Errorf("tus preflight: %v sent", got)
	}
	resp = e.preflight(portal, "GET", "/api/v1/cases/c1/files", "authorization")
	e.expect(resp, http.StatusNotFound)
	if got := corsHeaders(resp); len(got) > 0 {
		t.Errorf("API preflight: %v sent", got)
	}
	resp = e.do("GET", "/api/v1/cases/c1/files", cred.Token, nil, "Origin", portal)
	e.expect(resp, http.StatusOK)
	if got := corsHeaders(resp); len(got) > 0 {
		t.Errorf("file list: %v sent", got)
	}
}

func TestTheServerRefusesOriginsNotInTheParsedForm(t *testing.T) {
	for _, o := range []string{"*", "https://Support.example.com", "https://support.example.com/", "null"} {
		cfg := web.Config{EmbedOrigins: []string{o}}
		if _, err := web.New(cfg); err == nil || !strings.Contains(err.Error(), o) {
			t.Errorf("%q: %v, want refused", o, err)
		}
	}
}
