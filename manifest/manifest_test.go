package manifest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/manifest"
	"github.com/casedrop/casedrop/storage/diskstore"
)

func digest(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

func complete(name, content string) cases.File {
	return cases.File{Name: name, SHA256: digest(content), State: cases.FileComplete}
}

func TestSHA256SUMSIsWhatSha256sumPrints(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string
		line string
	}{
		{"a plain name is written as it is", "core.bin", digest("x") + "  core.bin\n"},
		{"a name with spaces is written as it is", "my core dump.tgz", digest("x") + "  my core dump.tgz\n"},
		{"a backslash is doubled and the line starts with a backslash", `C:\logs\app.log`, `\` + digest("x") + `  C:\\logs\\app.log` + "\n"},
		{"a newline is written as \\n", "two\nlines", `\` + digest("x") + `  two\nlines` + "\n"},
		{"a carriage return is written as \\r", "cr\rname", `\` + digest("x") + `  cr\rname` + "\n"},
		{"a UTF-8 name is written as it is", "Prüfbericht ✓.pdf", digest("x") + "  Prüfbericht ✓.pdf\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := manifest.SHA256SUMS([]cases.File{complete(tc.file, "x")})
			if string(got) != tc.line {
				t.Fatalf("got %q, want %q", got, tc.line)
			}
		})
	}
}

func TestSHA256SUMSListsOnlyCompleteFilesSortedByName(t *testing.T) {
	files := []cases.File{
		complete("b", "2"),
		{Name: "partial", State: cases.FileUploading},
		{Name: "refused", SHA256: digest("r"), State: cases.FileRejected},
		complete("B", "3"),
		complete("a", "1"),
	}
	want := digest("3") + "  B\n" + digest("1") + "  a\n" + digest("2") + "  b\n"
	if got := manifest.SHA256SUMS(files); string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := manifest.SHA256SUMS(nil); len(got) != 0 {
		t.Fatalf("the manifest of an empty case is %q, want empty", got)
	}
}

// TestSha256sumChecksTheManifestOverFilesWithAwkwardNames runs the real
// coreutils over files whose names need escaping, names that the server
// itself refuses (newline, CR) included, so the escaping is right for any.
func TestSha256sumChecksTheManifestOverFilesWithAwkwardNames(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Fatalf("sha256sum (coreutils) is needed: %v", err)
	}
	dir := t.TempDir()
	var files []cases.File
	for i, name := range []string{"plain", "with space", `back\slash`, "new\nline", "carriage\rreturn", `\leading`, "ünï"} {
		content := string(rune('a'+i)) + " content"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, complete(name, content))
	}
	sums := filepath.Join(t.TempDir(), "SHA256SUMS")
	if err := os.WriteFile(sums, manifest.SHA256SUMS(files), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func() ([]byte, error) {
		cmd := exec.Command("sha256sum", "--strict", "-c", sums)
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	if out, err := check(); err != nil {
		t.Fatalf("sha256sum -c refused the manifest: %v\n%s", err, out)
	}
	t.Run("and fails when a file changes", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, `back\slash`), []byte("changed"), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := check(); err == nil {
			t.Fatalf("sha256sum -c passed over a changed file:\n%s", out)
		}
	})
}

func TestTheSigningKeyIsCreatedOnceAndSharedByInstances(t *testing.T) {
	store, err := diskstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := manifest.PublicKeyPEM(ctx, store); !errors.Is(err, manifest.ErrNoKey) {
		t.Fatalf("the public key of an empty store: %v, want ErrNoKey", err)
	}
	signers := make([]*manifest.Signer, 4)
	var wg sync.WaitGroup
	for i := range signers {
		wg.Go(func() {
			s, err := manifest.LoadSigner(ctx, store)
			if err != nil {
				t.Error(err)
				return
			}
			signers[i] = s
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, s := range signers[1:] {
		if !bytes.Equal(s.PublicKeyPEM(), signers[0].PublicKeyPEM()) {
			t.Fatal("instances starting together ended with different keys")
		}
	}
	pub, err := manifest.PublicKeyPEM(ctx, store)
	if err != nil || !bytes.Equal(pub, signers[0].PublicKeyPEM()) {
		t.Fatalf("the stored public key differs from the signer's (%v)", err)
	}
	again, err := manifest.LoadSigner(ctx, store)
	if err != nil || !bytes.Equal(again.PublicKeyPEM(), pub) {
		t.Fatalf("loading again gave another key (%v)", err)
	}

	t.Run("a signature verifies with the published key and not over other bytes", func(t *testing.T) {
		block, _ := pem.Decode(pub)
		if block == nil || block.Type != "PUBLIC KEY" {
			t.Fatalf("public key PEM %q", pub)
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte(digest("x") + "  core.bin\n")
		sig := again.Sign(msg)
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(key.(ed25519.PublicKey), msg, sig) {
			t.Fatal("the signature does not verify")
		}
		msg[0] ^= 1
		if ed25519.Verify(key.(ed25519.PublicKey), msg, sig) {
			t.Fatal("the signature verifies over changed bytes")
		}
	})
}
