package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// withBundle serves the pages from files (names under ui/dist/) for the
// test, as if the binary had been built with them.
func withBundle(t *testing.T, files map[string]string) {
	t.Helper()
	dist := fstest.MapFS{}
	for name, text := range files {
		dist["ui/dist/"+name] = &fstest.MapFile{Data: []byte(text)}
	}
	saved := ui
	ui = loadBundle(dist)
	t.Cleanup(func() { ui = saved })
}

// builtPages stand in for web/ui/dist: templates like the built ones.
var builtPages = map[string]string{
	"case.html":  "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<script src=\"/ui/case.js\" defer></script>\n</head>\n<body><code>{{.Base}}/files/</code></body></html>\n",
	"staff.html": "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n</head>\n<body>staff</body></html>\n",
}

// getPage serves one request for the page name of a server configured
// with origins.
func getPage(t *testing.T, name string, origins ...string) (csp, body string) {
	t.Helper()
	s := &server{Config: Config{PublicURL: "https://casedrop.example", EmbedOrigins: origins}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rec := httptest.NewRecorder()
	s.page(name).ServeHTTP(rec, httptest.NewRequest("GET", "/cases/c1", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("%s page: status %d", name, rec.Code)
	}
	return rec.Header().Get("Content-Security-Policy"), rec.Body.String()
}

// frameAncestors returns the sources of csp's frame-ancestors directive.
func frameAncestors(t *testing.T, csp string) string {
	t.Helper()
	for _, d := range strings.Split(csp, ";") {
		if name, sources, _ := strings.Cut(strings.TrimSpace(d), " "); name == "frame-ancestors" {
			return sources
		}
	}
	t.Fatalf("no frame-ancestors in %q", csp)
	return ""
}

func TestTheCasePageMayBeFramedByExactlyTheListedOrigins(t *testing.T) {
	withBundle(t, builtPages)
	csp, _ := getPage(t, "case", "https://support.example.com", "http://127.0.0.1:9000")
	if got := frameAncestors(t, csp); got != "https://support.example.com http://127.0.0.1:9000" {
		t.Errorf("frame-ancestors %q", got)
	}
	if !strings.Contains(csp, "connect-src 'self';") || !strings.Contains(csp, "default-src 'none';") {
		t.Errorf("CSP %q: the page must still talk only to its own server", csp)
	}
	csp, _ = getPage(t, "case")
	if got := frameAncestors(t, csp); got != "'none'" {
		t.Errorf("without origins: frame-ancestors %q", got)
	}
}

func TestTheStaffPageAndThePlaceholderAreFramedByNobody(t *testing.T) {
	withBundle(t, builtPages)
	if csp, _ := getPage(t, "staff", "https://support.example.com"); frameAncestors(t, csp) != "'none'" {
		t.Errorf("staff page: %q", csp)
	}
	withBundle(t, nil) // a binary built without the pages
	csp, body := getPage(t, "case", "https://support.example.com")
	if !strings.Contains(body, "built without its web pages") || frameAncestors(t, csp) != "'none'" {
		t.Errorf("placeholder: %q", csp)
	}
	if csp, _ := getPage(t, "staff", "https://support.example.com"); frameAncestors(t, csp) != "'none'" {
		t.Errorf("staff placeholder: %q", csp)
	}
}

func TestTheCasePageNamesTheOriginsItMayPostTo(t *testing.T) {
	withBundle(t, builtPages)
	const tag = `<meta name="casedrop-embed-origins" content="https://support.example.com http://127.0.0.1:9000">`
	_, body := getPage(t, "case", "https://support.example.com", "http://127.0.0.1:9000")
	if !strings.Contains(body, "<head>\n"+tag+"\n<meta charset") {
		t.Errorf("case page has no %s first in its head:\n%s", tag, body)
	}
	if strings.Count(body, "casedrop-embed-origins") != 1 || !strings.Contains(body, "https://casedrop.example/files/") {
		t.Errorf("case page:\n%s", body)
	}
	_, body = getPage(t, "case")
	if !strings.Contains(body, `<meta name="casedrop-embed-origins" content="">`) {
		t.Errorf("without origins:\n%s", body)
	}
	_, body = getPage(t, "staff", "https://support.example.com")
	if strings.Contains(body, "casedrop-embed-origins") {
		t.Errorf("staff page names the origins:\n%s", body)
	}
}

func TestTheOriginsMetaTagIsEscapedAndFindsAnyHeadTag(t *testing.T) {
	withBundle(t, map[string]string{"case.html": `<!doctype html><HTML><HEAD lang="en" data-x='a>b'><title>t</title></HEAD><body></body></HTML>`})
	// New refuses such origins; the page escapes them all the same.
	_, body := getPage(t, "case", `https://a.example"><script>alert(1)</script>`)
	want := `<HEAD lang="en" data-x='a>b'>` + "\n" +
		`<meta name="casedrop-embed-origins" content="https://a.example&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"><title>`
	if !strings.Contains(body, want) {
		t.Errorf("meta tag not escaped or not right after <HEAD ...>:\n%s", body)
	}
	if strings.Contains(body, "<script>") {
		t.Errorf("markup from an origin reached the page:\n%s", body)
	}
}

func TestACasePageWithoutAHeadIsNotServedHalfMade(t *testing.T) {
	withBundle(t, map[string]string{"case.html": "<!doctype html><body>no head</body>"})
	_, body := getPage(t, "case", "https://support.example.com")
	if !strings.Contains(body, "built without its web pages") {
		t.Errorf("want the placeholder, got:\n%s", body)
	}
}
