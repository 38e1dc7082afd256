package web_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/web"
)

// mintLinks asks for download links with token and returns them.
func (e *env) mintLinks(caseID, token string, downloads ...string) []web.DownloadLink {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"downloads": downloads})
	var got web.DownloadLinks
	resp := e.do("POST", "/api/v1/cases/"+caseID+"/download-links", token, bytes.NewReader(body), "Content-Type", "application/json")
	if err := json.Unmarshal(e.expect(resp, http.StatusOK), &got); err != nil {
		e.t.Fatal(err)
	}
	if len(got.Links) != len(downloads) {
		e.t.Fatalf("%d links for %d downloads", len(got.Links), len(downloads))
	}
	return got.Links
}

// follow fetches a link's URL here, as a browser does: no header but
// those given.
func (e *env) follow(method, linkURL string, headers ...string) *http.Response {
	e.t.Helper()
	u, err := url.Parse(linkURL)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(method, u.RequestURI(), "", nil, headers...)
}

// linkOf returns the download link in a link's URL.
func linkOf(t *testing.T, linkURL string) string {
	t.Helper()
	u, err := url.Parse(linkURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("dl")
}

// withFile opens caseID with a customer credential that uploads name.
func (e *env) withFile(caseID, name string, data []byte) credential {
	e.t.Helper()
	cred := e.openCase(caseID)
	path := e.create(cred.Token, len(data), meta("filename", name))
	e.expect(e.patch(cred.Token, path, 0, data), http.StatusNoContent)
	return cred
}

func TestADownloadLinkDownloadsItsFileWithoutAHeaderAsTheBrowserSavesIt(t *testing.T) {
	e := newEnv(t)
	data := bytes.Repeat([]byte("core dump "), 10000)
	e.withFile("c1", "core dump é.bin", data)
	staff := e.credential("c1", "staff")
	links := e.mintLinks("c1", staff.Token, "files/core dump é.bin")
	l := links[0]
	if l.Download != "files/core dump é.bin" || !strings.HasPrefix(l.URL, "https://casedrop.example/api/v1/cases/c1/files/core%20dump%20%C3%A9.bin?dl=") {
		t.Fatalf("link %+v", l)
	}
	if want := e.clock.Now().Truncate(time.Second).Add(auth.DownloadLinkTTL); !l.ExpiresAt.Equal(want) {
		t.Fatalf("expires_at %v, want %v", l.ExpiresAt, want)
	}

	resp := e.follow("GET", l.URL)
	if got := e.expect(resp, http.StatusOK); !bytes.Equal(got, data) {
		t.Fatal("the bytes differ")
	}
	for name, want := range map[string]string{
		"Content-Disposition": `attachment; filename="core dump _.bin"; filename*=UTF-8''core%20dump%20%C3%A9.bin`,
		"Referrer-Policy":     "no-referrer",
		"Cache-Control":       "no-store",
		"Repr-Digest":         "sha-256=:" + b64sha(data) + ":",
		"Accept-Ranges":       "bytes",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	t.Run("a range is served, as a download manager resumes", func(t *testing.T) {
		resp := e.follow("GET", l.URL, "Range", "bytes=5000-", "If-Range", resp.Header.Get("ETag"))
		if got := e.expect(resp, http.StatusPartialContent); !bytes.Equal(got, data[5000:]) {
			t.Fatal("the range's bytes differ")
		}
	})
	t.Run("HEAD answers", func(t *testing.T) {
		if resp := e.follow("HEAD", l.URL); resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
			t.Fatalf("HEAD: %s, length %d", resp.Status, resp.ContentLength)
		}
	})
	t.Run("a name in another case or spelling is the catalog's in the link", func(t *testing.T) {
		l := e.mintLinks("c1", staff.Token, "files/CORE DUMP É.bin")[0]
		if l.Download != "files/core dump é.bin" {
			t.Fatalf("download %q", l.Download)
		}
		e.expect(e.follow("GET", l.URL), http.StatusOK)
	})
}

func b64sha(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func TestDownloadLinksOpenTheCasesZipManifestAndSignatures(t *testing.T) {
	e := newEnv(t)
	customer := e.withFile("c1", "a.txt", []byte("hello"))
	links := e.mintLinks("c1", customer.Token, "archive.zip", "SHA256SUMS", "SHA256SUMS.sig", "SHA256SUMS.sshsig")
	for _, l := range links {
		t.Run(l.Download, func(t *testing.T) {
			resp := e.follow("GET", l.URL)
			e.expect(resp, http.StatusOK)
			if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; ") {
				t.Errorf("Content-Disposition %q", cd)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
		})
	}
}

func TestADownloadLinkIsRefusedForAnythingButItsOneDownloadWhileItsCredentialLives(t *testing.T) {
	e := newEnv(t)
	e.withFile("c1", "a.txt", []byte("hello"))
	e.withFile("c2", "a.txt", []byte("other case"))
	staff := e.credential("c1", "staff")
	link := e.mintLinks("c1", staff.Token, "files/a.txt")[0].URL
	dl := linkOf(t, link)

	refused := []struct {
		name, method, path, token string
		status                    int
		code                      string
	}{
		{name: "for another file", method: "GET", path: "/api/v1/cases/c1/files/b.txt?dl=" + dl, status: http.StatusForbidden, code: "wrong_download"},
		{name: "for the case's zip", method: "GET", path: "/api/v1/cases/c1/archive.zip?dl=" + dl, status: http.StatusForbidden, code: "wrong_download"},
		{name: "for SHA256SUMS", method: "GET", path: "/api/v1/cases/c1/SHA256SUMS?dl=" + dl, status: http.StatusForbidden, code: "wrong_download"},
		{name: "for the same name in another case", method: "GET", path: "/api/v1/cases/c2/files/a.txt?dl=" + dl, status: http.StatusForbidden, code: "wrong_case"},
		{name: "as a credential in the Authorization header", method: "GET", path: "/api/v1/cases/c1/files/a.txt", token: dl, status: http.StatusUnauthorized, code: "invalid_credential"},
		{name: "on the file list", method: "GET", path: "/api/v1/cases/c1/files?dl=" + dl, status: http.StatusUnauthorized, code: "unauthorized"},
		{name: "on whoami", method: "GET", path: "/api/v1/whoami?dl=" + dl, status: http.StatusUnauthorized, code: "unauthorized"},
		{name: "to mint more links", method: "POST", path: "/api/v1/cases/c1/download-links?dl=" + dl, status: http.StatusUnauthorized, code: "unauthorized"},
		{name: "on tus", method: "POST", path: "/files/?dl=" + dl, status: http.StatusUnauthorized, code: "unauthorized"},
		{name: "with its case claim changed", method: "GET", path: "/api/v1/cases/c2/files/a.txt?dl=" + tamperCase(t, dl, "c1", "c2"), status: http.StatusUnauthorized, code: "invalid_credential"},
		{name: "when it is a credential's token", method: "GET", path: "/api/v1/cases/c1/files/a.txt?dl=" + staff.Token, status: http.StatusUnauthorized, code: "invalid_credential"},
	}
	for _, tc := range refused {
		t.Run("a link is refused "+tc.name, func(t *testing.T) {
			resp := e.do(tc.method, tc.path, tc.token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "1", "Upload-Metadata", meta("filename", "x"))
			body := e.expect(resp, tc.status)
			if code := errorCode(t, body); code != tc.code {
				t.Fatalf("code %q, want %q: %s", code, tc.code, body)
			}
		})
	}
	t.Run("a link is accepted for its download until its last second", func(t *testing.T) {
		e.clock.Advance(auth.DownloadLinkTTL - time.Second)
		e.expect(e.follow("GET", link), http.StatusOK)
	})
	t.Run("a link is refused after its expiry", func(t *testing.T) {
		e.clock.Advance(time.Second)
		body := e.expect(e.follow("GET", link), http.StatusUnauthorized)
		if code := errorCode(t, body); code != "download_link_expired" {
			t.Fatalf("code %q: %s", code, body)
		}
	})
	t.Run("a link is refused once its credential is revoked", func(t *testing.T) {
		link := e.mintLinks("c1", staff.Token, "files/a.txt")[0].URL
		e.expect(e.follow("GET", link), http.StatusOK)
		e.expect(e.do("DELETE", "/api/v1/credentials/"+staff.ID, adminToken, nil), http.StatusOK)
		if code := errorCode(t, e.expect(e.follow("GET", link), http.StatusUnauthorized)); code != "credential_revoked" {
			t.Fatalf("code %q", code)
		}
	})
	t.Run("a link is refused once its case is closed", func(t *testing.T) {
		customer := e.credential("c2", "customer")
		link := e.mintLinks("c2", customer.Token, "archive.zip")[0].URL
		e.expect(e.do("POST", "/api/v1/cases/c2/close", adminToken, nil), http.StatusOK)
		if code := errorCode(t, e.expect(e.follow("GET", link), http.StatusUnauthorized)); code != "credential_revoked" {
			t.Fatalf("code %q", code)
		}
	})
	t.Run("no link reaches the log or the trail", func(t *testing.T) {
		logs := e.logs.String()
		if !strings.Contains(logs, `"path":"/api/v1/cases/c1/files/a.txt"`) || !strings.Contains(logs, "credential refused") {
			t.Fatalf("the requests are not logged at all:\n%s", logs)
		}
		trail := string(e.expect(e.do("GET", "/api/v1/audit", adminToken, nil), http.StatusOK)) +
			string(e.expect(e.do("GET", "/api/v1/cases/c1/audit", adminToken, nil), http.StatusOK))
		sig := dl[strings.LastIndexByte(dl, '.')+1:]
		for where, text := range map[string]string{"log": logs, "trail": trail} {
			if strings.Contains(text, sig) || strings.Contains(text, "dl=") {
				t.Errorf("a download link is in the %s", where)
			}
		}
	})
}

// tamperCase changes a JWT's case claim from one case to another, keeping
// its signature.
func tamperCase(t *testing.T, jwt, from, to string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"case":"`+from+`"`), []byte(`"case":"`+to+`"`), 1))
	return strings.Join(parts, ".")
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var eb struct{ Code string }
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return eb.Code
}

func TestADownloadByLinkIsAuditedAsItsCredentialsDownload(t *testing.T) {
	e := newEnv(t)
	e.withFile("c1", "dump.txt", []byte("hello"))
	staff := e.credential("c1", "staff")
	links := e.mintLinks("c1", staff.Token, "files/dump.txt", "archive.zip")
	e.expect(e.follow("GET", links[0].URL, "Range", "bytes=0-1"), http.StatusPartialContent)
	e.clock.Advance(time.Second) // the trail sorts by time
	e.expect(e.follow("GET", links[1].URL), http.StatusOK)
	e.clock.Advance(time.Second)
	e.expect(e.do("GET", "/api/v1/cases/c1/files/dump.txt", staff.Token, nil), http.StatusOK)

	var trail struct{ Events []map[string]any }
	body := e.expect(e.do("GET", "/api/v1/cases/c1/audit?type=file.downloaded,archive.downloaded", adminToken, nil), http.StatusOK)
	if err := json.Unmarshal(body, &trail); err != nil {
		t.Fatal(err)
	}
	if len(trail.Events) != 3 {
		t.Fatalf("events: %s", body)
	}
	for i, want := range []map[string]any{
		{"type": "file.downloaded", "file": "dump.txt", "detail": "link, bytes=0-1"},
		{"type": "archive.downloaded", "detail": "link, 1 files"},
		{"type": "file.downloaded", "file": "dump.txt", "detail": nil},
	} {
		want["credential_id"], want["role"], want["username"], want["door"] = staff.ID, "staff", staff.Username, "api"
		for k, v := range want {
			if trail.Events[i][k] != v {
				t.Errorf("event %d: %s = %v, want %v", i, k, trail.Events[i][k], v)
			}
		}
	}
}

func TestDownloadLinksAreMintedForACredentialOfTheCaseAndDownloadsThatExist(t *testing.T) {
	e := newEnv(t)
	customer := e.withFile("c1", "a.txt", []byte("hello"))
	e.create(customer.Token, 10, meta("filename", "partial.bin"))
	other := e.openCase("c2")
	post := func(token, body string) *http.Response {
		return e.do("POST", "/api/v1/cases/c1/download-links", token, strings.NewReader(body), "Content-Type", "application/json")
	}
	many, _ := json.Marshal(map[string]any{"downloads": slices.Repeat([]string{"files/a.txt"}, 101)})
	for _, tc := range []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"without a credential", "", `{"downloads":["files/a.txt"]}`, http.StatusUnauthorized, "unauthorized"},
		{"with the admin token", adminToken, `{"downloads":["files/a.txt"]}`, http.StatusForbidden, "forbidden"},
		{"with another case's credential", other.Token, `{"downloads":["files/a.txt"]}`, http.StatusForbidden, "wrong_case"},
		{"for a file that does not exist", customer.Token, `{"downloads":["files/nope.txt"]}`, http.StatusNotFound, "not_found"},
		{"for a file still uploading", customer.Token, `{"downloads":["files/partial.bin"]}`, http.StatusConflict, "file_uploading"},
		{"for what is no download", customer.Token, `{"downloads":["audit"]}`, http.StatusBadRequest, "invalid_downloads"},
		{"for a path outside the case", customer.Token, `{"downloads":["../c2/archive.zip"]}`, http.StatusBadRequest, "invalid_downloads"},
		{"for nothing", customer.Token, `{"downloads":[]}`, http.StatusBadRequest, "invalid_downloads"},
		{"for more than 100 downloads", customer.Token, string(many), http.StatusBadRequest, "invalid_downloads"},
	} {
		t.Run("no link is minted "+tc.name, func(t *testing.T) {
			body := e.expect(post(tc.token, tc.body), tc.status)
			if code := errorCode(t, body); code != tc.code {
				t.Fatalf("code %q, want %q: %s", code, tc.code, body)
			}
		})
	}
	t.Run("a customer credential mints links for the case page", func(t *testing.T) {
		e.expect(e.follow("GET", e.mintLinks("c1", customer.Token, "files/a.txt")[0].URL), http.StatusOK)
	})
}
