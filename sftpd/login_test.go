package sftpd_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/sftpd"
)

// The short password and the SSH key of a credential, on the SFTP door.

// fullCred is a credential issued as the admin API issues one: with its
// short password, and its SSH key when one was attached.
type fullCred struct {
	cred
	password string
	signer   ssh.Signer // nil when no key was attached
}

// issueFull issues and records a credential of caseID with a short
// password, and an SSH key when withKey.
func (e *env) issueFull(t *testing.T, caseID string, withKey bool) fullCred {
	t.Helper()
	token, claims, err := e.issuer.Issue(auth.NewCredential(caseID, auth.RoleCustomer), 0)
	if err != nil {
		t.Fatal(err)
	}
	password, hash := auth.NewPassword()
	rec := cases.Credential{
		ID: claims.CredentialID, Case: caseID, Username: claims.Username, Role: claims.Role,
		IssuedAt: claims.IssuedAt, ExpiresAt: claims.ExpiresAt,
	}
	var signer ssh.Signer
	if withKey {
		signer = newSigner(t)
		key, err := auth.ParseSSHKey(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
		if err != nil {
			t.Fatal(err)
		}
		rec.SSHPublicKey, rec.SSHKeyFingerprint = key.AuthorizedKey, key.Fingerprint
	}
	if err := e.catalog.AddCredential(context.Background(), rec, hash); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.tokens = append(e.tokens, token, password) // neither may reach the log
	e.mu.Unlock()
	return fullCred{cred: cred{id: claims.CredentialID, user: claims.Username, token: token}, password: password, signer: signer}
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func answering(secret string) ssh.AuthMethod {
	return ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
		return []string{secret}, nil
	})
}

// failedLogins is what the server-wide trail holds of refused logins.
func (e *env) failedLogins(t *testing.T) []cases.Event {
	t.Helper()
	events, err := e.catalog.AuditTrail(context.Background(), "", cases.AuditFilter{Types: []string{cases.EventLoginFailed}})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func TestTheShortPasswordAndTheTokenBothLogInByPasswordAndKeyboardInteractive(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issueFull(t, "case-1", false)
	for i, tc := range []struct {
		name    string
		methods []ssh.AuthMethod
	}{
		{"the short password as password", []ssh.AuthMethod{passwordAuth(cr.password)}},
		{"the short password as keyboard-interactive", []ssh.AuthMethod{answering(cr.password)}},
		{"the token as password", []ssh.AuthMethod{passwordAuth(cr.token)}},
		{"the token as keyboard-interactive", []ssh.AuthMethod{answering(cr.token)}},
		{"the short password after an unknown key", []ssh.AuthMethod{ssh.PublicKeys(newSigner(t)), passwordAuth(cr.password)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := e.dial(t, clientConfig(cr.user, tc.methods...))
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("f%d.txt", i)
			put(t, c, name, []byte(tc.name))
			if got := string(get(t, c, name)); got != tc.name {
				t.Fatalf("read back %q", got)
			}
		})
	}
	other := e.issueFull(t, "case-1", false)
	for _, tc := range []struct{ name, user, secret string }{
		{"the first 100 characters of the token (WinSCP's login box)", cr.user, cr.token[:100]},
		{"another credential's password", cr.user, other.password},
		{"the password under another credential's user name", other.user, cr.password},
		{"the password in capitals", cr.user, strings.ToUpper(cr.password)},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			before := len(e.failedLogins(t))
			if _, err := e.dial(t, clientConfig(tc.user, passwordAuth(tc.secret))); err == nil {
				t.Fatal("logged in")
			}
			if after := len(e.failedLogins(t)); after != before+1 {
				t.Fatalf("%d refused logins recorded, want %d", after, before+1)
			}
		})
	}
	if !strings.Contains(e.logs.String(), `reason="invalid credential"`) {
		t.Error("no refusal logged")
	}
}

func TestAnSSHKeyLogsInOnlyAsItsCredentialAndEndsWithIt(t *testing.T) {
	const recheck = 20 * time.Millisecond
	e := newEnv(t, diskStore(t), func(c *sftpd.Config) { c.RecheckInterval = recheck })
	cr := e.issueFull(t, "case-1", true)
	other := e.issueFull(t, "case-1", true)
	plain := e.issueFull(t, "case-1", false)

	c, err := e.dial(t, clientConfig(cr.user, ssh.PublicKeys(cr.signer)))
	if err != nil {
		t.Fatal(err)
	}
	put(t, c, "by-key.txt", []byte("signed in with a key"))
	if f := e.catalogFile(t, "by-key.txt"); f.UploadedBy != cr.user {
		t.Errorf("uploaded by %q, want %q", f.UploadedBy, cr.user)
	}
	if !strings.Contains(e.logs.String(), `method=publickey key=`+ssh.FingerprintSHA256(cr.signer.PublicKey())) {
		t.Error("the key login was not logged with the key's fingerprint")
	}
	for _, tc := range []struct {
		name string
		user string
		key  ssh.Signer
	}{
		{"its key as another credential", other.user, cr.signer},
		{"its key as a credential without a key", plain.user, cr.signer},
		{"another credential's key", cr.user, other.signer},
		{"its key as root", "root", cr.signer},
	} {
		if _, err := e.dial(t, clientConfig(tc.user, ssh.PublicKeys(tc.key))); err == nil {
			t.Errorf("%s: logged in", tc.name)
		}
	}

	if _, err := e.catalog.Revoke(context.Background(), cr.id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the server ends the key's session", c.closed)
	if _, err := e.dial(t, clientConfig(cr.user, ssh.PublicKeys(cr.signer))); err == nil {
		t.Fatal("the key of a revoked credential logged in")
	}
	e.clock.Advance(auth.MaxTTL)
	if _, err := e.dial(t, clientConfig(other.user, ssh.PublicKeys(other.signer))); err == nil {
		t.Fatal("the key of an expired credential logged in")
	}
}

func TestKeysThatDoNotMatchAreNeitherCountedAgainstTheSourceNorAudited(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issueFull(t, "case-1", false)
	// OpenSSH offers every key of its agent before the password: twelve
	// of them, three times over, and the password each time.
	for i := range 3 {
		var keys []ssh.Signer
		for range 12 {
			keys = append(keys, newSigner(t))
		}
		if _, err := e.dial(t, clientConfig(cr.user, ssh.PublicKeys(keys...), passwordAuth(cr.password))); err != nil {
			t.Fatalf("connection %d: twelve keys, then the password: %v", i+1, err)
		}
		if _, err := e.dial(t, clientConfig(cr.user, ssh.PublicKeys(keys...))); err == nil {
			t.Fatalf("connection %d: logged in with keys that are not the credential's", i+1)
		}
	}
	if failed := e.failedLogins(t); len(failed) != 0 {
		t.Fatalf("key offers reached the audit trail: %+v", failed)
	}
	// The source's budget of ten failures is untouched: the first bad
	// password is an ordinary refusal, not "too many".
	var banner string
	cfg := clientConfig(cr.user, passwordAuth("wrong"))
	cfg.BannerCallback = func(message string) error { banner = message; return nil }
	if _, err := e.dial(t, cfg); err == nil || banner != "" || strings.Contains(e.logs.String(), "limited=true") {
		t.Fatalf("a bad password after the key offers: %v, banner %q; want an ordinary refusal", err, banner)
	}
	if failed := e.failedLogins(t); len(failed) != 1 {
		t.Fatalf("%d refused logins recorded, want the one bad password", len(failed))
	}
}
