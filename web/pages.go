package web

import (
	"html/template"
	"net/http"
)

// The upload and staff pages are a JavaScript bundle built with npm (see
// the README). Until a binary carries it, these routes explain how to
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
other client: the credential in it (the text after <code>#token=</code>) opens this case.</p>
<h2>Upload</h2>
<ul>
<li>With a <a href="https://tus.io/implementations">tus client</a>: endpoint <code>{{.Base}}/files/</code>,
header <code>Authorization: Bearer &lt;token&gt;</code>, metadata <code>filename</code>.</li>
<li>With SFTP (WinSCP, FileZilla, <code>sftp</code>): host <code>{{.SFTPHost}}</code>, port <code>{{.SFTPPort}}</code>;
ask support for your username; the password is the token.</li>
</ul>
<h2>Files of the case</h2>
<p><code>curl -H "Authorization: Bearer &lt;token&gt;" {{.Base}}/api/v1/cases/{{.Case}}/files</code></p>
<h2>For the operator</h2>
<p>Build the pages into the binary with <code>make build</code> (it runs <code>npm ci</code> and the bundler), then restart.</p>
</body></html>
`))

func (s *server) page(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-cache")
	_ = placeholder.Execute(w, map[string]any{
		"Case": r.PathValue("case"), "Base": s.PublicURL, "SFTPHost": s.SFTPHost, "SFTPPort": s.SFTPPort,
	})
}
