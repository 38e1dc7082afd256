package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/internal/clamdtest"
	"github.com/casedrop/casedrop/internal/testserver"
)

// scanPageRow is an upload row, an entry of "Files in this case" or a row
// of the staff page, as e2e/js/page_scan.mjs reads them.
type scanPageRow struct {
	Name, State, Scan, Text string
	Download, Selectable    bool
}

type scanPageView struct {
	Uploads, CaseFiles []scanPageRow
}

func TestThePagesShowCheckingThenTheCleanFileCompleteAndTheEICARFileBlockedWithItsFinding(t *testing.T) {
	root := requirePages(t)
	clamd := clamdtest.Start(t, clamdtest.Options{})
	// Down until the page shows every file as being checked.
	clamd.Stop()
	srv := testserver.Start(t, testserver.Options{ScanClamd: clamd.Address})
	const caseID = "CASE-EICAR"
	srv.OpenCase(t, caseID)
	customer := srv.Credential(t, caseID, "customer")
	staff := srv.Credential(t, caseID, "staff")

	dir := t.TempDir()
	files := map[string]string{"eicar.com": clamdtest.EICAR, "clean.log": "a clean log line\n"}
	var paths []string
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	checked := filepath.Join(dir, "checked")
	wait := startPageScript(t, root, "page_scan.mjs", map[string]any{
		"url":         linkOf(srv.URL, "/cases/", caseID, customer),
		"staffUrl":    linkOf(srv.URL, "/staff/cases/", caseID, staff),
		"files":       paths,
		"verdicts":    map[string]string{"eicar.com": "quarantined", "clean.log": "complete"},
		"checked":     checked,
		"screenshots": screenshotDir(t, root),
	})
	var out struct {
		Checking, Done scanPageView
		Staff          []scanPageRow
	}
	if err := waitFor(scanWait, func() bool { _, err := os.Stat(checked); return err == nil }); err != nil {
		wait(&out)
		t.Fatal("the page never showed both files as being checked")
	}
	clamd.Restart(t)
	wait(&out)

	for _, row := range out.Checking.Uploads {
		if !strings.Contains(row.Text, "checking for malware…") {
			t.Errorf("while clamd is down the upload of %s says:\n%s", row.Name, row.Text)
		}
	}
	checkCaseFiles(t, "while clamd is down", out.Checking.CaseFiles, map[string]string{"eicar.com": "scanning", "clean.log": "scanning"})
	for _, row := range out.Done.Uploads {
		blocked := strings.Contains(row.Text, "blocked by the malware check") && strings.Contains(row.Text, "support has been told")
		if blocked != (row.Name == "eicar.com") || strings.Contains(row.Text, "checking") {
			t.Errorf("after the scan the upload of %s says:\n%s", row.Name, row.Text)
		}
	}
	checkCaseFiles(t, "after the scan", out.Done.CaseFiles, map[string]string{"eicar.com": "quarantined", "clean.log": "complete"})

	if len(out.Staff) != 2 {
		t.Fatalf("the staff page lists %+v", out.Staff)
	}
	for _, row := range out.Staff {
		switch row.Name {
		case "eicar.com":
			if row.State != "quarantined" || row.Download || row.Selectable || !strings.Contains(row.Text, "found "+clamdtest.EICARSignature) {
				t.Errorf("the staff page shows eicar.com as %+v; want quarantined with its finding and no download", row)
			}
		case "clean.log":
			if row.State != "complete" || !row.Download {
				t.Errorf("the staff page shows clean.log as %+v; want complete with a download", row)
			}
		}
	}
}

// checkCaseFiles checks the entries of "Files in this case": each in its
// state, and only complete ones with a download button.
func checkCaseFiles(t *testing.T, when string, rows []scanPageRow, want map[string]string) {
	t.Helper()
	if len(rows) != len(want) {
		t.Errorf("%s \"Files in this case\" lists %+v, want %v", when, rows, want)
	}
	for _, row := range rows {
		if row.State != want[row.Name] || row.Download != (row.State == "complete") {
			t.Errorf("%s \"Files in this case\" shows %+v, want %s with a download only if complete", when, row, want[row.Name])
		}
	}
}
