package web_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestUploadConcatenationIsRefusedSayingToUploadInOneStream(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("cc")
	for _, concat := range []string{"partial", "final;/files/a /files/b"} {
		t.Run(concat, func(t *testing.T) {
			resp := e.do("POST", "/files/", cred.Token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "5",
				"Upload-Concat", concat, "Upload-Metadata", meta("filename", "part.bin"))
			body := string(e.expect(resp, http.StatusBadRequest))
			for _, want := range []string{"concatenation_off", "concatenation", "is off", "parallelUploads: 1"} {
				if !strings.Contains(body, want) {
					t.Errorf("body %s lacks %q", body, want)
				}
			}
		})
	}
	t.Run("OPTIONS does not offer it", func(t *testing.T) {
		resp := e.do("OPTIONS", "/files/", "", nil, "Tus-Resumable", "1.0.0")
		ext := resp.Header.Get("Tus-Extension")
		if ext == "" || strings.Contains(ext, "concatenation") {
			t.Errorf("Tus-Extension %q: want extensions, without concatenation", ext)
		}
	})
}
