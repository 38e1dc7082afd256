package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// http2Server serves e's handler over TLS and HTTP/2, as browsers reach
// casedrop.
func (e *env) http2Server() *httptest.Server {
	h2 := httptest.NewUnstartedServer(e.srv.Config.Handler)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	e.t.Cleanup(h2.Close)
	return h2
}

// logLines is the JSON log lines of e.
func (e *env) logLines() []map[string]any {
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines
}

// waitLogged waits for a log line that has every key and value of want.
func (e *env) waitLogged(want map[string]any) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range e.logLines() {
			if hasAll(l, want) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond) // polls the condition; a deadline bounds it
	}
	e.t.Fatalf("no log line with %v in:\n%s", want, e.logs.String())
}

func hasAll(line, want map[string]any) bool {
	for k, v := range want {
		if line[k] != v {
			return false
		}
	}
	return true
}

// A browser reload cancels its HTTP/2 streams mid-request: that is the
// client's doing, an INFO line "client went away", never an ERROR or a
// 500 in the request's log line.
func TestAClientThatGoesAwayMidRequestIsLoggedAsGoneNotAsAFailure(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("gone")
	h2 := e.http2Server()
	client := h2.Client()

	t.Run("mid-PATCH", func(t *testing.T) {
		path := e.create(cred.Token, 64<<20, meta("filename", "big.bin"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		body, feed := io.Pipe()
		req, _ := http.NewRequestWithContext(ctx, "PATCH", h2.URL+path, body)
		req.ContentLength = 64 << 20
		req.Header.Set("Authorization", "Bearer "+cred.Token)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Offset", "0")
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		done := make(chan error, 1)
		go func() {
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		// More than HTTP/2's windows hold: when the write returns, the
		// handler is reading the body.
		if _, err := feed.Write(bytes.Repeat([]byte("p"), 4<<20)); err != nil {
			t.Fatal(err)
		}
		cancel()
		<-done
		feed.Close()
		e.waitLogged(map[string]any{"msg": "http", "method": "PATCH", "proto": "HTTP/2.0"})
		e.waitLogged(map[string]any{"msg": "client went away", "level": "INFO", "method": "PATCH"})
		e.checkGone(t, "PATCH")
	})

	t.Run("mid-download", func(t *testing.T) {
		data := bytes.Repeat([]byte("d"), 8<<20)
		path := e.create(cred.Token, len(data), meta("filename", "dl.bin"))
		e.expect(e.patch(cred.Token, path, 0, data), http.StatusNoContent)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", h2.URL+"/api/v1/cases/gone/files/dl.bin", nil)
		req.Header.Set("Authorization", "Bearer "+cred.Token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		e.waitLogged(map[string]any{"msg": "http", "method": "GET", "path": "/api/v1/cases/gone/files/dl.bin"})
		e.checkGone(t, "GET")
	})
}

// checkGone checks that no line is an ERROR, and that method's request
// line does not say 500.
func (e *env) checkGone(t *testing.T, method string) {
	t.Helper()
	for _, l := range e.logLines() {
		if l["level"] == "ERROR" {
			t.Errorf("an ERROR line for a client that went away: %v", l)
		}
		if l["msg"] == "http" && l["method"] == method && l["status"] == float64(500) {
			t.Errorf("the request line says 500 for a client that went away: %v", l)
		}
	}
	if t.Failed() {
		t.Logf("logs:\n%s", e.logs.String())
	}
}
