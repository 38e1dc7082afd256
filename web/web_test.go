package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/manifest"
	"github.com/casedrop/casedrop/metrics"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/storage/storagetest"
	"github.com/casedrop/casedrop/upload"
	"github.com/casedrop/casedrop/web"
)

const adminToken = "test-admin-token"

// clock is the injected clock; tests move it to expire credentials.
type clock = testclock.Clock

type env struct {
	t     testing.TB
	srv   *httptest.Server
	clock *clock
	logs  *syncBuffer
	// store and catalog are underneath the server, for tests that go
	// behind its back; faults makes the store the server uses fail.
	store   *diskstore.Store
	catalog *cases.Catalog
	faults  *storagetest.Faulty
}

// syncBuffer collects the server's log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newEnv serves the whole surface over a fresh local store; opts change the
// configuration before the server starts.
func newEnv(t testing.TB, opts ...func(*web.Config)) *env {
	t.Helper()
	store, err := diskstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clk := testclock.New(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	faults := storagetest.NewFaulty(store)
	catalog := cases.New(faults, clk.Now)
	keys, err := auth.LoadKeys(context.Background(), store, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := manifest.LoadSigner(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.New() // the ingest and the server count into one
	cfg := web.Config{
		ManifestSigner: signer,
		Catalog:        catalog,
		Ingest:         upload.New(upload.Config{Store: faults, Catalog: catalog, Now: clk.Now, Logger: logger, Metrics: reg}),
		Metrics:        reg,
		Issuer:         &auth.Issuer{Keys: keys, Issuer: "casedrop", Now: clk.Now},
		Verifier:       &auth.Verifier{Keys: keys, Issuer: "casedrop", Now: clk.Now, Revocations: catalog},
		AdminToken:     adminToken,
		PublicURL:      "https://casedrop.example",
		SFTPHost:       "casedrop.example",
		SFTPPort:       2222,
		Now:            clk.Now,
		Logger:         logger,
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, clock: clk, logs: logs, store: store, catalog: catalog, faults: faults}
}

func (e *env) do(method, path, token string, body io.Reader, headers ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (e *env) expect(resp *http.Response, status int) []byte {
	e.t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	return body
}

type credential struct {
	ID, Username, Password, Token string
	UploadURL                     string    `json:"upload_url"`
	ExpiresAt                     time.Time `json:"expires_at"`
}

func (e *env) openCase(id string) credential {
	e.expect(e.do("PUT", "/api/v1/cases/"+id, adminToken, nil), http.StatusCreated)
	return e.credential(id, "customer")
}

func (e *env) credential(caseID, role string) credential {
	body := e.expect(e.do("POST", "/api/v1/cases/"+caseID+"/credentials", adminToken, strings.NewReader(`{"role":"`+role+`"}`)), http.StatusCreated)
	var c credential
	if err := json.Unmarshal(body, &c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func meta(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+" "+base64.StdEncoding.EncodeToString([]byte(kv[i+1])))
	}
	return strings.Join(parts, ",")
}

// create starts a tus upload and returns its path.
func (e *env) create(token string, size int, metadata string) string {
	e.t.Helper()
	resp := e.do("POST", "/files/", token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", fmt.Sprint(size), "Upload-Metadata", metadata)
	e.expect(resp, http.StatusCreated)
	loc := resp.Header.Get("Location")
	i := strings.Index(loc, "/files/")
	if i < 0 {
		e.t.Fatalf("Location %q", loc)
	}
	return loc[i:]
}

func (e *env) patch(token, path string, offset int, data []byte) *http.Response {
	return e.do("PATCH", path, token, bytes.NewReader(data), "Tus-Resumable", "1.0.0",
		"Upload-Offset", fmt.Sprint(offset), "Content-Type", "application/offset+octet-stream")
}

func shaHex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func (e *env) files(caseID, token string) web.FileList {
	var l web.FileList
	if err := json.Unmarshal(e.expect(e.do("GET", "/api/v1/cases/"+caseID+"/files", token, nil), 200), &l); err != nil {
		e.t.Fatal(err)
	}
	return l
}

func TestTusUploadInSeveralPatchesThenDownload(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("c1")
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	path := e.create(cred.Token, len(data), meta("filename", "trace.pcap", "sha256", shaHex(data)))

	for off, chunk := 0, 300000; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		resp := e.patch(cred.Token, path, off, data[off:end])
		e.expect(resp, http.StatusNoContent)
		if got := resp.Header.Get("Upload-Offset"); got != fmt.Sprint(end) {
			t.Fatalf("Upload-Offset %s after PATCH to %d", got, end)
		}
		head := e.do("HEAD", path, cred.Token, nil, "Tus-Resumable", "1.0.0")
		e.expect(head, http.StatusOK)
		if got := head.Header.Get("Upload-Offset"); got != fmt.Sprint(end) {
			t.Fatalf("HEAD Upload-Offset %s, want %d", got, end)
		}
	}
	l := e.files("c1", adminToken)
	if len(l.Files) != 1 || l.Files[0].State != "complete" || l.Files[0].SHA256 != shaHex(data) || l.Files[0].Via != "tus" || l.Files[0].UploadedBy != cred.Username {
		t.Fatalf("files list %+v", l)
	}

	t.Run("the download carries the digest", func(t *testing.T) {
		resp := e.do("GET", "/api/v1/cases/c1/files/trace.pcap", adminToken, nil)
		got := e.expect(resp, 200)
		if !bytes.Equal(got, data) {
			t.Fatal("downloaded bytes differ")
		}
		sum := sha256.Sum256(data)
		if want := "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"; resp.Header.Get("Repr-Digest") != want {
			t.Fatalf("Repr-Digest %q, want %q", resp.Header.Get("Repr-Digest"), want)
		}
	})
	t.Run("a range is served", func(t *testing.T) {
		resp := e.do("GET", "/api/v1/cases/c1/files/trace.pcap", cred.Token, nil, "Range", "bytes=1000-1999")
		if got := e.expect(resp, http.StatusPartialContent); !bytes.Equal(got, data[1000:2000]) {
			t.Fatal("range bytes differ")
		}
	})
	t.Run("a completed upload cannot be terminated", func(t *testing.T) {
		e.expect(e.do("DELETE", path, cred.Token, nil, "Tus-Resumable", "1.0.0"), http.StatusForbidden)
		e.expect(e.do("GET", "/api/v1/cases/c1/files/trace.pcap", adminToken, nil), 200)
	})
}

func TestTusCreationWithUpload(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("c1")
	data := []byte("small config file, sent with the creation request")
	resp := e.do("POST", "/files/", cred.Token, bytes.NewReader(data), "Tus-Resumable", "1.0.0",
		"Upload-Length", fmt.Sprint(len(data)), "Upload-Metadata", meta("filename", "app.conf"),
		"Content-Type", "application/offset+octet-stream")
	e.expect(resp, http.StatusCreated)
	if got := resp.Header.Get("Upload-Offset"); got != fmt.Sprint(len(data)) {
		t.Fatalf("Upload-Offset %q after creation with upload", got)
	}
	if got := e.expect(e.do("GET", "/api/v1/cases/c1/files/app.conf", cred.Token, nil), 200); !bytes.Equal(got, data) {
		t.Fatalf("downloaded %q", got)
	}
}

func TestTusProtocolErrors(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("c1")
	path := e.create(cred.Token, 10, meta("filename", "a.txt"))
	e.expect(e.patch(cred.Token, path, 0, []byte("hello")), http.StatusNoContent)

	for _, tc := range []struct {
		name   string
		resp   func() *http.Response
		status int
	}{
		{"a PATCH at the wrong offset is a conflict", func() *http.Response { return e.patch(cred.Token, path, 3, []byte("xx")) }, http.StatusConflict},
		{"a PATCH past the declared length is too large", func() *http.Response { return e.patch(cred.Token, path, 5, []byte("0123456789")) }, http.StatusRequestEntityTooLarge},
		{"a PATCH without the offset content type is refused", func() *http.Response {
			return e.do("PATCH", path, cred.Token, strings.NewReader("x"), "Tus-Resumable", "1.0.0", "Upload-Offset", "5", "Content-Type", "text/plain")
		}, http.StatusBadRequest}, // tusd's answer; the tus spec leaves the status open
		{"a request without Tus-Resumable is refused", func() *http.Response {
			return e.do("POST", "/files/", cred.Token, nil, "Upload-Length", "5", "Upload-Metadata", meta("filename", "b"))
		}, http.StatusPreconditionFailed},
		{"a negative Upload-Length is refused", func() *http.Response {
			return e.do("POST", "/files/", cred.Token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "-1", "Upload-Metadata", meta("filename", "b"))
		}, http.StatusBadRequest},
		{"an upload without a file name is refused", func() *http.Response {
			return e.do("POST", "/files/", cred.Token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "5")
		}, http.StatusBadRequest},
		{"a file name with a slash is refused", func() *http.Response {
			return e.do("POST", "/files/", cred.Token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "5", "Upload-Metadata", meta("filename", "../etc/passwd"))
		}, http.StatusBadRequest},
		{"a malformed declared sha256 is refused", func() *http.Response {
			return e.do("POST", "/files/", cred.Token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "5", "Upload-Metadata", meta("filename", "b", "sha256", "xyz"))
		}, http.StatusBadRequest},
		{"oversized metadata is refused", func() *http.Response {
			return e.do("POST", "/files/", cred.Token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "5", "Upload-Metadata", meta("filename", strings.Repeat("x", 5000)))
		}, http.StatusRequestHeaderFieldsTooLarge},
		{"an unknown upload is not found", func() *http.Response {
			return e.do("HEAD", "/files/0123456789abcdef0123456789abcdef", cred.Token, nil, "Tus-Resumable", "1.0.0")
		}, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.resp()
			body := e.expect(resp, tc.status)
			if resp.Request.Method != "HEAD" {
				var eb struct{ Error, Code string }
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error == "" || eb.Code == "" {
					t.Fatalf("error body is not JSON {error, code}: %q", body)
				}
			}
		})
	}
	t.Run("the stored offset did not move", func(t *testing.T) {
		head := e.do("HEAD", path, cred.Token, nil, "Tus-Resumable", "1.0.0")
		if e.expect(head, 200); head.Header.Get("Upload-Offset") != "5" {
			t.Fatalf("offset %s, want 5", head.Header.Get("Upload-Offset"))
		}
	})
	t.Run("termination drops an unfinished upload", func(t *testing.T) {
		e.expect(e.do("DELETE", path, cred.Token, nil, "Tus-Resumable", "1.0.0"), http.StatusNoContent)
		e.expect(e.do("HEAD", path, cred.Token, nil, "Tus-Resumable", "1.0.0"), http.StatusNotFound)
		if l := e.files("c1", adminToken); len(l.Files) != 0 {
			t.Fatalf("files after termination: %+v", l.Files)
		}
	})
}

func TestDeclaredDigestMismatchIsRefusedAndNothingIsServed(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("c1")
	data := []byte("the real bytes")
	path := e.create(cred.Token, len(data), meta("filename", "conf.tgz", "sha256", shaHex([]byte("other bytes"))))
	body := e.expect(e.patch(cred.Token, path, 0, data), 460)
	if !strings.Contains(string(body), "does not match") {
		t.Fatalf("mismatch error does not say so: %s", body)
	}
	l := e.files("c1", adminToken)
	if len(l.Files) != 1 || l.Files[0].State != "rejected" {
		t.Fatalf("files %+v, want one rejected", l.Files)
	}
	e.expect(e.do("GET", "/api/v1/cases/c1/files/conf.tgz", adminToken, nil), http.StatusConflict)
}

func TestBadCredentialsAreRefused(t *testing.T) {
	e := newEnv(t)
	credA := e.openCase("case-a")
	credB := e.openCase("case-b")
	revoked := e.credential("case-a", "customer")
	e.expect(e.do("DELETE", "/api/v1/credentials/"+revoked.ID, adminToken, nil), 200)

	tamper := func(tok string) string { // change the case claim, keep the signature
		parts := strings.Split(tok, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = bytes.Replace(payload, []byte(`"case-b"`), []byte(`"case-a"`), 1)
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		return strings.Join(parts, ".")
	}
	algNone := func(tok string) string {
		parts := strings.Split(tok, ".")
		header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		return header + "." + parts[1] + "."
	}
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"no credential", "", 401},
		{"garbage", "not-a-token", 401},
		{"a tampered payload", tamper(credB.Token), 401},
		{"an alg none token", algNone(credA.Token), 401},
		{"a revoked credential", revoked.Token, 401},
		{"a credential of another case", credB.Token, 403},
	} {
		t.Run(tc.name+" is refused on the case API", func(t *testing.T) {
			body := e.expect(e.do("GET", "/api/v1/cases/case-a/files", tc.token, nil), tc.status)
			if tc.token != "" && strings.Contains(string(body), tc.token[:min(20, len(tc.token))]) {
				t.Fatal("the error echoes the token")
			}
		})
		t.Run(tc.name+" is refused on the download", func(t *testing.T) {
			e.expect(e.do("GET", "/api/v1/cases/case-a/files/x", tc.token, nil), tc.status)
		})
		if tc.status == 401 {
			t.Run(tc.name+" is refused on tus", func(t *testing.T) {
				e.expect(e.do("POST", "/files/", tc.token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "1", "Upload-Metadata", meta("filename", "x")), 401)
			})
		}
	}
	t.Run("a credential of another case does not reach this case's upload on tus", func(t *testing.T) {
		path := e.create(credA.Token, 5, meta("filename", "a"))
		e.expect(e.do("HEAD", path, credB.Token, nil, "Tus-Resumable", "1.0.0"), http.StatusNotFound)
		e.expect(e.patch(credB.Token, path, 0, []byte("hello")), http.StatusNotFound)
	})
	t.Run("a case credential does not open the admin API", func(t *testing.T) {
		e.expect(e.do("PUT", "/api/v1/cases/case-z", credA.Token, nil), http.StatusForbidden)
	})
	t.Run("a closed case refuses its credentials and uploads", func(t *testing.T) {
		e.expect(e.do("POST", "/api/v1/cases/case-b/close", adminToken, nil), 200)
		e.expect(e.do("GET", "/api/v1/cases/case-b/files", credB.Token, nil), 401)
		e.expect(e.do("POST", "/api/v1/cases/case-b/credentials", adminToken, nil), http.StatusForbidden)
		staff := e.credential("case-b", "staff")
		e.expect(e.do("GET", "/api/v1/cases/case-b/files", staff.Token, nil), 200)
		e.expect(e.do("POST", "/files/", staff.Token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "1", "Upload-Metadata", meta("filename", "x")), http.StatusForbidden)
	})
	t.Run("no token reaches the log", func(t *testing.T) {
		logs := e.logs.String()
		if !strings.Contains(logs, "credential refused") {
			t.Fatal("refusals are not logged at all")
		}
		for _, tok := range []string{adminToken, credA.Token, credB.Token, revoked.Token, tamper(credB.Token)} {
			sig := tok[strings.LastIndexByte(tok, '.')+1:]
			if strings.Contains(logs, tok) || (len(sig) > 10 && strings.Contains(logs, sig)) {
				t.Fatalf("a token is in the log")
			}
		}
	})
	t.Run("an expired credential is refused at 120 hours, not before", func(t *testing.T) {
		fresh := e.credential("case-a", "customer")
		e.clock.Advance(120*time.Hour - time.Minute)
		e.expect(e.do("GET", "/api/v1/cases/case-a/files", fresh.Token, nil), 200)
		e.clock.Advance(time.Minute)
		body := e.expect(e.do("GET", "/api/v1/cases/case-a/files", fresh.Token, nil), 401)
		if !strings.Contains(string(body), "expired") {
			t.Fatalf("expiry not said: %s", body)
		}
	})
}

func TestCredentialResponse(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("PUT", "/api/v1/cases/c9", adminToken, nil), 201)
	body := e.expect(e.do("POST", "/api/v1/cases/c9/credentials", adminToken, nil), 201)
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "username", "password", "token", "expires_at", "upload_url", "sftp_host", "sftp_port"} {
		if _, ok := got[k]; !ok {
			t.Errorf("credential response lacks %q", k)
		}
	}
	if password, _ := got["password"].(string); password == "" || password == got["token"] || len(password) > 64 {
		t.Errorf("password %q: want a short password of its own, at most 64 characters", password)
	}
	exp, _ := time.Parse(time.RFC3339, got["expires_at"].(string))
	if !exp.Equal(e.clock.Now().Add(120 * time.Hour)) {
		t.Errorf("expires_at %v, want 120 h after issue", exp)
	}
	e.expect(e.do("POST", "/api/v1/cases/c9/credentials", adminToken, strings.NewReader(`{"role":"root"}`)), 400)
	e.expect(e.do("POST", "/api/v1/cases/c9/credentials", adminToken, strings.NewReader(`{"ttl_hours":121}`)), 400)
	e.expect(e.do("POST", "/api/v1/cases/nope/credentials", adminToken, nil), 404)
}

func TestCredentialLinkOpensAPageThatSaysHowToUpload(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("c7")
	path := strings.TrimPrefix(cred.UploadURL, "https://casedrop.example")
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path = path[:i] // browsers never send the fragment
	}
	resp := e.do("GET", path, "", nil)
	body := string(e.expect(resp, 200))
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "https://casedrop.example/files/") {
		t.Fatalf("page %q: %s", resp.Header.Get("Content-Type"), body)
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatal("no strict Content-Security-Policy")
	}
}

func TestTusChecksumExtension(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("c1")
	data := []byte("0123456789")
	path := e.create(cred.Token, len(data), meta("filename", "sum.txt"))
	checksum := func(b []byte) string {
		s := sha256.Sum256(b)
		return "sha256 " + base64.StdEncoding.EncodeToString(s[:])
	}
	patch := func(off int, chunk []byte, header string) *http.Response {
		return e.do("PATCH", path, cred.Token, bytes.NewReader(chunk), "Tus-Resumable", "1.0.0",
			"Upload-Offset", fmt.Sprint(off), "Content-Type", "application/offset+octet-stream", "Upload-Checksum", header)
	}
	offset := func() string {
		head := e.do("HEAD", path, cred.Token, nil, "Tus-Resumable", "1.0.0")
		e.expect(head, 200)
		return head.Header.Get("Upload-Offset")
	}
	t.Run("OPTIONS advertises it", func(t *testing.T) {
		resp := e.do("OPTIONS", "/files/", "", nil)
		if !strings.Contains(resp.Header.Get("Tus-Extension"), "checksum") || !strings.Contains(resp.Header.Get("Tus-Checksum-Algorithm"), "sha256") {
			t.Fatalf("Tus-Extension %q, Tus-Checksum-Algorithm %q", resp.Header.Get("Tus-Extension"), resp.Header.Get("Tus-Checksum-Algorithm"))
		}
	})
	t.Run("a chunk with the right checksum is kept", func(t *testing.T) {
		e.expect(patch(0, data[:4], checksum(data[:4])), http.StatusNoContent)
		if got := offset(); got != "4" {
			t.Fatalf("offset %s, want 4", got)
		}
	})
	t.Run("a chunk with a wrong checksum answers 460 and is not kept", func(t *testing.T) {
		e.expect(patch(4, data[4:], checksum([]byte("other"))), 460)
		if got := offset(); got != "4" {
			t.Fatalf("offset %s after a mismatch, want 4", got)
		}
	})
	t.Run("an unsupported algorithm is refused", func(t *testing.T) {
		e.expect(patch(4, data[4:], "crc32 AAAAAA=="), http.StatusBadRequest)
		e.expect(patch(4, data[4:], "sha256 not base64!"), http.StatusBadRequest)
	})
	t.Run("the upload then completes with the right digest", func(t *testing.T) {
		e.expect(patch(4, data[4:], checksum(data[4:])), http.StatusNoContent)
		l := e.files("c1", adminToken)
		if len(l.Files) != 1 || l.Files[0].SHA256 != shaHex(data) || l.Files[0].State != "complete" {
			t.Fatalf("files %+v", l.Files)
		}
	})
}

func TestTheAuditTrailAnswersWhoDownloadedWhatFromWhereAndWhen(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("c123")
	path := e.create(cred.Token, 5, meta("filename", "dump.txt"))
	e.expect(e.patch(cred.Token, path, 0, []byte("hello")), http.StatusNoContent)
	staff := e.credential("c123", "staff")
	e.expect(e.do("GET", "/api/v1/cases/c123/files/dump.txt", staff.Token, nil, "Range", "bytes=0-1"), http.StatusPartialContent)
	e.expect(e.do("GET", "/api/v1/cases/c123/files", "forged."+cred.Token[10:], nil), http.StatusUnauthorized)
	e.files("c123", cred.Token)

	var trail struct{ Events []map[string]any }
	body := e.expect(e.do("GET", "/api/v1/cases/c123/audit?type=file.downloaded", adminToken, nil), 200)
	if err := json.Unmarshal(body, &trail); err != nil {
		t.Fatal(err)
	}
	if len(trail.Events) != 1 {
		t.Fatalf("download events: %s", body)
	}
	ev := trail.Events[0]
	for k, want := range map[string]any{"credential_id": staff.ID, "role": "staff", "remote": "127.0.0.1", "file": "dump.txt", "door": "api", "sha256": shaHex([]byte("hello"))} {
		if ev[k] != want {
			t.Errorf("download event %s = %v, want %v", k, ev[k], want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(ev["time"])); err != nil {
		t.Errorf("download event time %v", ev["time"])
	}
	body = e.expect(e.do("GET", "/api/v1/cases/c123/audit", adminToken, nil), 200)
	for _, typ := range []string{"case.opened", "credential.issued", "upload.started", "upload.finished", "files.listed"} {
		if !strings.Contains(string(body), `"`+typ+`"`) {
			t.Errorf("the trail lacks %s", typ)
		}
	}
	if strings.Contains(string(body), cred.Token) || strings.Contains(string(body), staff.Token) || strings.Contains(string(body), adminToken) {
		t.Fatal("a secret is in the audit trail")
	}
	e.expect(e.do("GET", "/api/v1/cases/c123/audit", cred.Token, nil), http.StatusForbidden)
	e.expect(e.do("GET", "/api/v1/cases/c123/audit?since=yesterday", adminToken, nil), http.StatusBadRequest)
}

func TestMetricsCountUploadsRequestsAndFailedLogins(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("m1")
	path := e.create(cred.Token, 5, meta("filename", "m.txt"))
	e.expect(e.patch(cred.Token, path, 0, []byte("hello")), http.StatusNoContent)
	e.expect(e.do("GET", "/api/v1/cases/m1/files", "bad", nil), http.StatusUnauthorized)
	body := string(e.expect(e.do("GET", "/metrics", "", nil), 200))
	for _, want := range []string{
		`casedrop_upload_bytes_received_total{door="tus"} 5`,
		`casedrop_uploads_finished_total{door="tus",result="complete"} 1`,
		`casedrop_failed_logins_total{door="api"} 1`,
		`casedrop_http_request_seconds_count{code="2xx",method="PATCH",route="/files/"} 1`,
		`casedrop_uploads_in_flight{door="tus"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestAPollingPageIsAuditedOnceAMinute(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("poll")
	count := func() int {
		var trail struct{ Events []map[string]any }
		_ = json.Unmarshal(e.expect(e.do("GET", "/api/v1/cases/poll/audit?type=files.listed", adminToken, nil), 200), &trail)
		return len(trail.Events)
	}
	for range 5 {
		e.files("poll", cred.Token)
	}
	if n := count(); n != 1 {
		t.Fatalf("5 listings within a minute made %d records, want 1", n)
	}
	e.clock.Advance(time.Minute)
	e.files("poll", cred.Token)
	e.files("poll", adminToken) // another caller is recorded on its own
	if n := count(); n != 3 {
		t.Fatalf("%d listing records, want 3", n)
	}
}
