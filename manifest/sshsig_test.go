package manifest_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/manifest"
	"github.com/casedrop/casedrop/storage/diskstore"
	"golang.org/x/crypto/ssh"
)

func newSigner(t *testing.T) *manifest.Signer {
	t.Helper()
	store, err := diskstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := manifest.LoadSigner(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sshsig is a parsed SSHSIG signature.
type sshsig struct {
	key       ssh.PublicKey
	namespace string
	hashAlg   string
	sig       ssh.Signature
}

// wire reads the SSH wire format: a uint32 or a length-prefixed string.
type wire struct{ b []byte }

func (w *wire) uint32() (uint32, error) {
	if len(w.b) < 4 {
		return 0, errors.New("short")
	}
	v := binary.BigEndian.Uint32(w.b)
	w.b = w.b[4:]
	return v, nil
}

func (w *wire) string() ([]byte, error) {
	n, err := w.uint32()
	if err != nil || uint32(len(w.b)) < n {
		return nil, errors.New("short string")
	}
	s := w.b[:n]
	w.b = w.b[n:]
	return s, nil
}

// parseSSHSIG reads an armored signature by PROTOCOL.sshsig, written here
// again rather than shared with the code under test.
func parseSSHSIG(armored []byte) (sshsig, error) {
	block, rest := pem.Decode(armored)
	if block == nil || block.Type != "SSH SIGNATURE" || len(bytes.TrimSpace(rest)) > 0 {
		return sshsig{}, errors.New("not one SSH SIGNATURE block")
	}
	if !bytes.HasPrefix(block.Bytes, []byte("SSHSIG")) {
		return sshsig{}, errors.New("no SSHSIG magic")
	}
	w := &wire{block.Bytes[6:]}
	if v, err := w.uint32(); err != nil || v != 1 {
		return sshsig{}, errors.New("not version 1")
	}
	var fields [5][]byte
	for i := range fields {
		f, err := w.string()
		if err != nil {
			return sshsig{}, err
		}
		fields[i] = f
	}
	if len(w.b) != 0 {
		return sshsig{}, errors.New("trailing bytes")
	}
	key, err := ssh.ParsePublicKey(fields[0])
	if err != nil {
		return sshsig{}, err
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(fields[4], &sig); err != nil {
		return sshsig{}, err
	}
	if len(fields[2]) != 0 {
		return sshsig{}, errors.New("reserved is not empty")
	}
	return sshsig{key: key, namespace: string(fields[1]), hashAlg: string(fields[3]), sig: sig}, nil
}

func sshString(b *bytes.Buffer, s []byte) {
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
	b.Write(s)
}

// verifySSHSIG checks s over message as ssh-keygen -Y verify -n namespace
// does: the signed data is rebuilt with the namespace the verifier expects.
func verifySSHSIG(s sshsig, namespace string, message []byte) error {
	if s.namespace != namespace {
		return errors.New("namespace does not match")
	}
	if s.hashAlg != "sha512" {
		return errors.New("hash algorithm is not sha512")
	}
	h := sha512.Sum512(message)
	var signed bytes.Buffer
	signed.WriteString("SSHSIG")
	sshString(&signed, []byte(namespace))
	sshString(&signed, nil)
	sshString(&signed, []byte("sha512"))
	sshString(&signed, h[:])
	return s.key.Verify(signed.Bytes(), &s.sig)
}

func TestAnSSHSignatureVerifiesInItsCasesNamespaceOnly(t *testing.T) {
	signer := newSigner(t)
	msg := manifest.SHA256SUMS(aCase, nil)
	ns := manifest.Namespace("CASE-1001")
	armored, err := signer.SSHSignature(ns, msg)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := parseSSHSIG(armored)
	if err != nil {
		t.Fatalf("the signature does not parse: %v\n%s", err, armored)
	}
	if err := verifySSHSIG(parsed, ns, msg); err != nil {
		t.Fatalf("the signature does not verify: %v", err)
	}
	t.Run("its key is the allowed_signers line's key", func(t *testing.T) {
		line := string(signer.AllowedSigners())
		want := `casedrop namespaces="casedrop-case:*" ` + string(ssh.MarshalAuthorizedKey(parsed.key))
		if line != want {
			t.Fatalf("allowed_signers line %q, want %q", line, want)
		}
	})
	t.Run("it does not verify as another case's", func(t *testing.T) {
		parsed := parsed
		parsed.namespace = manifest.Namespace("CASE-1002") // as an attacker would edit it
		if err := verifySSHSIG(parsed, manifest.Namespace("CASE-1002"), msg); err == nil {
			t.Fatal("a signature for CASE-1001 verified in CASE-1002's namespace")
		}
	})
	t.Run("it does not verify over changed bytes", func(t *testing.T) {
		changed := bytes.Replace(msg, []byte("CASE-1001"), []byte("CASE-1002"), 1)
		if err := verifySSHSIG(parsed, ns, changed); err == nil {
			t.Fatal("the signature verified over a changed manifest")
		}
	})
}

// TestSshKeygenVerifiesTheSSHSignature runs OpenSSH's own verifier, the
// one customers have.
func TestSshKeygenVerifiesTheSSHSignature(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatalf("ssh-keygen (openssh-client) is needed: %v", err)
	}
	signer := newSigner(t)
	dir := t.TempDir()
	msg := manifest.SHA256SUMS(aCase, []cases.File{complete("vendor-hotfix.exe", "x")})
	sig, err := signer.SSHSignature(manifest.Namespace("CASE-1001"), msg)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"SHA256SUMS": msg, "SHA256SUMS.sshsig": sig, "allowed_signers": signer.AllowedSigners()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(namespace string) ([]byte, error) {
		cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", "allowed_signers", "-I", "casedrop", "-n", namespace, "-s", "SHA256SUMS.sshsig")
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(msg)
		return cmd.CombinedOutput()
	}
	if out, err := verify("casedrop-case:CASE-1001"); err != nil || !strings.Contains(string(out), "Good") {
		t.Fatalf("ssh-keygen -Y verify: %v\n%s", err, out)
	}
	for _, ns := range []string{"casedrop-case:CASE-1002", "file"} {
		if out, err := verify(ns); err == nil {
			t.Fatalf("ssh-keygen verified the signature in namespace %q:\n%s", ns, out)
		}
	}
}
