package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/internal/testserver"
)

// Embedding in the case system's portal (--embed-origins), in Debian's
// chromium: a portal page served by the test from another origin (another
// port on 127.0.0.1) frames the case page with an upload link, or uploads
// with its own tus-js-client with a credential's token; a portal on an
// origin not listed can do neither, and the browser is what refuses.

// portal is a case system's page on an origin of its own.
type portal struct {
	origin string
}

var portalPages = template.Must(template.New("portal").Parse(`
{{define "iframe"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme Support · Case 4711</title>
<style>body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7}
header{background:#1d3557;color:#fff;padding:.8rem 1.5rem}main{padding:1rem 1.5rem}
iframe{width:100%;height:720px;border:1px solid #c9ced6;background:#fff}</style></head>
<body><header><strong>Acme Support</strong> · Case 4711 · Router reboots every night</header>
<main><h2>Transfer files</h2>
<iframe id="casedrop" title="casedrop" src="{{.Src}}"></iframe></main>
<script>
window.events = []
window.frameLoaded = false
const frame = document.getElementById('casedrop')
const casedrop = new URL(frame.src).origin
frame.addEventListener('load', () => { window.frameLoaded = true })
window.addEventListener('message', (e) => {
  if (e.origin !== casedrop || e.source !== frame.contentWindow || !e.data || e.data.source !== 'casedrop') return
  window.events.push(e.data)
})
</script></body></html>{{end}}
{{define "tus"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme Support · upload</title></head>
<body><input type="file" id="file">
<script src="/tus.min.js"></script>
<script>
window.sent = 0
window.upload = (token) => new Promise((resolve) => {
  const file = document.getElementById('file').files[0]
  let resumedFrom = -1
  const up = new tus.Upload(file, {
    endpoint: {{.Endpoint}},
    headers: { Authorization: 'Bearer ' + token },
    metadata: { filename: file.name },
    retryDelays: [],
    onAfterResponse: (req, res) => {
      if (req.getMethod() === 'HEAD') resumedFrom = Number(res.getHeader('Upload-Offset'))
    },
    onProgress: (sent, total) => { window.sent = sent / total },
    onSuccess: () => resolve({ ok: true, url: up.url, resumedFrom }),
    onError: (err) => { window.failed = String(err); resolve({ ok: false, error: String(err) }) },
  })
  up.findPreviousUploads().then((previous) => {
    if (previous.length) up.resumeFromPreviousUpload(previous[0])
    up.start()
  })
})
</script></body></html>{{end}}`))

// startPortal serves the portal's pages on a port of its own: /iframe
// frames src, /tus uploads to endpoint, /tus.min.js is tus-js-client.
func startPortal(t *testing.T, root string) *portal {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /iframe", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = portalPages.ExecuteTemplate(w, "iframe", map[string]any{"Src": template.URL(r.URL.Query().Get("src"))})
	})
	mux.HandleFunc("GET /tus", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = portalPages.ExecuteTemplate(w, "tus", map[string]any{"Endpoint": r.URL.Query().Get("endpoint")})
	})
	mux.HandleFunc("GET /tus.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(root, "node_modules", "tus-js-client", "dist", "tus.min.js"))
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &portal{origin: "http://" + ln.Addr().String()}
}

func (p *portal) framing(src string) string {
	return p.origin + "/iframe?src=" + url.QueryEscape(src)
}

func (p *portal) uploading(endpoint string) string {
	return p.origin + "/tus?endpoint=" + url.QueryEscape(endpoint)
}

type portalEvent struct {
	Source  string `json:"source"`
	Version int    `json:"version"`
	Type    string `json:"type"`
	Case    string `json:"case"`
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Error   string `json:"error"`
}

type portalReport struct {
	Events        []portalEvent `json:"events"`
	FrameURL      string        `json:"frameURL"`
	CaseLoaded    bool          `json:"caseLoaded"`
	InterruptedAt float64       `json:"interruptedAt"`
	Outcome       struct {
		OK          bool   `json:"ok"`
		URL         string `json:"url"`
		ResumedFrom int64  `json:"resumedFrom"`
		Error       string `json:"error"`
	} `json:"outcome"`
	Console    []string `json:"console"`
	Downloaded string   `json:"downloaded"`
}

// fileSHA256 is the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func consoleSays(lines []string, what string) bool {
	for _, l := range lines {
		if strings.Contains(l, what) {
			return true
		}
	}
	return false
}

func TestEmbeddingInTheCaseSystemsPortal(t *testing.T) {
	root := requirePages(t)
	listed, unlisted := startPortal(t, root), startPortal(t, root)
	srv := testserver.Start(t, testserver.Options{Args: []string{"--embed-origins", listed.origin}})
	srv.OpenCase(t, "4711")
	dir := t.TempDir()

	t.Run("the portal frames the case page, hears of each file completed, and a file downloads in the frame", func(t *testing.T) {
		pathA, shaA := patternFile(t, dir, "router.log", 3*mib+17, 61)
		pathB, shaB := patternFile(t, dir, "running-config.txt", 5*mib+3, 62)
		link := srv.UploadLink(t, "4711")
		if strings.Contains(link, "token=") {
			t.Fatalf("the upload link %q carries a token", link)
		}
		var got portalReport
		runPageScript(t, root, "embed_portal.mjs", map[string]any{
			"mode": "iframe", "portal": listed.framing(link), "files": []string{pathA, pathB},
			"screenshots": screenshotDir(t, root), "download": "router.log", "dir": t.TempDir(),
		}, &got)
		want := map[string]string{"router.log": shaA, "running-config.txt": shaB}
		sizes := map[string]int64{"router.log": 3*mib + 17, "running-config.txt": 5*mib + 3}
		completed := map[string]string{}
		var ready bool
		for _, e := range got.Events {
			if e.Source != "casedrop" || e.Version != 1 {
				t.Errorf("an event not casedrop's version 1: %+v", e)
			}
			switch e.Type {
			case "ready":
				ready = e.Case == "4711"
			case "upload-completed":
				completed[e.Name] = e.SHA256
			case "upload-failed":
				t.Errorf("upload failed in the frame: %+v", e)
			}
		}
		if !ready {
			t.Errorf("no ready event for case 4711 among %+v", got.Events)
		}
		for name, sha := range want {
			if completed[name] != sha {
				t.Errorf("completed event for %s: sha256 %q, want %s", name, completed[name], sha)
			}
			checkComplete(t, fileNamed(t, srv.Files(t, "4711"), name), sizes[name], sha)
		}
		if strings.Contains(got.FrameURL, "link=") || strings.Contains(got.FrameURL, "token=") {
			t.Errorf("the frame's address still holds the credential: %s", got.FrameURL)
		}
		if sum, err := fileSHA256(got.Downloaded); err != nil || filepath.Base(got.Downloaded) != "router.log" || sum != shaA {
			t.Errorf("the download in the frame: %q, SHA-256 %s (%v); want router.log, %s", got.Downloaded, sum, err, shaA)
		}
	})

	t.Run("a portal on an origin not listed cannot frame it", func(t *testing.T) {
		var got portalReport
		runPageScript(t, root, "embed_portal.mjs", map[string]any{
			"mode": "iframe", "portal": unlisted.framing(srv.UploadLink(t, "4711")), "expectRefusal": true,
		}, &got)
		if got.CaseLoaded || len(got.Events) > 0 {
			t.Fatalf("the case page loaded in an unlisted origin's frame (events %+v)", got.Events)
		}
		if !consoleSays(got.Console, "frame-ancestors") {
			t.Errorf("the browser did not say it refused the frame for frame-ancestors; console: %q", got.Console)
		}
	})

	cred := srv.Credential(t, "4711", "customer")
	t.Run("the portal's own tus client uploads cross-origin and resumes after a reload", func(t *testing.T) {
		const size = 24 * mib
		path, sha := patternFile(t, dir, "core.gz", size, 63)
		var got portalReport
		runPageScript(t, root, "embed_portal.mjs", map[string]any{
			"mode": "tus", "portal": listed.uploading(srv.URL + "/files/"), "files": []string{path},
			"token": cred.Token, "limit": 4 * mib, "reloadAt": 0.4,
		}, &got)
		if !got.Outcome.OK {
			t.Fatalf("the upload after the reload failed: %s; console %q", got.Outcome.Error, got.Console)
		}
		if got.Outcome.ResumedFrom <= 0 {
			t.Errorf("after the reload tus-js-client started again from %d (interrupted at %.0f%%), want the offset casedrop stored", got.Outcome.ResumedFrom, got.InterruptedAt*100)
		}
		t.Logf("interrupted at %.0f%% by the reload; resumed from byte %d of %d", got.InterruptedAt*100, got.Outcome.ResumedFrom, size)
		checkComplete(t, fileNamed(t, srv.Files(t, "4711"), "core.gz"), size, sha)
	})

	t.Run("a tus client on an origin not listed is blocked by the browser", func(t *testing.T) {
		path, _ := patternFile(t, dir, "blocked.bin", 1*mib, 64)
		var got portalReport
		runPageScript(t, root, "embed_portal.mjs", map[string]any{
			"mode": "tus", "portal": unlisted.uploading(srv.URL + "/files/"), "files": []string{path},
			"token": cred.Token, "expectRefusal": true,
		}, &got)
		if got.Outcome.OK {
			t.Fatal("an unlisted origin uploaded cross-origin")
		}
		if !consoleSays(got.Console, "CORS policy") {
			t.Errorf("the browser did not say CORS blocked the request; console: %q", got.Console)
		}
		for _, f := range srv.Files(t, "4711") {
			if f.Name == "blocked.bin" {
				t.Errorf("the blocked upload left %+v", f)
			}
		}
	})
}
