package web_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/web"
)

func TestDeclaredSizesOverTheLimitAnswer413(t *testing.T) {
	e := newEnv(t)
	c := e.openCase("case-1")
	for _, h := range [][]string{
		{"Upload-Length", "686507572582651"},
		{"Upload-Length", fmt.Sprint(int64(5) << 40)},
	} {
		resp := e.do("POST", "/files/", c.Token, nil, "Tus-Resumable", "1.0.0", h[0], h[1], "Upload-Metadata", meta("filename", "huge.bin"))
		e.expect(resp, http.StatusRequestEntityTooLarge)
	}
	// The same through a deferred length, sent with the first PATCH.
	resp := e.do("POST", "/files/", c.Token, nil, "Tus-Resumable", "1.0.0", "Upload-Defer-Length", "1", "Upload-Metadata", meta("filename", "deferred.bin"))
	e.expect(resp, http.StatusCreated)
	loc := resp.Header.Get("Location")
	path := loc[strings.Index(loc, "/files/"):]
	resp = e.do("PATCH", path, c.Token, strings.NewReader("0123456789"), "Tus-Resumable", "1.0.0", "Upload-Offset", "0",
		"Upload-Length", "686507572582651", "Content-Type", "application/offset+octet-stream")
	e.expect(resp, http.StatusRequestEntityTooLarge)
}

func TestOnlyTheUploaderWritesAnUnfinishedUploadAndStaffMayTerminateIt(t *testing.T) {
	e := newEnv(t)
	alice := e.openCase("case-1")
	mallory := e.credential("case-1", "customer")
	staff := e.credential("case-1", "staff")
	path := e.create(alice.Token, 10, meta("filename", "alice.log"))
	e.expect(e.patch(alice.Token, path, 0, []byte("01234")), http.StatusNoContent)

	e.expect(e.patch(mallory.Token, path, 5, []byte("EVIL!")), http.StatusNotFound)
	e.expect(e.do("HEAD", path, mallory.Token, nil, "Tus-Resumable", "1.0.0"), http.StatusNotFound)
	e.expect(e.do("DELETE", path, mallory.Token, nil, "Tus-Resumable", "1.0.0"), http.StatusNotFound)
	e.expect(e.patch(staff.Token, path, 5, []byte("EVIL!")), http.StatusForbidden)

	e.expect(e.patch(alice.Token, path, 5, []byte("56789")), http.StatusNoContent)
	f := e.files("case-1", adminToken)
	if len(f.Files) != 1 || f.Files[0].State != "complete" || f.Files[0].SHA256 != shaHex([]byte("0123456789")) {
		t.Fatalf("after the others' attempts: %+v", f.Files)
	}

	path = e.create(alice.Token, 10, meta("filename", "second.log"))
	e.expect(e.do("DELETE", path, staff.Token, nil, "Tus-Resumable", "1.0.0"), http.StatusNoContent)
	e.expect(e.do("HEAD", path, alice.Token, nil, "Tus-Resumable", "1.0.0"), http.StatusNotFound)
}

func TestARevokedCredentialsPatchInFlightStopsAtTheNextPart(t *testing.T) {
	e := newEnv(t)
	c := e.openCase("case-1")
	const size = 64 << 20
	path := e.create(c.Token, size, meta("filename", "big.bin"))
	pr, pw := io.Pipe()
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("PATCH", e.srv.URL+path, pr)
		req.Header.Set("Authorization", "Bearer "+c.Token)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Offset", "0")
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.ContentLength = size
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(done)
			return
		}
		done <- resp
	}()
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for range 20 { // more than one 16 MiB part
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	e.expect(e.do("DELETE", "/api/v1/credentials/"+c.ID, adminToken, nil), http.StatusOK)
	// The client goes on sending; a second later the server stops it at
	// the next part.
	e.clock.Advance(time.Second)
	go func() {
		for range 44 {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	resp := <-done
	if resp == nil {
		t.Fatal("no response")
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pr.CloseWithError(io.ErrClosedPipe)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "credential_revoked") {
		t.Fatalf("PATCH whose credential was revoked mid-way: %d %s", resp.StatusCode, body)
	}
	f := e.files("case-1", adminToken)
	if len(f.Files) != 1 || f.Files[0].State == "complete" {
		t.Fatalf("files after the revocation: %+v", f.Files)
	}
}

func TestMetricLabelsComeFromClosedSets(t *testing.T) {
	e := newEnv(t)
	for i := range 50 {
		req, _ := http.NewRequest(fmt.Sprintf("X%dYZZY%s", i, strings.Repeat("Q", 200)), e.srv.URL+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	body := string(e.expect(e.do("GET", "/metrics", "", nil), http.StatusOK))
	if strings.Contains(body, "XYZZY") || strings.Contains(body, "YZZY") {
		t.Fatal("a client's method string became a metric label")
	}
	if !strings.Contains(body, `method="other"`) {
		t.Fatal(`unknown methods are not counted as method="other"`)
	}
}

func TestADownloadTheClientStoppedReadingEnds(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.StallTimeout = 300 * time.Millisecond })
	c := e.openCase("case-1")
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB: more than socket buffers hold
	e.upload(c.Token, "big.bin", data)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(conn, "GET /api/v1/cases/case-1/files/big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", c.Token)
	// Read the status line only, then stop reading.
	if _, err := bufio.NewReaderSize(conn, 16).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for !strings.Contains(e.logs.String(), `"path":"/api/v1/cases/case-1/files/big.bin"`) {
		if ctx.Err() != nil {
			t.Fatal("the download to a client that stopped reading never ended")
		}
		time.Sleep(20 * time.Millisecond) // polling the log for the condition, with a deadline
	}
}
