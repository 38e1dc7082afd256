package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/testserver"
)

// The upload and staff pages in a real browser: Debian's chromium, driven
// by playwright-core from the scripts in e2e/js/page_*.mjs, against the
// built binary. The tests leave screenshots of the pages in
// docs/screenshots, which the README shows.

const chromiumPath = "/usr/bin/chromium"

// requirePages returns the module root once the pages' bundle, node,
// playwright-core and chromium are all there.
func requirePages(t *testing.T) string {
	t.Helper()
	root, err := testserver.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "web", "ui", "dist", "case.html")); err != nil {
		t.Fatalf("the pages are not built, so the test binary would serve the placeholder: run `make ui` (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("playwright-core is not installed: run `npm ci` in %s (%v)", root, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node runs the browser tests: %v", err)
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Debian's chromium is needed (scripts/test-deps.sh installs it): %v", err)
	}
	return root
}

// screenshotDir is where the tests leave pictures of the pages.
func screenshotDir(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runPageScript runs e2e/js/<script> with job on stdin and decodes the
// JSON it prints into out. Every problem the script saw on the pages (a
// script error, something the Content-Security-Policy refused) fails the
// test.
func runPageScript(t *testing.T, root, script string, job, out any) {
	t.Helper()
	startPageScript(t, root, script, job)(out)
}

// startPageScript starts e2e/js/<script> as runPageScript does, for a test
// that does something while the page is open; the function it returns
// waits for the script, on the test's goroutine, and decodes its answer.
func startPageScript(t *testing.T, root, script string, job any) (wait func(out any)) {
	t.Helper()
	in, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, "node", filepath.Join(root, "e2e", "js", script))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromiumPath)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("node %s: %v", script, err)
	}
	waited := false
	t.Cleanup(func() {
		cancel()
		if !waited {
			_ = cmd.Wait() // the test ended before it waited: end the script
		}
	})
	return func(out any) {
		t.Helper()
		waited = true
		if err := cmd.Wait(); err != nil {
			t.Fatalf("node %s: %v after %v\nstdout: %s\nstderr:\n%s", script, err, time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
		}
		t.Logf("node %s took %v", script, time.Since(start).Round(time.Millisecond))
		if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
			t.Fatalf("node %s printed %q: %v", script, stdout.String(), err)
		}
		var problems struct {
			Problems []string `json:"problems"`
		}
		_ = json.Unmarshal(stdout.Bytes(), &problems)
		for _, p := range problems.Problems {
			t.Errorf("on the page: %s", p)
		}
	}
}

// pageURL is a link with the token alone in the fragment, as a credential
// of the release before short SFTP passwords had, or as one is tampered with.
func pageURL(base, page, caseID, token string) string {
	return base + page + caseID + "#token=" + token
}

// linkOf is the link a credential's holder gets (its upload_url): the
// page, and the token and the SFTP password in the fragment.
func linkOf(base, page, caseID string, c testserver.Credential) string {
	return pageURL(base, page, caseID, c.Token) + "&password=" + c.Password
}

func TestPageUploadsThreeFilesChosenAtOnceAndShowsTheirDigestsWithACheckMark(t *testing.T) {
	root := requirePages(t)
	srv := testserver.Start(t, testserver.Options{})
	const caseID = "CASE-4711"
	srv.OpenCase(t, caseID)
	cred := srv.Credential(t, caseID, "customer")

	files := []struct {
		name, sha256, path string
		size               int64
	}{
		{name: "app-server.log", size: 6 * mib},
		{name: "config-dump.tar.gz", size: mib + 123},
		{name: "capture.pcap", size: 24 * mib},
	}
	dir := t.TempDir()
	var paths []string
	for i := range files {
		f := &files[i]
		f.path = filepath.Join(dir, f.name)
		f.sha256 = newPattern(uint64(300+i)).writeFile(t, f.path, f.size)
		paths = append(paths, f.path)
	}

	var out struct {
		Rows []struct {
			Name, State, SHA256, Text string
			Verified                  bool
		}
		Midway    int
		CaseFiles []string
		Overflow  int
	}
	runPageScript(t, root, "page_upload.mjs", map[string]any{
		"url":   linkOf(srv.URL, "/cases/", caseID, cred),
		"files": paths,
		// Slow enough that the screenshot catches the uploads mid-way.
		"limit":       8 * mib,
		"screenshots": screenshotDir(t, root),
	}, &out)

	if out.Overflow > 0 {
		t.Errorf("at 200 %% zoom the case page is %d pixels wider than the window", out.Overflow)
	}
	if out.Midway < 2 {
		t.Errorf("%d uploads were running at once mid-way; want the files uploaded in parallel", out.Midway)
	}
	if len(out.Rows) != len(files) {
		t.Fatalf("the page lists %d uploads, want %d: %+v", len(out.Rows), len(files), out.Rows)
	}
	listed := srv.Files(t, caseID)
	for i, f := range files {
		row := out.Rows[i]
		if row.Name != f.name || row.State != "done" {
			t.Errorf("upload %d: %s is %q, want %s done\n%s", i, row.Name, row.State, f.name, row.Text)
		}
		if row.SHA256 != f.sha256 {
			t.Errorf("%s: the page shows SHA-256 %q, want %s (Go's)", f.name, row.SHA256, f.sha256)
		}
		if !row.Verified {
			t.Errorf("%s: no check mark; the page says:\n%s", f.name, row.Text)
		}
		checkComplete(t, fileNamed(t, listed, f.name), f.size, f.sha256)
		if !slices.Contains(out.CaseFiles, f.name) {
			t.Errorf("%s is not under \"Files in this case\" (%v)", f.name, out.CaseFiles)
		}
	}
}

func TestPageContinuesALargeUploadAfterAReloadFromTheOffsetTheServerStored(t *testing.T) {
	root := requirePages(t)
	const (
		size     = 200 * mib
		caseID   = "CASE-8086"
		name     = "core.dump"
		limit    = 64 * mib // bytes per second before the reload
		reloadAt = 0.75     // of the file sent
		// A restart from 0 sends the file plus what was sent before the
		// reload, at least 1.75 times the file; a resume sends it about
		// once, plus what the server had not stored yet at the reload.
		maxRatio = 1.6
	)
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, caseID)
	cred := srv.Credential(t, caseID, "customer")
	path := filepath.Join(t.TempDir(), name)
	want := newPattern(400).writeFile(t, path, size)
	// The browser talks to the server through a proxy that counts the
	// bytes it sends (and never cuts).
	proxy := startCuttingProxy(t, strings.TrimPrefix(srv.URL, "https://"), math.MaxInt64)

	var out struct {
		ReloadedAt      float64
		Unfinished      []string
		UnfinishedAfter int
		Row             struct {
			State, SHA256, Text string
			ResumedFrom         int64
			Verified            bool
		}
	}
	runPageScript(t, root, "page_resume.mjs", map[string]any{
		"url":         linkOf("https://"+proxy.addr(), "/cases/", caseID, cred),
		"file":        path,
		"limit":       limit,
		"reloadAt":    reloadAt,
		"screenshots": screenshotDir(t, root),
	}, &out)

	if len(out.Unfinished) != 1 || !strings.Contains(out.Unfinished[0], name) {
		t.Errorf("after the reload the page lists the unfinished uploads %q; want the one of %s", out.Unfinished, name)
	}
	if out.UnfinishedAfter != 0 {
		t.Errorf("%d uploads still listed as unfinished once the file was chosen again", out.UnfinishedAfter)
	}
	row := out.Row
	if row.State != "done" || row.SHA256 != want || !row.Verified {
		t.Errorf("%s: %s, SHA-256 %q, check mark %v; want done, %s, a check mark\n%s", name, row.State, row.SHA256, row.Verified, want, row.Text)
	}
	if row.ResumedFrom <= 0 || row.ResumedFrom >= size {
		t.Errorf("the upload continued from offset %d; want 0 < offset < %d", row.ResumedFrom, int64(size))
	}
	carried := proxy.carried.Load()
	if ratio := float64(carried) / size; ratio >= maxRatio {
		t.Errorf("the browser sent %d bytes (%.2f times the file); want fewer than %.1f times: the upload started again from 0", carried, ratio, maxRatio)
	}
	t.Logf("reloaded at %.0f %% sent; continued from %d of %d bytes; the browser sent %.2f times the file",
		out.ReloadedAt*100, row.ResumedFrom, int64(size), float64(carried)/size)
	checkComplete(t, fileNamed(t, srv.Files(t, caseID), name), size, want)
}

func TestPageSaysPlainlyWhenItsLinkIsTamperedWithMissingOrItsCaseClosed(t *testing.T) {
	root := requirePages(t)
	srv := testserver.Start(t, testserver.Options{})
	const caseID = "CASE-1337"
	srv.OpenCase(t, caseID)
	customer := srv.Credential(t, caseID, "customer")
	tampered := tamper(t, customer.Token)
	adminPost(t, srv, "/api/v1/cases/"+caseID+"/close")
	// Staff keep access to a closed case until its purge.
	staff := srv.Credential(t, caseID, "staff")

	visits := []struct {
		name, url, screenshot string
		check                 func(t *testing.T, v pageVisit)
	}{
		{
			name: "a tampered token", url: pageURL(srv.URL, "/cases/", caseID, tampered), screenshot: "case-invalid-link.png",
			check: func(t *testing.T, v pageVisit) {
				v.wantRefusal(t, "invalid_credential", "This link is not valid")
			},
		},
		{
			name: "no token", url: srv.URL + "/cases/" + caseID,
			check: func(t *testing.T, v pageVisit) {
				v.wantRefusal(t, "no_token", "needs your personal link")
			},
		},
		{
			name: "the customer's link once the case is closed", url: linkOf(srv.URL, "/cases/", caseID, customer), screenshot: "case-closed.png",
			check: func(t *testing.T, v pageVisit) {
				v.wantRefusal(t, "credential_revoked", "usually because the case was closed")
			},
		},
		{
			name: "the case page with a credential issued after the close", url: linkOf(srv.URL, "/cases/", caseID, staff),
			check: func(t *testing.T, v pageVisit) {
				if !v.Ready || !strings.Contains(v.Closed, "This case is closed") || v.SendVisible {
					t.Errorf("ready %v, closed notice %q, upload form shown %v; want the notice and no form", v.Ready, v.Closed, v.SendVisible)
				}
			},
		},
		{
			name: "the staff page of the closed case", url: linkOf(srv.URL, "/staff/cases/", caseID, staff), screenshot: "staff-closed.png",
			check: func(t *testing.T, v pageVisit) {
				if !v.Ready || !strings.Contains(v.CaseState, "Closed") || !strings.Contains(v.CaseState, "deleted on") {
					t.Errorf("ready %v, case state %q; want it closed, with its purge date", v.Ready, v.CaseState)
				}
			},
		},
	}
	job := map[string]any{"screenshots": screenshotDir(t, root)}
	var list []map[string]string
	for _, v := range visits {
		list = append(list, map[string]string{"url": v.url, "screenshot": v.screenshot})
	}
	job["visits"] = list
	var out struct{ Results []pageVisit }
	runPageScript(t, root, "page_visit.mjs", job, &out)
	if len(out.Results) != len(visits) {
		t.Fatalf("%d results for %d visits", len(out.Results), len(visits))
	}
	for i, v := range visits {
		t.Run(v.name, func(t *testing.T) {
			got := out.Results[i]
			if strings.Contains(got.Address, "token=") || strings.Contains(got.Address, "password=") {
				t.Errorf("the credential stayed in the address bar: %s", got.Address)
			}
			v.check(t, got)
		})
	}
}

func TestPageOpenedWithAnUploadLinkRedeemsItOnceAndKeepsItsCredentialOnAReload(t *testing.T) {
	root := requirePages(t)
	srv := testserver.Start(t, testserver.Options{})
	const caseID, name = "CASE-6502", "portal-upload.log"
	srv.OpenCase(t, caseID)
	// The link names the public URL, https://localhost:port by default:
	// the page redeems it from that origin.
	link := srv.UploadLink(t, caseID)
	path := filepath.Join(t.TempDir(), name)
	want := newPattern(650).writeFile(t, path, 3*mib+17)

	var out struct {
		Address string
		Row     struct {
			State, SHA256, Text string
			Verified            bool
		}
		Reloaded      struct{ Ready bool }
		ReloadedFiles []string
		Again         struct {
			Ready                   bool
			Error, Refusal, Address string
		}
	}
	runPageScript(t, root, "page_link.mjs", map[string]any{"url": link, "file": path}, &out)

	if strings.Contains(out.Address, "#") || strings.Contains(out.Address, "link=") {
		t.Errorf("the link stayed in the address bar: %s", out.Address)
	}
	if out.Row.State != "done" || out.Row.SHA256 != want || !out.Row.Verified {
		t.Errorf("the upload is %s with SHA-256 %q (check mark %v), want done with %s:\n%s", out.Row.State, out.Row.SHA256, out.Row.Verified, want, out.Row.Text)
	}
	if !out.Reloaded.Ready || !slices.Contains(out.ReloadedFiles, name) {
		t.Errorf("after a reload: ready %v, files %v; want the case with %s", out.Reloaded.Ready, out.ReloadedFiles, name)
	}
	if out.Again.Ready || out.Again.Error != "link_used" || !strings.Contains(out.Again.Refusal, "already been used") {
		t.Errorf("the link in a fresh browser: ready %v, error %q, the page says %q; want it refused as used", out.Again.Ready, out.Again.Error, out.Again.Refusal)
	}
	checkComplete(t, fileNamed(t, srv.Files(t, caseID), name), 3*mib+17, want)
	code := link[strings.Index(link, "#link=")+len("#link="):]
	if strings.Contains(srv.Log(), code) {
		t.Error("the link's code is in the server's log")
	}
}

// pageVisit is what e2e/js/page_visit.mjs reports of a page.
type pageVisit struct {
	Downloaded  string
	Ready       bool
	Error       string
	Refusal     string
	Closed      string
	CaseState   string
	SendVisible bool
	Files       []string
	Address     string
}

func (v pageVisit) wantRefusal(t *testing.T, code, text string) {
	t.Helper()
	if v.Ready || v.Error != code || !strings.Contains(v.Refusal, text) {
		t.Errorf("ready %v, error %q, the page says %q; want error %s saying %q", v.Ready, v.Error, v.Refusal, code, text)
	}
}

func TestPageForStaffListsEveryFileAndDownloadsOneSeveralAndAllWithTheRightBytes(t *testing.T) {
	root := requirePages(t)
	srv := testserver.Start(t, testserver.Options{})
	const caseID = "CASE-2024"
	srv.OpenCase(t, caseID)
	customer := srv.Credential(t, caseID, "customer")
	staff := srv.Credential(t, caseID, "staff")

	type file struct {
		name, by      string
		size, sent    int64
		sha256, state string
		declare       string // a digest to declare; a wrong one gets the file rejected
		data          []byte
	}
	files := []*file{
		{name: "core.dump", by: customer.Token, size: 3 * mib, state: "complete"},
		{name: "trace.pcap", by: customer.Token, size: mib + 17, state: "complete"},
		{name: "hotfix-4711.patch", by: staff.Token, size: 20 << 10, state: "complete"},
		{name: "app-logs.tar.gz", by: customer.Token, size: 12 * mib, sent: 5 * mib, state: "uploading"},
		{name: "settings.xml", by: customer.Token, size: 4 << 10, state: "rejected", declare: strings.Repeat("0", 64)},
	}
	for i, f := range files {
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, newPattern(uint64(500+i)).stream(0, f.size)); err != nil {
			t.Fatal(err)
		}
		f.data = buf.Bytes()
		sum := sha256.Sum256(f.data)
		f.sha256 = hex.EncodeToString(sum[:])
		sent := f.size
		if f.sent > 0 {
			sent = f.sent
		}
		url := srv.Create(t, f.by, f.name, f.size, f.declare)
		// A rejected file's PATCH fails with 460; the others succeed.
		_, _, _ = srv.Patch(t.Context(), f.by, url, 0, bytes.NewReader(f.data[:sent]), sent)
	}
	listed := srv.Files(t, caseID)
	for _, f := range files {
		if got := fileNamed(t, listed, f.name).State; got != f.state {
			t.Fatalf("setting up: %s is %s, want %s", f.name, got, f.state)
		}
	}

	dir := t.TempDir()
	type staffRow struct{ Name, State, SHA256, Text string }
	var out struct {
		Rows              []staffRow
		CaseState         string
		One, Several, Zip []string
		Sums, Sig, SSHSig []string
		VerifyLines       string
		Overflow          int
	}
	shots := screenshotDir(t, root)
	runPageScript(t, root, "page_staff.mjs", map[string]any{
		"url":         linkOf(srv.URL, "/staff/cases/", caseID, staff),
		"one":         "core.dump",
		"several":     []string{"trace.pcap", "hotfix-4711.patch"},
		"dir":         dir,
		"screenshots": shots,
	}, &out)

	if out.Overflow > 0 {
		t.Errorf("at 200 %% zoom the staff page is %d pixels wider than the window", out.Overflow)
	}
	t.Run("the list has every file with its state and digest", func(t *testing.T) {
		if !strings.Contains(out.CaseState, "Open") {
			t.Errorf("case state %q, want it open", out.CaseState)
		}
		if len(out.Rows) != len(files) {
			t.Fatalf("%d rows, want %d: %+v", len(out.Rows), len(files), out.Rows)
		}
		for _, f := range files {
			i := slices.IndexFunc(out.Rows, func(r staffRow) bool { return r.Name == f.name })
			if i < 0 {
				t.Errorf("%s is not listed", f.name)
				continue
			}
			row := out.Rows[i]
			if row.State != f.state {
				t.Errorf("%s: state %q, want %q", f.name, row.State, f.state)
			}
			if f.state == "complete" && row.SHA256 != f.sha256 {
				t.Errorf("%s: SHA-256 %q, want %s", f.name, row.SHA256, f.sha256)
			}
			if f.state == "uploading" && !strings.Contains(row.Text, "Uploading 41 %") {
				t.Errorf("%s: the row says %q; want its progress from the bytes received (41 %%)", f.name, row.Text)
			}
		}
	})

	byName := map[string]*file{}
	for _, f := range files {
		byName[f.name] = f
	}
	t.Run("downloads through the page have the right bytes", func(t *testing.T) {
		for _, path := range slices.Concat(out.One, out.Several) {
			f := byName[filepath.Base(path)]
			if f == nil {
				t.Errorf("downloaded an unexpected %s", path)
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, f.data) {
				t.Errorf("the download of %s has %d bytes that differ from the %d uploaded", f.name, len(got), len(f.data))
			}
		}
		if len(out.One) != 1 || len(out.Several) != 2 {
			t.Errorf("downloads: one %v, several %v; want 1 and 2", out.One, out.Several)
		}
	})

	t.Run("the zip of all files holds every complete file and SHA256SUMS", func(t *testing.T) {
		if len(out.Zip) != 1 || filepath.Base(out.Zip[0]) != caseID+".zip" {
			t.Fatalf("zip downloads %v, want %s.zip", out.Zip, caseID)
		}
		zr, err := zip.OpenReader(out.Zip[0])
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		var names []string
		for _, zf := range zr.File {
			names = append(names, zf.Name)
			f := byName[zf.Name]
			if f == nil {
				continue
			}
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			_ = rc.Close()
			if err != nil || !bytes.Equal(got, f.data) {
				t.Errorf("%s in the zip: %d bytes (%v), differ from the upload", zf.Name, len(got), err)
			}
		}
		slices.Sort(names)
		if want := []string{"SHA256SUMS", "core.dump", "hotfix-4711.patch", "trace.pcap"}; !slices.Equal(names, want) {
			t.Errorf("the zip holds %v, want %v", names, want)
		}
	})

	t.Run("SHA256SUMS through the page lists the complete files", func(t *testing.T) {
		if len(out.Sums) != 1 {
			t.Fatalf("SHA256SUMS downloads %v", out.Sums)
		}
		sums, err := os.ReadFile(out.Sums[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			line := f.sha256 + "  " + f.name
			if has := strings.Contains(string(sums), line); has != (f.state == "complete") {
				t.Errorf("SHA256SUMS has %q: %v; want %v\n%s", line, has, f.state == "complete", sums)
			}
		}
	})

	t.Run("SHA256SUMS.sig through the page is a signature", func(t *testing.T) {
		if len(out.Sig) != 1 {
			t.Fatalf("SHA256SUMS.sig downloads %v", out.Sig)
		}
		if sig, err := os.ReadFile(out.Sig[0]); err != nil || len(sig) != 64 {
			t.Errorf("SHA256SUMS.sig: %d bytes (%v), want an Ed25519 signature's 64", len(sig), err)
		}
	})

	t.Run("SHA256SUMS.sshsig through the page is an SSH signature, and the page shows its namespace", func(t *testing.T) {
		if len(out.SSHSig) != 1 {
			t.Fatalf("SHA256SUMS.sshsig downloads %v", out.SSHSig)
		}
		if sig, err := os.ReadFile(out.SSHSig[0]); err != nil || !strings.HasPrefix(string(sig), "-----BEGIN SSH SIGNATURE-----") {
			t.Errorf("SHA256SUMS.sshsig: %v\n%s", err, sig)
		}
		if want := "-n casedrop-case:" + caseID + " "; !strings.Contains(out.VerifyLines, want) {
			t.Errorf("the page's ssh-keygen line lacks %q:\n%s", want, out.VerifyLines)
		}
	})

	t.Run("the customer's page lists the file support put into the case, and downloads it", func(t *testing.T) {
		var visit struct{ Results []pageVisit }
		runPageScript(t, root, "page_visit.mjs", map[string]any{
			"visits": []map[string]string{{"url": linkOf(srv.URL, "/cases/", caseID, customer), "screenshot": "case-files.png",
				"download": "hotfix-4711.patch"}},
			"screenshots": shots,
			"dir":         t.TempDir(),
		}, &visit)
		if len(visit.Results) != 1 || !slices.Contains(visit.Results[0].Files, "hotfix-4711.patch") {
			t.Fatalf("the customer's page lists %+v; want hotfix-4711.patch among them", visit.Results)
		}
		got, err := os.ReadFile(visit.Results[0].Downloaded)
		if err != nil || !bytes.Equal(got, byName["hotfix-4711.patch"].data) || filepath.Base(visit.Results[0].Downloaded) != "hotfix-4711.patch" {
			t.Errorf("the case page's download: %s, %d bytes (%v); want hotfix-4711.patch as uploaded", visit.Results[0].Downloaded, len(got), err)
		}
	})
	t.Run("the page's downloads were download links, audited as the credential's", func(t *testing.T) {
		events := downloadsAudited(t, srv, caseID, "type=file.downloaded,archive.downloaded,manifest.downloaded")
		byCredential := map[string]int{}
		for _, ev := range events {
			byCredential[ev.CredentialID]++
			if !strings.HasPrefix(ev.Detail, "link") {
				t.Errorf("%s %s by %s: detail %q, want a download by link", ev.Type, ev.File, ev.CredentialID, ev.Detail)
			}
		}
		// Staff: one file, two selected, the zip, SHA256SUMS; the customer: one file.
		if byCredential[staff.ID] != 5 || byCredential[customer.ID] != 1 || len(byCredential) != 2 {
			t.Errorf("download events by credential %v; want 5 by staff %s and 1 by the customer %s", byCredential, staff.ID, customer.ID)
		}
	})
}

func TestPagesHaveAStrictContentSecurityPolicyAndAssetsThatCacheUntilTheyChange(t *testing.T) {
	requirePages(t)
	srv := testserver.Start(t, testserver.Options{})
	const csp = "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; connect-src 'self'; " +
		"img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
	for _, page := range []string{"/cases/CASE-1", "/staff/cases/CASE-1"} {
		resp, body := get(t, srv, page, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != csp ||
			resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("ETag") == "" {
			t.Errorf("%s: %s, CSP %q, Cache-Control %q, ETag %q; want 200, the strict CSP, no-cache and an ETag",
				page, resp.Status, resp.Header.Get("Content-Security-Policy"), resp.Header.Get("Cache-Control"), resp.Header.Get("ETag"))
		}
		if bytes.Contains(body, []byte("<style")) || regexp.MustCompile(`<script>|<script [^>]*>[^<]`).Match(body) || bytes.Contains(body, []byte(" style=")) {
			t.Errorf("%s has inline script or style:\n%s", page, body)
		}
		again, _ := get(t, srv, page, http.Header{"If-None-Match": {resp.Header.Get("ETag")}})
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("%s with If-None-Match of its ETag: %s, want 304", page, again.Status)
		}
		assets := regexp.MustCompile(`/ui/[\w.-]+-[A-Z0-9]{8}\.(?:js|css)`).FindAll(body, -1)
		if len(assets) != 2 {
			t.Errorf("%s loads %q; want a script and a style sheet with content-hashed names", page, assets)
		}
		for _, a := range assets {
			resp, _ := get(t, srv, string(a), nil)
			if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
				t.Errorf("%s: %s, Cache-Control %q; want 200 and immutable", a, resp.Status, resp.Header.Get("Cache-Control"))
			}
		}
	}
	if resp, _ := get(t, srv, "/ui/case-AAAAAAAA.js", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an asset that does not exist: %s, want 404", resp.Status)
	}
}

func TestPageWhoamiDescribesTheCredentialItsCaseAndItsSFTPAccount(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	const caseID = "CASE-42"
	srv.OpenCase(t, caseID)
	cred := srv.Credential(t, caseID, "customer")
	resp, body := get(t, srv, "/api/v1/whoami", http.Header{"Authorization": {"Bearer " + cred.Token}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami: %s: %s", resp.Status, body)
	}
	var me struct {
		Case         string     `json:"case"`
		CaseState    string     `json:"case_state"`
		PurgeAt      *time.Time `json:"purge_at"`
		Role         string     `json:"role"`
		Username     string     `json:"username"`
		CredentialID string     `json:"credential_id"`
		ExpiresAt    time.Time  `json:"expires_at"`
		SFTPHost     string     `json:"sftp_host"`
		SFTPPort     int        `json:"sftp_port"`
		TusURL       string     `json:"tus_url"`
	}
	if err := json.Unmarshal(body, &me); err != nil {
		t.Fatalf("whoami: %v: %s", err, body)
	}
	if me.Case != caseID || me.CaseState != "open" || me.Role != "customer" || me.Username != cred.Username ||
		me.CredentialID != cred.ID || !me.ExpiresAt.Equal(cred.ExpiresAt) || me.SFTPHost != cred.SFTPHost ||
		me.SFTPPort != cred.SFTPPort || me.TusURL != cred.TusURL || me.PurgeAt != nil {
		t.Errorf("whoami says %s; want the credential %+v of the open case %s", body, cred, caseID)
	}
	if resp, body := get(t, srv, "/api/v1/whoami", http.Header{"Authorization": {"Bearer " + srv.AdminToken}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("whoami with the admin token: %s %s, want 403", resp.Status, body)
	}
	if resp, _ := get(t, srv, "/api/v1/whoami", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("whoami without a credential: %s, want 401", resp.Status)
	}
}

// get fetches path from srv with header and returns the response (its
// body read and closed) and the body.
func get(t *testing.T, srv *testserver.Server, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	return send(t, srv, http.MethodGet, path, header)
}

// adminPost sends an admin API POST and fails the test unless it answers 200.
func adminPost(t *testing.T, srv *testserver.Server, path string) {
	t.Helper()
	resp, body := send(t, srv, http.MethodPost, path, http.Header{"Authorization": {"Bearer " + srv.AdminToken}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s: %s", path, resp.Status, body)
	}
}

func send(t *testing.T, srv *testserver.Server, method, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// tamper changes one character in the middle of a JWT's signature.
func tamper(t *testing.T, token string) string {
	t.Helper()
	i := strings.LastIndexByte(token, '.')
	if i < 0 || len(token)-i < 20 {
		t.Fatalf("%q does not look like a JWT", token)
	}
	j := i + 10
	c := byte('A')
	if token[j] == 'A' {
		c = 'B'
	}
	return token[:j] + string(c) + token[j+1:]
}
