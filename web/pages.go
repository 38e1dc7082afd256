package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"golang.org/x/net/html"
)

// The upload and staff pages are built from web/ui/src by npm and esbuild
// (`make ui`, which `make build` runs) into web/ui/dist, embedded here. A
// clean clone holds only dist/README: a binary built without the bundle
// serves the placeholder below on the page routes, and the API, tus and
// SFTP as usual.
//
//go:embed ui/dist
var uiDist embed.FS

// pagesCSP lets the pages load only their own scripts, worker, styles and
// images, talk only to this server, and be framed by the origins
// framers lists (by nobody when none).
func pagesCSP(framers []string) string {
	ancestors := "'none'"
	if len(framers) > 0 {
		ancestors = strings.Join(framers, " ")
	}
	return "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; connect-src 'self'; " +
		"img-src 'self' data:; base-uri 'none'; frame-ancestors " + ancestors + "; form-action 'none'"
}

// assetsCSP applies where an asset is a document of its own: the hashing
// worker runs under its response's policy, and hash-wasm compiles
// WebAssembly.
const assetsCSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"

// bundle is the built front end: each page's HTML, and the scripts and
// styles it loads, whose names carry a hash of their content.
type bundle struct {
	pages  map[string][]byte // by name: "case", "staff"
	assets fs.FS
}

var ui = loadBundle(uiDist)

// loadBundle reads the pages from dist (dist/case.html, dist/staff.html,
// dist/assets/*); a page that is missing is served as the placeholder.
func loadBundle(dist fs.FS) bundle {
	b := bundle{pages: map[string][]byte{}}
	b.assets, _ = fs.Sub(dist, "ui/dist/assets")
	for _, name := range []string{"case", "staff"} {
		if doc, err := fs.ReadFile(dist, "ui/dist/"+name+".html"); err == nil {
			b.pages[name] = doc
		}
	}
	return b
}

// pageData fills in what a page says to a browser without JavaScript: how
// to reach the case with other clients.
type pageData struct {
	Base     string
	SFTPHost string
	SFTPPort int
}

// page serves one of the pages. The HTML is revalidated on every load
// (no-cache with an ETag), and names the current assets, so a rebuilt
// bundle replaces the old one at the next load.
func (s *server) page(name string) http.HandlerFunc {
	doc, err := s.renderPage(name)
	if err != nil {
		s.log.Error("the built page cannot be served; serving the placeholder", "page", name, "err", err)
	}
	if doc == nil {
		return s.placeholder
	}
	sum := sha256.Sum256(doc)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	csp := pagesCSP(nil)
	if name == "case" { // the customer's page, which the case system's portal may frame
		csp = pagesCSP(s.EmbedOrigins)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(doc))
	}
}

// renderPage fills in the built page's template (nil when the binary was
// built without the page). The case page also gets, first in its head,
// the origins that may frame it, for its script to post messages to:
// <meta name="casedrop-embed-origins" content="ORIGIN ORIGIN ...">, the
// content empty when none.
func (s *server) renderPage(name string) ([]byte, error) {
	src, ok := ui.pages[name]
	if !ok {
		return nil, nil
	}
	tmpl, err := template.New(name).Parse(string(src))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, pageData{Base: s.PublicURL, SFTPHost: s.SFTPHost, SFTPPort: s.SFTPPort}); err != nil {
		return nil, err
	}
	if name != "case" {
		return buf.Bytes(), nil
	}
	var tag bytes.Buffer
	if err := embedOriginsMeta.Execute(&tag, strings.Join(s.EmbedOrigins, " ")); err != nil {
		return nil, err
	}
	return insertInHead(buf.Bytes(), tag.Bytes())
}

var embedOriginsMeta = template.Must(template.New("meta").Parse(`<meta name="casedrop-embed-origins" content="{{.}}">`))

// insertInHead returns page with tag right after its <head> start tag, so
// that it is there before any script of the page runs.
func insertInHead(page, tag []byte) ([]byte, error) {
	z := html.NewTokenizer(bytes.NewReader(page))
	end := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return nil, errors.New("the page has no <head>")
		}
		end += len(z.Raw())
		if name, _ := z.TagName(); tt == html.StartTagToken && string(name) == "head" {
			break
		}
	}
	out := make([]byte, 0, len(page)+len(tag)+1)
	out = append(out, page[:end]...)
	out = append(out, '\n')
	out = append(out, tag...)
	return append(out, page[end:]...), nil
}

// asset serves a script or style sheet of the bundle. Its name changes
// with its content, so it may be cached for good.
func (s *server) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	data, err := fs.ReadFile(ui.assets, name)
	if err != nil {
		s.writeError(w, r, newError(http.StatusNotFound, "not_found", "no such file"))
		return
	}
	h := w.Header()
	if ctype := mime.TypeByExtension(path.Ext(name)); ctype != "" {
		h.Set("Content-Type", ctype)
	}
	h.Set("Content-Security-Policy", assetsCSP)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// Until a binary carries the bundle, the page routes explain how to
// upload and download without it, and how to build it: a link handed to
// a customer never ends on a bare 404.
var placeholder = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>casedrop: case {{.Case}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}code,pre{background:#f3f3f3;padding:.1rem .3rem}</style>
</head><body>
<h1>Case {{.Case}}</h1>
<p>This casedrop server was built without its web pages. Your link still works with any
other client: the credential in it (the text after <code>#token=</code>, up to the next
<code>&amp;</code>) opens this case.</p>
<h2>Upload</h2>
<ul>
<li>With a <a href="https://tus.io/implementations">tus client</a>: endpoint <code>{{.Base}}/files/</code>,
header <code>Authorization: Bearer &lt;token&gt;</code>, metadata <code>filename</code>.</li>
<li>With SFTP (WinSCP, FileZilla, <code>sftp</code>): host <code>{{.SFTPHost}}</code>, port <code>{{.SFTPPort}}</code>;
ask support for your username; the password is the text after <code>#password=</code> in your link.
The token works as the password too, in every client but WinSCP, whose password box is too short for it.</li>
</ul>
<h2>Files of the case</h2>
<p><code>curl -H "Authorization: Bearer &lt;token&gt;" {{.Base}}/api/v1/cases/{{.Case}}/files</code></p>
<h2>For the operator</h2>
<p>Build the pages into the binary with <code>make build</code> (it runs <code>npm ci</code> and the bundler), then restart.</p>
</body></html>
`))

func (s *server) placeholder(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-cache")
	_ = placeholder.Execute(w, map[string]any{
		"Case": r.PathValue("case"), "Base": s.PublicURL, "SFTPHost": s.SFTPHost, "SFTPPort": s.SFTPPort,
	})
}
