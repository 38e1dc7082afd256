package auth

import (
	//lint:ignore SA1019 a DSA key is made here only to be refused
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func authorizedKey(t *testing.T, pub any) string {
	t.Helper()
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

func TestParseSSHKeyTakesOneKeyLineAndGivesItsFingerprint(t *testing.T) {
	ed := newSSHKey(t)
	edLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ed)))
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, line := range map[string]string{
		"ed25519 with a comment":        edLine + " jane@example.com",
		"ed25519 with a trailing break": edLine + "\n",
		"ECDSA P-256":                   authorizedKey(t, &ec.PublicKey),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseSSHKey(line)
			if err != nil {
				t.Fatal(err)
			}
			want, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(line))
			if got.Fingerprint != ssh.FingerprintSHA256(want) || !strings.HasPrefix(got.Fingerprint, "SHA256:") {
				t.Errorf("fingerprint %q, want %q", got.Fingerprint, ssh.FingerprintSHA256(want))
			}
			if strings.Contains(got.AuthorizedKey, "jane") || !sameKey(got.AuthorizedKey, want) {
				t.Errorf("stored as %q", got.AuthorizedKey)
			}
		})
	}
}

func TestParseSSHKeyRefusesWhatIsNotOnePlainPublicKey(t *testing.T) {
	edLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(newSSHKey(t))))
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	var dsaKey dsa.PrivateKey
	if err := dsa.GenerateParameters(&dsaKey.Parameters, rand.Reader, dsa.L1024N160); err != nil {
		t.Fatal(err)
	}
	if err := dsa.GenerateKey(&dsaKey, rand.Reader); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, line, says string }{
		{"nothing", "  ", "empty"},
		{"garbage", "hello world", "not an OpenSSH public key"},
		{"a broken key", edLine[:40], "not an OpenSSH public key"},
		{"two keys", edLine + "\n" + edLine, "one key"},
		{"options", `from="10.0.0.1" ` + edLine, "options"},
		{"a private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----", "private key"},
		{"a 1024-bit RSA key", authorizedKey(t, &small.PublicKey), "2048"},
		{"a DSA key", authorizedKey(t, &dsaKey.PublicKey), "not accepted"},
		{"a huge line", "ssh-ed25519 " + strings.Repeat("A", 9000), "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSSHKey(tc.line)
			if !errors.Is(err, ErrSSHKey) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("ParseSSHKey: %v, want ErrSSHKey saying %q", err, tc.says)
			}
		})
	}
}
