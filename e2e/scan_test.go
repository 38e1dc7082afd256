package e2e

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/clamdtest"
	"github.com/casedrop/casedrop/internal/icaptest"
	"github.com/casedrop/casedrop/internal/testserver"
)

// scanWait bounds the wait for a verdict: a scan retried with backoff
// comes within a few seconds of clamd answering again.
const scanWait = 60 * time.Second

// waitState waits until the case's file name is listed in state, and
// returns its entry.
func waitState(t *testing.T, srv *testserver.Server, caseID, name, state string) testserver.File {
	t.Helper()
	var f testserver.File
	err := waitFor(scanWait, func() bool {
		for _, g := range srv.Files(t, caseID) {
			if g.Name == name {
				f = g
			}
		}
		return f.State == state
	})
	if err != nil {
		t.Fatalf("%s is %q (finding %q, reason %q), never %s", name, f.State, f.Finding, f.Reason, state)
	}
	return f
}

// apiGet fetches path of the API with token and returns the status, the
// error code of a JSON error, and the body.
func apiGet(t *testing.T, srv *testserver.Server, token, path string) (int, string, []byte) {
	t.Helper()
	return apiDo(t, srv, http.MethodGet, token, path, "")
}

// apiDo sends method to path of the API with token and a JSON body (none
// if empty), and returns as apiGet does.
func apiDo(t *testing.T, srv *testserver.Server, method, token, path, body string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	var e struct{ Code string }
	_ = json.Unmarshal(answer, &e)
	return resp.StatusCode, e.Code, answer
}

// sftpUpload uploads data as name with pkg/sftp's client.
func sftpUpload(t *testing.T, srv *testserver.Server, cred testserver.Credential, name string, data []byte) {
	t.Helper()
	c := goSFTP(t, loginOf(srv, cred))
	f, err := c.Create(name)
	if err != nil {
		t.Fatalf("sftp create %s: %v", name, err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatalf("sftp write %s: %v", name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("sftp close %s: %v", name, err)
	}
}

// heldEverywhere checks that no door serves the held files: API download
// (staff and customer, with code), SFTP read, archive.zip and SHA256SUMS.
func heldEverywhere(t *testing.T, srv *testserver.Server, caseID string, staff, customer testserver.Credential, code string, held ...string) {
	t.Helper()
	wantStatus := map[string]int{"file_scanning": http.StatusConflict, "file_quarantined": http.StatusForbidden}[code]
	for _, name := range held {
		for _, token := range []string{srv.AdminToken, staff.Token, customer.Token} {
			status, got, _ := apiGet(t, srv, token, "/api/v1/cases/"+caseID+"/files/"+name)
			if status != wantStatus || got != code {
				t.Errorf("download of %s: %d %q, want %d %s", name, status, got, wantStatus, code)
			}
		}
		for _, cred := range []testserver.Credential{staff, customer} {
			c := goSFTP(t, loginOf(srv, cred))
			f, err := c.Open(name)
			if err == nil {
				_, err = io.ReadAll(f)
				f.Close()
			}
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "permission denied") {
				t.Errorf("SFTP read of %s as %s: %v, want permission denied", name, cred.Username, err)
			}
		}
	}
	_, _, sums := apiGet(t, srv, staff.Token, "/api/v1/cases/"+caseID+"/SHA256SUMS")
	status, _, archive := apiGet(t, srv, staff.Token, "/api/v1/cases/"+caseID+"/archive.zip")
	if status != http.StatusOK {
		t.Fatalf("archive.zip: %d %s", status, archive)
	}
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatalf("archive.zip: %v", err)
	}
	for _, name := range held {
		if bytes.Contains(sums, []byte("  "+name+"\n")) {
			t.Errorf("SHA256SUMS lists %s:\n%s", name, sums)
		}
		for _, zf := range zr.File {
			if zf.Name == name {
				t.Errorf("archive.zip holds %s", name)
			}
		}
	}
}

func TestEICARFromBothDoorsIsQuarantinedAndACleanFileIsServedOnlyAfterItsScan(t *testing.T) {
	clamd := clamdtest.Start(t, clamdtest.Options{StreamMaxLength: "1M"})
	srv, crm := startWithCaseSystem(t, testserver.Options{ScanClamd: clamd.Address})
	srv.OpenCase(t, "scan")
	customer := srv.Credential(t, "scan", "customer")
	staff := srv.Credential(t, "scan", "staff")

	clean := []byte("a clean log line\n")
	uploadBytes(t, srv, customer.Token, "eicar-tus.txt", []byte(clamdtest.EICAR))
	sftpUpload(t, srv, customer, "eicar-sftp.com", []byte(clamdtest.EICAR))
	sftpUpload(t, srv, customer, "pattern.bin", append(bytes.Repeat([]byte{0}, 100_000), clamdtest.Pattern...))
	uploadBytes(t, srv, customer.Token, "big.log", bytes.Repeat([]byte("x"), 2<<20))
	uploadBytes(t, srv, customer.Token, "clean.log", clean)

	for name, sig := range map[string]string{"eicar-tus.txt": clamdtest.EICARSignature, "eicar-sftp.com": clamdtest.EICARSignature, "pattern.bin": clamdtest.PatternSignature} {
		if f := waitState(t, srv, "scan", name, "quarantined"); f.Finding != sig {
			t.Errorf("%s is quarantined with finding %q, want %q", name, f.Finding, sig)
		}
		p := crm.waitFor(t, "file.scanned", name)
		if p.File.Verdict != "infected" || p.File.Signature != sig {
			t.Errorf("file.scanned of %s: %+v, want infected with %s", name, p.File, sig)
		}
	}
	if f := waitState(t, srv, "scan", "big.log", "quarantined"); f.Finding != "" || !strings.Contains(f.Reason, "size limit") {
		t.Errorf("big.log over StreamMaxLength: finding %q, reason %q; want a reason naming the size limit", f.Finding, f.Reason)
	}
	if p := crm.waitFor(t, "file.scanned", "big.log"); p.File.Verdict != "too_large" {
		t.Errorf("file.scanned of big.log: %+v, want too_large", p.File)
	}
	sum := sha256.Sum256(clean)
	checkComplete(t, waitState(t, srv, "scan", "clean.log", "complete"), int64(len(clean)), hex.EncodeToString(sum[:]))
	if p := crm.waitFor(t, "file.scanned", "clean.log"); p.File.Verdict != "clean" {
		t.Errorf("file.scanned of clean.log: %+v, want clean", p.File)
	}
	if got, _ := srv.Download(t, "scan", "clean.log"); !bytes.Equal(got, clean) {
		t.Errorf("clean.log downloads as %q", got)
	}
	heldEverywhere(t, srv, "scan", staff, customer, "file_quarantined", "eicar-tus.txt", "eicar-sftp.com", "pattern.bin", "big.log")
	_, _, sums := apiGet(t, srv, staff.Token, "/api/v1/cases/scan/SHA256SUMS")
	if !bytes.Contains(sums, []byte(hex.EncodeToString(sum[:])+"  clean.log\n")) {
		t.Errorf("SHA256SUMS does not list clean.log once scanned:\n%s", sums)
	}
}

func TestFilesWaitAsScanningWhileClamdIsDownAndAreReleasedWhenItIsBackAcrossARestart(t *testing.T) {
	clamd := clamdtest.Start(t, clamdtest.Options{})
	clamd.Stop()
	srv := testserver.Start(t, testserver.Options{ScanClamd: clamd.Address})
	srv.OpenCase(t, "down")
	customer := srv.Credential(t, "down", "customer")
	staff := srv.Credential(t, "down", "staff")

	clean := []byte("config dump\n")
	uploadBytes(t, srv, customer.Token, "clean.conf", clean)
	sftpUpload(t, srv, customer, "eicar.txt", []byte(clamdtest.EICAR))
	waitState(t, srv, "down", "clean.conf", "scanning")
	waitState(t, srv, "down", "eicar.txt", "scanning")
	// The scanner was asked and failed: the files are still held.
	if err := waitFor(scanWait, func() bool { return metricValue(t, srv, "casedrop_scan_errors_total") >= 2 }); err != nil {
		t.Fatal("no scan was tried while clamd was down")
	}
	heldEverywhere(t, srv, "down", staff, customer, "file_scanning", "clean.conf", "eicar.txt")
	if n := metricValue(t, srv, "casedrop_scans_waiting"); n != 2 {
		t.Errorf("casedrop_scans_waiting is %v, want 2", n)
	}
	status, _, body := apiGet(t, srv, "", "/readyz")
	var ready struct {
		ScansWaiting int `json:"scans_waiting"`
	}
	if err := json.Unmarshal(body, &ready); status != http.StatusOK || err != nil || ready.ScansWaiting != 2 {
		t.Errorf("/readyz with clamd down: %d %s; want 200 saying that 2 scans wait", status, body)
	}

	// The queue is in the store: a restart of casedrop keeps it.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	clamd.Restart(t)
	srv.Restart(t)
	f := waitState(t, srv, "down", "eicar.txt", "quarantined")
	if f.Finding != clamdtest.EICARSignature {
		t.Errorf("eicar.txt is quarantined with finding %q", f.Finding)
	}
	waitState(t, srv, "down", "clean.conf", "complete")
	if got, _ := srv.Download(t, "down", "clean.conf"); !bytes.Equal(got, clean) {
		t.Errorf("clean.conf downloads as %q", got)
	}
	heldEverywhere(t, srv, "down", staff, customer, "file_quarantined", "eicar.txt")
}

func TestEICARThroughICAPIsQuarantinedAndACleanFileCompletes(t *testing.T) {
	clamd := clamdtest.Start(t, clamdtest.Options{StreamMaxLength: "8M"})
	icap := icaptest.Start(t, icaptest.Options{Clamd: clamd, MaxObjectSize: "1M"})
	srv := testserver.Start(t, testserver.Options{ScanICAP: icap.URL + "?mode=simple"})
	srv.OpenCase(t, "icap")
	customer := srv.Credential(t, "icap", "customer")
	staff := srv.Credential(t, "icap", "staff")

	clean := bytes.Repeat([]byte("a clean log line\n"), 10_000) // past the preview
	uploadBytes(t, srv, customer.Token, "eicar.txt", []byte(clamdtest.EICAR))
	uploadBytes(t, srv, customer.Token, "big.log", bytes.Repeat([]byte("x"), 2<<20))
	uploadBytes(t, srv, customer.Token, "clean.log", clean)

	if f := waitState(t, srv, "icap", "eicar.txt", "quarantined"); f.Finding != clamdtest.EICARSignature {
		t.Errorf("eicar.txt is quarantined with finding %q, want %q", f.Finding, clamdtest.EICARSignature)
	}
	// c-icap passes a file over MaxObjectSize unscanned: never clean here.
	if f := waitState(t, srv, "icap", "big.log", "quarantined"); !strings.Contains(f.Reason, "size limit") {
		t.Errorf("big.log over MaxObjectSize: reason %q, want the size limit", f.Reason)
	}
	waitState(t, srv, "icap", "clean.log", "complete")
	if got, _ := srv.Download(t, "icap", "clean.log"); !bytes.Equal(got, clean) {
		t.Errorf("clean.log downloads as %d bytes, want its %d", len(got), len(clean))
	}
	heldEverywhere(t, srv, "icap", staff, customer, "file_quarantined", "eicar.txt", "big.log")
}

func TestOnlyTheAdminReleasesAQuarantinedFileWithAReasonAndItIsAuditedAndServed(t *testing.T) {
	clamd := clamdtest.Start(t, clamdtest.Options{})
	srv, crm := startWithCaseSystem(t, testserver.Options{ScanClamd: clamd.Address})
	srv.OpenCase(t, "rel")
	customer := srv.Credential(t, "rel", "customer")
	staff := srv.Credential(t, "rel", "staff")
	uploadBytes(t, srv, customer.Token, "eicar.txt", []byte(clamdtest.EICAR))
	uploadBytes(t, srv, customer.Token, "clean.txt", []byte("clean\n"))
	waitState(t, srv, "rel", "eicar.txt", "quarantined")
	waitState(t, srv, "rel", "clean.txt", "complete")

	release := "/api/v1/cases/rel/files/eicar.txt/release"
	reason := `{"reason":"the customer's AV test file, ticket 4711"}`
	for who, token := range map[string]string{"staff": staff.Token, "customer": customer.Token} {
		if status, code, _ := apiDo(t, srv, http.MethodPost, token, release, reason); status != http.StatusForbidden || code != "forbidden" {
			t.Errorf("release with a %s credential: %d %q, want 403 forbidden", who, status, code)
		}
	}
	for _, body := range []string{"", `{"reason":"  "}`} {
		if status, code, _ := apiDo(t, srv, http.MethodPost, srv.AdminToken, release, body); status != http.StatusBadRequest || code != "reason_required" {
			t.Errorf("release without a reason (%q): %d %q, want 400 reason_required", body, status, code)
		}
	}
	if status, code, _ := apiDo(t, srv, http.MethodPost, srv.AdminToken, "/api/v1/cases/rel/files/clean.txt/release", reason); status != http.StatusConflict || code != "not_quarantined" {
		t.Errorf("release of a complete file: %d %q, want 409 not_quarantined", status, code)
	}
	heldEverywhere(t, srv, "rel", staff, customer, "file_quarantined", "eicar.txt")

	cmd := srv.CLI(t.Context(), "files", "release", "--server", srv.URL, "--data-dir", srv.DataDir,
		"--case", "rel", "--reason", "the customer's AV test file, ticket 4711", "eicar.txt")
	cmd.Env = append(cmd.Env, "CASEDROP_ADMIN_TOKEN="+srv.AdminToken)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "released eicar.txt") {
		t.Fatalf("casedrop files release: %v\n%s", err, out)
	}
	f := waitState(t, srv, "rel", "eicar.txt", "complete")
	if f.Finding != clamdtest.EICARSignature {
		t.Errorf("the released file's finding is %q: it should still say what was found", f.Finding)
	}
	if got, _ := srv.Download(t, "rel", "eicar.txt"); string(got) != clamdtest.EICAR {
		t.Errorf("eicar.txt downloads as %q after its release", got)
	}
	p := crm.waitFor(t, "file.released", "eicar.txt")
	if p.File.Reason != "the customer's AV test file, ticket 4711" || p.File.Signature != clamdtest.EICARSignature {
		t.Errorf("file.released: %+v, want the reason and the signature", p.File)
	}
	_, _, trail := apiGet(t, srv, srv.AdminToken, "/api/v1/cases/rel/audit?type=file.released")
	var audit struct {
		Events []struct{ Type, File, Detail string }
	}
	if err := json.Unmarshal(trail, &audit); err != nil {
		t.Fatalf("the audit trail: %v\n%s", err, trail)
	}
	if len(audit.Events) != 1 || audit.Events[0].Type != "file.released" || audit.Events[0].File != "eicar.txt" ||
		audit.Events[0].Detail != "the customer's AV test file, ticket 4711" {
		t.Errorf("the audit trail has no file.released with the reason:\n%s", trail)
	}
}

// metricValue is the sum of the samples of a metric on /metrics.
func metricValue(t *testing.T, srv *testserver.Server, name string) float64 {
	t.Helper()
	_, _, body := apiGet(t, srv, srv.AdminToken, "/metrics")
	var total float64
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
			var v float64
			if _, err := fmt.Sscan(rest[strings.LastIndexByte(rest, ' ')+1:], &v); err == nil {
				total += v
			}
		}
	}
	return total
}
