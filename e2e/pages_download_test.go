package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/testserver"
)

// The staff page's downloads go to the browser's own download manager,
// whatever their size: a 3 GiB file and, while it still downloads, the
// case's zip, fetched by Debian's chromium through download links.
func TestPageForStaffHandsA3GiBFileAndTheCasesZipToTheBrowsersDownloadManager(t *testing.T) {
	root := requirePages(t)
	const (
		caseID  = "CASE-3072"
		name    = "core.3gib"
		size    = 3 << 30
		maxHeap = 64 * mib // the page's JavaScript heap, at most, while they download
	)
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, caseID)
	customer := srv.Credential(t, caseID, "customer")
	staff := srv.Credential(t, caseID, "staff")

	begin := time.Now()
	t.Cleanup(func() { t.Logf("the test took %v", time.Since(begin).Round(time.Millisecond)) })
	body := newPattern(3072).stream(0, size)
	body.hash = sha256.New()
	upload := srv.Create(t, customer.Token, name, size, "")
	if offset, _, err := srv.Patch(t.Context(), customer.Token, upload, 0, body, size); err != nil || offset != size {
		t.Fatalf("uploading 3 GiB: offset %d, %v", offset, err)
	}
	body.waitEOF(t, 10*time.Second)
	want := hex.EncodeToString(body.hash.Sum(nil))
	checkComplete(t, fileNamed(t, srv.Files(t, caseID), name), size, want)
	t.Logf("3 GiB uploaded in %v", time.Since(begin).Round(time.Millisecond))

	type download struct {
		Name, URL, SHA256                string
		Size                             int64
		ClickedAt, StartedAt, FinishedAt int64 // ms since the epoch
	}
	var out struct {
		Downloads   []download
		HeapMax     int64 // the V8 heap and array buffers' storage
		HeapBacking int64 // of which array buffers'
		HeapSamples int
		Status      string
	}
	// The zip is the same bytes whoever asks: the admin's, hashed
	// meanwhile, is what the browser must have saved.
	var zipSHA256 string
	zipHashed := make(chan error, 1)
	go func() {
		var err error
		zipSHA256, err = servedSHA256(t.Context(), srv, "/api/v1/cases/"+caseID+"/archive.zip")
		zipHashed <- err
	}()
	runPageScript(t, root, "page_download_big.mjs", map[string]any{
		"url":  linkOf(srv.URL, "/staff/cases/", caseID, staff),
		"file": name,
		"dir":  t.TempDir(),
	}, &out)
	if len(out.Downloads) != 2 {
		t.Fatalf("downloads %+v, want the file's and the zip's", out.Downloads)
	}
	file, zip := out.Downloads[0], out.Downloads[1]
	if err := <-zipHashed; err != nil {
		t.Fatal(err)
	}
	responses := accessLog(t, srv.Log())
	fileEnd := responseEnd(t, responses, "/api/v1/cases/"+caseID+"/files/"+name)

	t.Run("the browser saved the file and the zip with the right SHA-256", func(t *testing.T) {
		if file.Name != name || file.Size != size || file.SHA256 != want {
			t.Errorf("the file was saved as %s, %d bytes, SHA-256 %s; want %s, %d bytes, %s", file.Name, file.Size, file.SHA256, name, int64(size), want)
		}
		if zip.Name != caseID+".zip" || zip.SHA256 != zipSHA256 {
			t.Errorf("the zip was saved as %s, %d bytes, SHA-256 %s; want %s.zip, %s (the server's zip)", zip.Name, zip.Size, zip.SHA256, caseID, zipSHA256)
		}
		if !strings.Contains(out.Status, "your browser shows the progress") {
			t.Errorf("the page says %q", out.Status)
		}
	})
	t.Run("the download events came at once, long before the bodies were complete", func(t *testing.T) {
		fileMS := fileEnd.Sub(time.UnixMilli(file.StartedAt)).Milliseconds()
		t.Logf("file: download event %d ms after the click, complete %d ms after it; the server sent its last byte %d ms after the event",
			file.StartedAt-file.ClickedAt, file.FinishedAt-file.ClickedAt, fileMS)
		t.Logf("zip: download event %d ms after its click, complete %d ms after it", zip.StartedAt-zip.ClickedAt, zip.FinishedAt-zip.ClickedAt)
		if fileMS < 1000 {
			t.Errorf("the file's download event came %d ms before the server sent its last byte; want it at the start of a 3 GiB body", fileMS)
		}
		if zip.FinishedAt-zip.StartedAt < 1000 {
			t.Errorf("the zip's download event came %d ms before it was complete", zip.FinishedAt-zip.StartedAt)
		}
	})
	t.Run("the two downloads ran side by side", func(t *testing.T) {
		if zip.StartedAt >= file.FinishedAt {
			t.Errorf("the zip started at %d, after the file was complete at %d", zip.StartedAt, file.FinishedAt)
		}
	})
	t.Run("the page's JavaScript heap stayed small", func(t *testing.T) {
		t.Logf("the page's heap: at most %.1f MiB (array buffers %.1f MiB) over %d samples", float64(out.HeapMax)/mib, float64(out.HeapBacking)/mib, out.HeapSamples)
		if out.HeapSamples < 10 || out.HeapMax == 0 {
			t.Fatalf("%d heap samples, at most %d bytes: the heap was not measured during the downloads", out.HeapSamples, out.HeapMax)
		}
		if out.HeapMax >= maxHeap {
			t.Errorf("the page's heap reached %.1f MiB, want below %d MiB: the bytes pass through the page", float64(out.HeapMax)/mib, maxHeap/mib)
		}
	})
	t.Run("the downloads were links of the staff credential, audited as its downloads, and no link is in the log", func(t *testing.T) {
		log := srv.Log()
		for _, d := range out.Downloads {
			u, err := url.Parse(d.URL)
			if err != nil {
				t.Fatal(err)
			}
			link := u.Query().Get("dl")
			if link == "" {
				t.Errorf("%s was fetched from %s, with no download link", d.Name, u.Path)
				continue
			}
			if strings.Contains(log, link) || strings.Contains(log, link[strings.LastIndexByte(link, '.')+1:]) {
				t.Errorf("the download link of %s is in the server's log", d.Name)
			}
		}
		if strings.Contains(log, "dl=") {
			t.Error("a query string with a download link is in the server's log")
		}
		events := downloadsAudited(t, srv, caseID, "type=file.downloaded,archive.downloaded&credential="+staff.ID)
		if len(events) != 2 {
			t.Fatalf("audit events %+v, want the file's and the zip's download", events)
		}
		for _, ev := range events {
			if ev.CredentialID != staff.ID || !strings.HasPrefix(ev.Detail, "link") {
				t.Errorf("%s %s: credential %s, detail %q; want the staff credential %s, by link", ev.Type, ev.File, ev.CredentialID, ev.Detail, staff.ID)
			}
		}
	})
}

// downloadEvent is a download's record in a case's audit trail.
type downloadEvent struct {
	Type, File, Detail string
	CredentialID       string `json:"credential_id"`
}

// downloadsAudited returns the records of caseID's audit trail that query
// (the API's filters) selects.
func downloadsAudited(t *testing.T, srv *testserver.Server, caseID, query string) []downloadEvent {
	t.Helper()
	resp, body := get(t, srv, "/api/v1/cases/"+caseID+"/audit?"+query, http.Header{"Authorization": {"Bearer " + srv.AdminToken}})
	var trail struct{ Events []downloadEvent }
	if err := json.Unmarshal(body, &trail); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the audit trail: %s, %v", resp.Status, err)
	}
	return trail.Events
}

// servedSHA256 is the hex SHA-256 of what srv answers the admin at path,
// read as a stream. It may run beside the test's goroutine.
func servedSHA256(ctx context.Context, srv *testserver.Server, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
	resp, err := srv.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return "", fmt.Errorf("GET %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// accessEntry is a line of the server's access log.
type accessEntry struct {
	Time   time.Time
	Msg    string
	Method string
	Path   string
	Status int
}

func accessLog(t *testing.T, log string) []accessEntry {
	t.Helper()
	var out []accessEntry
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e accessEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Msg == "http" {
			out = append(out, e)
		}
	}
	return out
}

// responseEnd is when the server logged the one GET of path: when its
// response had been sent.
func responseEnd(t *testing.T, log []accessEntry, path string) time.Time {
	t.Helper()
	var found []accessEntry
	for _, e := range log {
		if e.Method == http.MethodGet && e.Path == path {
			found = append(found, e)
		}
	}
	if len(found) != 1 || found[0].Status != http.StatusOK {
		t.Fatalf("the access log has %+v for GET %s; want one 200", found, path)
	}
	return found[0].Time
}

// The built server's download links, without a browser: each opens its
// own download only, while its credential lives, and none reaches the log.
// (Their expiry is the unit tests', on a clock they move.)
func TestDownloadLinksOpenTheirOwnDownloadOnlyWhileTheirCredentialLivesAndStayOutOfTheLog(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	for _, c := range []string{"CASE-A", "CASE-B"} {
		srv.OpenCase(t, c)
		customer := srv.Credential(t, c, "customer")
		for _, name := range []string{"a.log", "b.log"} {
			upload := srv.Create(t, customer.Token, name, 5, "")
			if _, _, err := srv.Patch(t.Context(), customer.Token, upload, 0, strings.NewReader("hello"), 5); err != nil {
				t.Fatal(err)
			}
		}
	}
	staff := srv.Credential(t, "CASE-A", "staff")
	mint := func(token, caseID string, downloads ...string) []string {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"downloads": downloads})
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/v1/cases/"+caseID+"/download-links", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var links struct{ Links []struct{ URL string } }
		if err := json.NewDecoder(resp.Body).Decode(&links); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("minting links: %s (%v)", resp.Status, err)
		}
		var out []string
		for _, l := range links.Links {
			u, err := url.Parse(l.URL)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, u.Query().Get("dl"))
		}
		return out
	}
	fetch := func(path, link string) int {
		t.Helper()
		resp, _ := get(t, srv, path+"?dl="+link, nil)
		return resp.StatusCode
	}
	links := mint(staff.Token, "CASE-A", "files/a.log", "archive.zip")
	fileLink, zipLink := links[0], links[1]
	for _, tc := range []struct {
		name, path, link string
		want             int
	}{
		{"a file's link opens its file", "/api/v1/cases/CASE-A/files/a.log", fileLink, http.StatusOK},
		{"the zip's link opens the zip", "/api/v1/cases/CASE-A/archive.zip", zipLink, http.StatusOK},
		{"a file's link is refused for another file", "/api/v1/cases/CASE-A/files/b.log", fileLink, http.StatusForbidden},
		{"a file's link is refused for the zip", "/api/v1/cases/CASE-A/archive.zip", fileLink, http.StatusForbidden},
		{"a file's link is refused for the same name in another case", "/api/v1/cases/CASE-B/files/a.log", fileLink, http.StatusForbidden},
		{"the zip's link is refused for another case's zip", "/api/v1/cases/CASE-B/archive.zip", zipLink, http.StatusForbidden},
		{"a credential's token is refused as a link", "/api/v1/cases/CASE-A/files/a.log", staff.Token, http.StatusUnauthorized},
	} {
		if got := fetch(tc.path, tc.link); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}

	srv.RevokeCredential(t, staff.ID)
	if got := fetch("/api/v1/cases/CASE-A/files/a.log", fileLink); got != http.StatusUnauthorized {
		t.Errorf("a link of a revoked credential: %d, want 401", got)
	}
	staffB := srv.Credential(t, "CASE-B", "staff")
	linkB := mint(staffB.Token, "CASE-B", "files/a.log")[0]
	adminPost(t, srv, "/api/v1/cases/CASE-B/close")
	if got := fetch("/api/v1/cases/CASE-B/files/a.log", linkB); got != http.StatusUnauthorized {
		t.Errorf("a link once its case closed: %d, want 401", got)
	}

	log := srv.Log()
	if !strings.Contains(log, "/api/v1/cases/CASE-A/files/a.log") {
		t.Fatal("the downloads are not in the log at all")
	}
	for _, link := range []string{fileLink, zipLink, linkB} {
		if strings.Contains(log, link[strings.LastIndexByte(link, '.')+1:]) {
			t.Error("a download link is in the server's log")
		}
	}
	if strings.Contains(log, "dl=") {
		t.Error("a query string with a download link is in the server's log")
	}
}
