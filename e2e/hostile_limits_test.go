package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/testserver"
)

// What one customer credential, or no credential, can make the server
// hold: each class of the hostile-input review, against the real binary.

func TestADeclaredSizeOverTheLimitIsRefusedAndTheServerStaysUp(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"--max-file-gib", "1024"}})
	srv.OpenCase(t, "huge")
	c := srv.Credential(t, "huge", "customer")

	for _, length := range []string{"686507572582651", fmt.Sprint(int64(5) << 40), "99999999999999999999"} {
		resp := tusRequest(t, srv, "POST", srv.URL+"/files/", c.Token, nil, "Upload-Length", length,
			"Upload-Metadata", "filename aHVnZS5iaW4=")
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(resp.body, "file_too_large") {
			t.Errorf("Upload-Length %s: %d %s, want 413 file_too_large", length, resp.StatusCode, resp.body)
		}
	}
	// The same through a deferred length, sent with the PATCH.
	resp := tusRequest(t, srv, "POST", srv.URL+"/files/", c.Token, nil, "Upload-Defer-Length", "1",
		"Upload-Metadata", "filename ZGVmZXJyZWQuYmlu")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("deferred creation: %d %s", resp.StatusCode, resp.body)
	}
	resp = tusRequest(t, srv, "PATCH", resp.Header.Get("Location"), c.Token, strings.NewReader("0123456789"),
		"Upload-Offset", "0", "Upload-Length", "686507572582651", "Content-Type", "application/offset+octet-stream")
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("deferred Upload-Length of 686 TB: %d %s, want 413", resp.StatusCode, resp.body)
	}

	// Declared sizes at the limit stream through the budget: a few PATCHes
	// against a declared 1 TiB keep the process small.
	if _, err := srv.ResetPeakRSS(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			url := srv.Create(t, c.Token, fmt.Sprintf("tera-%d.bin", i), 1<<40, "")
			data := make([]byte, 200<<20)
			if off, status, err := srv.Patch(context.Background(), c.Token, url, 0, bytes.NewReader(data), int64(len(data))); err != nil || off != int64(len(data)) {
				t.Errorf("PATCH of 200 MiB into a declared 1 TiB: offset %d, %d %v", off, status, err)
			}
		})
	}
	wg.Wait()
	peak, err := srv.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	// The default budget is 256 MiB of buffers; the rest is the runtime,
	// TLS and HTTP/2 buffers.
	if peak > 450<<20 {
		t.Errorf("peak RSS %d MiB over four PATCHes against a declared 1 TiB; want under 450 MiB", peak>>20)
	}
	t.Logf("peak RSS over four 200 MiB PATCHes of declared 1 TiB uploads: %d MiB", peak>>20)
	if !srv.Alive() {
		t.Fatal("the server died")
	}
}

func TestRandomMethodsDoNotGrowTheMetrics(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	before := len(metricsText(t, srv))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		method := make([]byte, 40+rng.IntN(200))
		for j := range method {
			method[j] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[rng.IntN(26)]
		}
		req, err := http.NewRequest(string(method), srv.URL+fmt.Sprintf("/x%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	after := metricsText(t, srv)
	if grew := len(after) - before; grew > 8<<10 {
		t.Fatalf("/metrics grew by %d bytes after 300 requests with random methods", grew)
	}
	if !strings.Contains(after, `method="other"`) {
		t.Fatal(`unknown methods are not counted under method="other"`)
	}
}

func TestOneCredentialWritesAtMostEightUploadsAtOnce(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "many")
	c := srv.Credential(t, "many", "customer")
	other := srv.Credential(t, "many", "customer")

	// 30 PATCHes of one token whose bodies trickle: 8 are served, the rest
	// answer 429 at once.
	const n = 30
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	statuses := make(chan int, n)
	writers := make([]*io.PipeWriter, n)
	for i := range n {
		url := srv.Create(t, c.Token, fmt.Sprintf("f%02d.bin", i), 1<<20, "")
		pr, pw := io.Pipe()
		writers[i] = pw
		go func() {
			_, status, _ := srv.Patch(ctx, c.Token, url, 0, pr, 1<<20)
			statuses <- status
		}()
		go func() { _, _ = pw.Write([]byte("x")) }()
	}
	refused := 0
	for refused < n-8 {
		select {
		case s := <-statuses:
			if s != http.StatusTooManyRequests {
				t.Fatalf("a PATCH over the limit answered %d, want 429", s)
			}
			refused++
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d PATCHes over the limit were refused", refused, n-8)
		}
	}
	// Another credential of the same case is not held back, though the
	// eight quiet uploads took part buffers (the whole budget at 8 x 16
	// MiB): they give them back within seconds.
	url := srv.Create(t, other.Token, "other.bin", 4, "")
	otherCtx, cancelOther := context.WithTimeout(ctx, 20*time.Second)
	defer cancelOther()
	if _, status, err := srv.Patch(otherCtx, other.Token, url, 0, strings.NewReader("abcd"), 4); err != nil {
		t.Fatalf("another credential's PATCH: %d %v", status, err)
	}
	for _, pw := range writers {
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}
}

func TestOneSFTPSessionCannotHoldUnboundedHandles(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "handles")
	c := srv.Credential(t, "handles", "customer")
	client := goSFTP(t, loginOf(srv, c))

	var writes []io.Closer
	var refusal error
	for i := range 40 {
		f, err := client.Create(fmt.Sprintf("w%02d.bin", i))
		if err != nil {
			refusal = err
			break
		}
		if _, err := f.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		writes = append(writes, f)
	}
	if len(writes) != 8 || refusal == nil || !strings.Contains(refusal.Error(), "too many uploads at once") {
		t.Fatalf("opened %d write handles, then %v; want 8, then a refusal that says why", len(writes), refusal)
	}
	for _, f := range writes {
		f.Close()
	}
	// A complete file, opened for reading again and again.
	f, err := client.Create("read.me")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("hello"))
	f.Close()
	var reads []io.Closer
	refusal = nil
	for range 800 {
		r, err := client.Open("read.me")
		if err != nil {
			refusal = err
			break
		}
		reads = append(reads, r)
	}
	if len(reads) != 16 || refusal == nil || !strings.Contains(refusal.Error(), "too many files open for reading") {
		t.Fatalf("opened %d read handles, then %v; want 16, then a refusal that says why", len(reads), refusal)
	}
	for _, r := range reads {
		r.Close()
	}
	if r, err := client.Open("read.me"); err != nil {
		t.Fatalf("after closing the handles, an open still fails: %v", err)
	} else {
		r.Close()
	}
}

func TestAnotherCustomerCannotTouchAnUnfinishedUpload(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "two")
	alice := srv.Credential(t, "two", "customer")
	mallory := srv.Credential(t, "two", "customer")
	staff := srv.Credential(t, "two", "staff")
	url := srv.Create(t, alice.Token, "alice.log", 10, "")
	if _, _, err := srv.Patch(context.Background(), alice.Token, url, 0, strings.NewReader("01234"), 5); err != nil {
		t.Fatal(err)
	}
	if _, status, _ := srv.Patch(context.Background(), mallory.Token, url, 5, strings.NewReader("EVIL!"), 5); status != http.StatusNotFound {
		t.Errorf("another customer's PATCH: %d, want 404", status)
	}
	if resp := tusRequest(t, srv, "DELETE", url, mallory.Token, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another customer's DELETE: %d, want 404", resp.StatusCode)
	}
	if _, status, _ := srv.Patch(context.Background(), staff.Token, url, 5, strings.NewReader("EVIL!"), 5); status != http.StatusForbidden {
		t.Errorf("staff's PATCH into a customer's upload: %d, want 403", status)
	}
	if _, _, err := srv.Patch(context.Background(), alice.Token, url, 5, strings.NewReader("56789"), 5); err != nil {
		t.Fatalf("the uploader's own PATCH: %v", err)
	}
	body, _ := srv.Download(t, "two", "alice.log")
	if string(body) != "0123456789" {
		t.Fatalf("alice.log holds %q", body)
	}
	second := srv.Create(t, alice.Token, "second.log", 10, "")
	if resp := tusRequest(t, srv, "DELETE", second, staff.Token, nil); resp.StatusCode != http.StatusNoContent {
		t.Errorf("staff's DELETE of an unfinished upload: %d %s, want 204", resp.StatusCode, resp.body)
	}
}

func TestRevokingACredentialStopsItsPatchInFlight(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "revoke")
	c := srv.Credential(t, "revoke", "customer")
	// Longer than a second's worth: a PATCH in flight checks its
	// credential again once a second has passed.
	const size = 8 << 30
	url := srv.Create(t, c.Token, "long.bin", size, "")
	pr, pw := io.Pipe()
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		_, status, err := srv.Patch(context.Background(), c.Token, url, 0, pr, size)
		done <- result{status, err}
	}()
	chunk := make([]byte, 1<<20)
	for range 40 {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	srv.RevokeCredential(t, c.ID)
	go func() {
		for range size>>20 - 40 {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	select {
	case r := <-done:
		if r.status != http.StatusUnauthorized {
			t.Fatalf("the PATCH of a revoked credential ended with %d %v, want 401", r.status, r.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the PATCH of a revoked credential went on")
	}
	pr.CloseWithError(io.ErrClosedPipe)
	for _, f := range srv.Files(t, "revoke") {
		if f.State == "complete" {
			t.Fatalf("%s completed after its credential was revoked", f.Name)
		}
	}
}

type tusResponse struct {
	*http.Response
	body string
}

// tusRequest sends a tus request with headers (pairs) and reads its answer.
func tusRequest(t *testing.T, srv *testserver.Server, method, url, token string, body io.Reader, headers ...string) tusResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Tus-Resumable", "1.0.0")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return tusResponse{resp, string(b)}
}

func metricsText(t *testing.T, srv *testserver.Server) string {
	t.Helper()
	resp, err := srv.Client.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestADownloadWhoseClientStopsReadingIsEnded(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"--stall-timeout", "1s"}})
	srv.OpenCase(t, "stall")
	c := srv.Credential(t, "stall", "customer")
	const size = 64 << 20 // far more than socket buffers hold
	url := srv.Create(t, c.Token, "big.bin", size, "")
	if _, _, err := srv.Patch(context.Background(), c.Token, url, 0, bytes.NewReader(make([]byte, size)), size); err != nil {
		t.Fatal(err)
	}
	tlsConf := srv.Client.Transport.(*http.Transport).TLSClientConfig.Clone()
	tlsConf.NextProtos = []string{"http/1.1"}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(srv.URL, "https://"), tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/cases/stall/files/big.bin HTTP/1.1\r\nHost: casedrop\r\nAuthorization: Bearer %s\r\n\r\n", c.Token)
	status, err := bufio.NewReaderSize(conn, 16).ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("status line %q, %v", status, err)
	}
	// The client reads nothing more; the server's access log line is
	// written once the download's handler has ended.
	done := `"path":"/api/v1/cases/stall/files/big.bin"`
	if err := waitFor(30*time.Second, func() bool { return strings.Contains(srv.Log(), done) }); err != nil {
		t.Fatal("the download to a client that stopped reading was still running after 30 s")
	}
}
