package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/testserver"
)

// badNames are names an attacker holding a customer credential tried: each
// climbs out of a folder on some system, or passes for another name.
var badNames = []string{
	`..\..\x.bat`, `a\b`, "CON", "con.txt", "LPT¹.log", "x.txt. ", "x.txt.", " x.txt", "file.txt:stream",
	"zero\u200bwidth.txt", "bom\ufeff.txt", "soft\u00adhyphen.txt", "right-to-left\u202etxt.exe",
	"SHA256SUMS", "sha256sums", "SHA256SUMS.sig", "a*b", "a?b", `a"b`, "a<b>", "a|b",
}

// tusCreate asks for a tus upload of name and returns the status and JSON error.
func tusCreate(t *testing.T, srv *testserver.Server, token, name string) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/files/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", "1")
	req.Header.Set("Upload-Metadata", "filename "+base64.StdEncoding.EncodeToString([]byte(name)))
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func tusUpload(t *testing.T, srv *testserver.Server, token, name string, data []byte) {
	t.Helper()
	loc := srv.Create(t, token, name, int64(len(data)), "")
	if _, status, err := srv.Patch(t.Context(), token, loc, 0, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("tus: upload %s: %d %v", name, status, err)
	}
}

func TestHostileFileNamesAreRefusedAtBothDoorsAndDownloadsUnpackSafely(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "names")
	cred := srv.Credential(t, "names", "customer")

	t.Run("tus creation with a bad name gets 400 and says which rule", func(t *testing.T) {
		for _, name := range badNames {
			status, body := tusCreate(t, srv, cred.Token, name)
			if status != http.StatusBadRequest || body["code"] != "invalid_name" || !strings.HasPrefix(body["error"], "invalid file name: ") || len(body["error"]) < len("invalid file name: ")+5 {
				t.Errorf("create %q: %d %v, want 400 invalid_name with the rule", name, status, body)
			}
		}
	})

	// SFTP in a case of its own, so that no tus upload holds the names.
	srv.OpenCase(t, "names-sftp")
	c := goSFTP(t, loginOf(srv, srv.Credential(t, "names-sftp", "customer")))
	f, err := c.Create("good.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("good")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("SFTP put and rename to a bad name fail", func(t *testing.T) {
		for _, name := range badNames {
			if _, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC); err == nil || err.Error() == "" {
				t.Errorf("put %q: %v, want an error", name, err)
			}
			if err := c.Rename("good.txt", name); err == nil || err.Error() == "" {
				t.Errorf("rename to %q: %v, want an error", name, err)
			}
		}
	})

	tusUpload(t, srv, cred.Token, "core.bin", []byte("the first core"))
	tusUpload(t, srv, cred.Token, "Core.BIN", []byte("the second core"))
	tusUpload(t, srv, cred.Token, "Prüfbericht ✓.pdf", []byte("%PDF-1.7"))
	t.Run("a name differing only by case is numbered and any spelling finds the first", func(t *testing.T) {
		var got []string
		for _, f := range srv.Files(t, "names") {
			got = append(got, f.Name)
		}
		if strings.Join(got, "|") != "Core (2).BIN|Prüfbericht ✓.pdf|core.bin" {
			t.Fatalf("the case lists %q, want Core (2).BIN, Prüfbericht ✓.pdf, core.bin", got)
		}
		if body, _ := srv.Download(t, "names", "CORE.bin"); string(body) != "the first core" {
			t.Fatalf("CORE.bin downloads %q", body)
		}
	})

	t.Run("archive.zip entries are safe and its SHA256SUMS checks after unzip", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/api/v1/cases/names/archive.zip", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
		resp, err := srv.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		zipData, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("archive.zip: %d %v", resp.StatusCode, err)
		}
		zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		manifests := 0
		for _, f := range zr.File {
			if f.Name == "SHA256SUMS" {
				manifests++
				continue
			}
			if err := cases.ValidName(f.Name); err != nil || seen[cases.NameKey(f.Name)] {
				t.Errorf("entry %q: %v (or a second entry of that name)", f.Name, err)
			}
			seen[cases.NameKey(f.Name)] = true
		}
		if manifests != 1 || len(seen) != 3 {
			t.Fatalf("%d SHA256SUMS entries and %d files, want 1 and 3", manifests, len(seen))
		}
		dir := t.TempDir()
		zipPath := filepath.Join(dir, "names.zip")
		if err := os.WriteFile(zipPath, zipData, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := exec.LookPath("unzip"); err != nil {
			t.Skip("no unzip on PATH")
		}
		if out, err := exec.Command("unzip", "-l", zipPath).CombinedOutput(); err != nil || !strings.Contains(string(out), "Core (2).BIN") {
			t.Fatalf("unzip -l: %v\n%s", err, out)
		}
		out := filepath.Join(dir, "out")
		if b, err := exec.Command("unzip", "-q", zipPath, "-d", out).CombinedOutput(); err != nil {
			t.Fatalf("unzip: %v\n%s", err, b)
		}
		check := exec.Command("sha256sum", "-c", "SHA256SUMS")
		check.Dir = out
		if b, err := check.CombinedOutput(); err != nil || strings.Count(string(b), ": OK") != 3 {
			t.Fatalf("sha256sum -c SHA256SUMS: %v\n%s", err, b)
		}
		entries, err := os.ReadDir(out)
		if err != nil || len(entries) != 4 {
			t.Fatalf("unzip wrote %d entries (%v), want the 3 files and SHA256SUMS", len(entries), err)
		}
	})
}
