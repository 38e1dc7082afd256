package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
)

// FuzzTusCreation sends tus creations with whatever headers a client may
// send: the server answers each with a status below 500 and, for a
// refusal, a JSON error; what it accepts is listed under a valid name.
func FuzzTusCreation(f *testing.F) {
	for _, seed := range []struct{ length, metadata, checksum, body string }{
		{"10", "filename aGVsbG8udHh0", "", "0123456789"},
		{"686507572582651", "filename aHVnZS5iaW4=", "", ""},
		{"-1", "filename", "", ""},
		{"10", "filename Li5cLi5ceC5iYXQ=", "", ""}, // ..\..\x.bat
		{"5", "filename YQ==,sha256 eA==", "sha256 LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=", "hello"},
		{"3", "filename Q09O", "md5 nope", "abc"}, // CON
		{"99999999999999999999", "", "", ""},
		{"4", "filename \x00", "crc32 AAAA", "abcd"},
	} {
		f.Add(seed.length, seed.metadata, seed.checksum, seed.body)
	}
	e := newEnv(f)
	c := e.openCase("case-1")
	f.Fuzz(func(t *testing.T, length, metadata, checksum, body string) {
		headers := []string{"Tus-Resumable", "1.0.0", "Upload-Length", length, "Upload-Metadata", metadata}
		if checksum != "" {
			headers = append(headers, "Upload-Checksum", checksum, "Content-Type", "application/offset+octet-stream")
		}
		for i := 1; i < len(headers); i += 2 {
			if !httpguts.ValidHeaderFieldValue(headers[i]) {
				return // no client can send it
			}
		}
		req, err := http.NewRequest("POST", e.srv.URL+"/files/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.Token)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Fatalf("length %q metadata %q checksum %q: %d %s", length, metadata, checksum, resp.StatusCode, got)
		}
		if resp.StatusCode >= 400 {
			var eb struct{ Error, Code string }
			if err := json.Unmarshal(got, &eb); err != nil || eb.Code == "" {
				t.Fatalf("refusal %d is not a JSON error: %q", resp.StatusCode, got)
			}
		}
	})
}
