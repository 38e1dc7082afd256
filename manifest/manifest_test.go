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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/manifest"
	"github.com/casedrop/casedrop/storage/diskstore"
)

func digest(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

func complete(name, content string) cases.File {
	return cases.File{Name: name, SHA256: digest(content), State: cases.FileComplete}
}

var opened = time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)

// aCase is an open case with no file yet: its manifests hold as of opened.
var aCase = cases.Case{ID: "CASE-1001", State: cases.StateOpen, OpenedAt: opened}

// header is what the manifest of aCase starts with, when it holds as of at.
func header(at string) string {
	return "# casedrop manifest of case CASE-1001\n# as of " + at + "\n"
}

// body is a manifest without its two header lines.
func body(sums []byte) string {
	_, rest, _ := strings.Cut(string(sums), "\n")
	_, rest, _ = strings.Cut(rest, "\n")
	return rest
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
			got := body(manifest.SHA256SUMS(aCase, []cases.File{complete(tc.file, "x")}))
			if got != tc.line {
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
	if got := body(manifest.SHA256SUMS(aCase, files)); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got, want := string(manifest.SHA256SUMS(aCase, nil)), header("2026-11-30T07:00:00Z"); got != want {
		t.Fatalf("the manifest of an empty case is %q, want %q", got, want)
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
	if err := os.WriteFile(sums, manifest.SHA256SUMS(aCase, files), 0o600); err != nil {
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

func TestTheManifestNamesItsCaseAndTheCasesLastChange(t *testing.T) {
	at := func(min int) *time.Time { u := opened.Add(time.Duration(min) * time.Minute); return &u }
	withTime := func(f cases.File, min int) cases.File { f.UploadedAt = at(min); return f }
	closed := aCase
	closed.State, closed.ClosedAt = cases.StateClosed, at(30)
	purged := closed
	purged.PurgedAt = at(90)
	for _, tc := range []struct {
		name  string
		rec   cases.Case
		files []cases.File
		asOf  string
	}{
		{"an open case without files holds as of its opening", aCase, nil, "2026-11-30T07:00:00Z"},
		{"a case holds as of its newest complete file", aCase,
			[]cases.File{withTime(complete("a", "1"), 5), withTime(complete("b", "2"), 20), withTime(complete("c", "3"), 10)}, "2026-11-30T07:20:00Z"},
		{"a file refused or still uploading does not move the time", aCase,
			[]cases.File{withTime(complete("a", "1"), 5), {Name: "r", State: cases.FileRejected, UploadedAt: at(40)}, {Name: "u", State: cases.FileUploading, StartedAt: *at(41)}}, "2026-11-30T07:05:00Z"},
		{"a closed case holds as of its closing", closed, []cases.File{withTime(complete("a", "1"), 5)}, "2026-11-30T07:30:00Z"},
		{"a purged case holds as of its purge", purged, nil, "2026-11-30T08:30:00Z"},
		{"a time with a fraction of a second is written exactly", aCase,
			[]cases.File{{Name: "a", SHA256: digest("1"), State: cases.FileComplete, UploadedAt: func() *time.Time { u := opened.Add(1500 * time.Millisecond); return &u }()}}, "2026-11-30T07:00:01.5Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := manifest.SHA256SUMS(tc.rec, tc.files)
			if want := header(tc.asOf); !strings.HasPrefix(string(got), want) {
				t.Fatalf("the manifest starts\n%s\nwant\n%s", got, want)
			}
			if again := manifest.SHA256SUMS(tc.rec, tc.files); !bytes.Equal(again, got) {
				t.Fatalf("two manifests of the same case differ:\n%s\n%s", got, again)
			}
		})
	}
}
