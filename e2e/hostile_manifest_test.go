package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/internal/testserver"
)

// TestACustomersSignedManifestVerifiesWithSshKeygenOnlyAsItsOwnCase is the
// attack the case namespace stops: a customer uploads vendor-hotfix.exe,
// takes the server's signature over a manifest naming it, and presents it
// as anything but "this file was in case hotfix-1, at that time".
func TestACustomersSignedManifestVerifiesWithSshKeygenOnlyAsItsOwnCase(t *testing.T) {
	needTools(t, "curl", "sha256sum", "ssh-keygen", "unzip")
	srv := testserver.Start(t, testserver.Options{})
	requireManifestKey(t, srv)
	srv.OpenCase(t, "hotfix-1")
	srv.OpenCase(t, "other-2")
	customer := srv.Credential(t, "hotfix-1", "customer").Token
	files := map[string][]byte{
		"vendor-hotfix.exe": []byte("MZ not really the vendor's"),
		"notes.txt":         []byte("run it as admin\n"),
	}
	for name, data := range files {
		uploadBytes(t, srv, customer, name, data)
	}

	dir := t.TempDir()
	get := func(url, file, token string) {
		t.Helper()
		if out, err := curl(t, srv, token, "-o", filepath.Join(dir, file), url); err != nil {
			t.Fatalf("curl %s: %v\n%s", url, err, out)
		}
	}
	for name := range files {
		get(apiURL(srv, "hotfix-1", "files", name), name, customer)
	}
	get(apiURL(srv, "hotfix-1", "SHA256SUMS"), "SHA256SUMS", customer)
	get(apiURL(srv, "hotfix-1", "SHA256SUMS.sshsig"), "SHA256SUMS.sshsig", customer)
	get(srv.URL+"/api/v1/manifest-allowed-signers", "allowed_signers", "") // public

	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(sums), "# casedrop manifest of case hotfix-1\n# as of ") {
		t.Fatalf("the manifest does not name its case and time:\n%s", sums)
	}
	sshVerify := func(namespace, manifest string) ([]byte, error) {
		cmd := exec.CommandContext(t.Context(), "ssh-keygen", "-Y", "verify", "-f", "allowed_signers",
			"-I", "casedrop", "-n", namespace, "-s", "SHA256SUMS.sshsig")
		cmd.Dir = dir
		f, err := os.Open(filepath.Join(dir, manifest))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
		return cmd.CombinedOutput()
	}
	sha256sumCheck := func(in string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "sha256sum", "--strict", "-c", "SHA256SUMS")
		cmd.Dir = in
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Count(string(out), ": OK") != len(files) {
			t.Fatalf("sha256sum --strict -c SHA256SUMS in %s: %v\n%s", in, err, out)
		}
	}

	if out, err := sshVerify("casedrop-case:hotfix-1", "SHA256SUMS"); err != nil || !strings.Contains(string(out), `Good "casedrop-case:hotfix-1" signature for casedrop`) {
		t.Fatalf("ssh-keygen -Y verify in the case's namespace: %v\n%s", err, out)
	}
	sha256sumCheck(dir)

	t.Run("ssh-keygen refuses the signature as another case's", func(t *testing.T) {
		if out, err := sshVerify("casedrop-case:other-2", "SHA256SUMS"); err == nil {
			t.Fatalf("ssh-keygen verified case hotfix-1's signature as case other-2's:\n%s", out)
		}
	})
	t.Run("ssh-keygen refuses the key outside the cases' namespaces", func(t *testing.T) {
		if out, err := sshVerify("file", "SHA256SUMS"); err == nil {
			t.Fatalf("ssh-keygen verified the signature in namespace file:\n%s", out)
		}
	})
	t.Run("ssh-keygen refuses the manifest without its header", func(t *testing.T) {
		_, rest, _ := bytes.Cut(sums, []byte("\n"))
		_, rest, _ = bytes.Cut(rest, []byte("\n"))
		if err := os.WriteFile(filepath.Join(dir, "stripped"), rest, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := sshVerify("casedrop-case:hotfix-1", "stripped"); err == nil {
			t.Fatalf("ssh-keygen verified the manifest with its case and time cut off:\n%s", out)
		}
	})
	t.Run("the manifest inside archive.zip is the signed one and checks after unzip", func(t *testing.T) {
		get(apiURL(srv, "hotfix-1", "archive.zip"), "case.zip", customer)
		unzipped := filepath.Join(dir, "unzipped")
		if out, err := exec.CommandContext(t.Context(), "unzip", "-q", filepath.Join(dir, "case.zip"), "-d", unzipped).CombinedOutput(); err != nil {
			t.Fatalf("unzip: %v\n%s", err, out)
		}
		sha256sumCheck(unzipped)
		if inZip, err := os.ReadFile(filepath.Join(unzipped, "SHA256SUMS")); err != nil || !bytes.Equal(inZip, sums) {
			t.Fatalf("the zip's SHA256SUMS differs from the signed one (%v):\n%s", err, inZip)
		}
	})
}
