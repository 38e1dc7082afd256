package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// fakeAccounts is an AccountLookup over a list, counting its lookups.
type fakeAccounts struct {
	mu       sync.Mutex
	accounts []Account
	lookups  []string // caseID + "/" + idPrefix
	err      error
}

func (f *fakeAccounts) Accounts(_ context.Context, caseID, idPrefix string) ([]Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups = append(f.lookups, caseID+"/"+idPrefix)
	var out []Account
	for _, a := range f.accounts {
		if a.Case == caseID && strings.HasPrefix(a.CredentialID, idPrefix) {
			out = append(out, a)
		}
	}
	return out, f.err
}

func (f *fakeAccounts) add(a Account) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts = append(f.accounts, a)
}

// issued is a credential issued as the API issues one: token, password,
// and its record in the lookup.
type issued struct {
	Claims
	token, password string
	key             ssh.PublicKey
}

func newLoginEnv(t *testing.T) (*testEnv, *fakeAccounts) {
	t.Helper()
	e := newTestEnv(t)
	accounts := &fakeAccounts{}
	e.verifier.Accounts = accounts
	return e, accounts
}

// issueAccount issues a credential of caseID, living ttl, with a new SSH
// key when withKey, and records it in accounts (with its password hash
// unless legacy: a credential of the release before short passwords).
func issueAccount(t *testing.T, e *testEnv, accounts *fakeAccounts, caseID string, ttl time.Duration, withKey, legacy bool) issued {
	t.Helper()
	token, claims, err := e.issuer.Issue(NewCredential(caseID, RoleCustomer), ttl)
	if err != nil {
		t.Fatal(err)
	}
	password, hash := NewPassword()
	a := Account{Claims: claims, PasswordHash: hash}
	if legacy {
		a.PasswordHash = ""
	}
	var key ssh.PublicKey
	if withKey {
		key = newSSHKey(t)
		a.SSHKey = string(ssh.MarshalAuthorizedKey(key))
	}
	accounts.add(a)
	return issued{Claims: claims, token: token, password: password, key: key}
}

func newSSHKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestLoginTakesTheShortPasswordOrTheTokenUnderTheCredentialsUserName(t *testing.T) {
	e, accounts := newLoginEnv(t)
	c := issueAccount(t, e, accounts, "CASE-1", 0, false, false)
	other := issueAccount(t, e, accounts, "CASE-1", 0, false, false)
	ctx := context.Background()

	for name, secret := range map[string]string{"the short password": c.password, "the token": c.token} {
		t.Run(name+" logs in", func(t *testing.T) {
			got, err := e.verifier.Login(ctx, c.Username, secret)
			if err != nil {
				t.Fatal(err)
			}
			if got.CredentialID != c.CredentialID || got.Case != "CASE-1" || got.Role != RoleCustomer || !got.ExpiresAt.Equal(c.ExpiresAt) {
				t.Fatalf("claims %+v, want those of %+v", got, c.Claims)
			}
		})
	}
	for _, tc := range []struct {
		name, user, secret string
		want               error
	}{
		{"another credential's password", c.Username, other.password, ErrInvalid},
		{"a password under another credential's user name", other.Username, c.password, ErrInvalid},
		{"the token under another credential's user name", other.Username, c.token, ErrWrongUser},
		{"a wrong password of the right shape", c.Username, strings.Repeat("a", PasswordLength), ErrInvalid},
		{"the password with a trailing newline", c.Username, c.password + "\n", ErrInvalid},
		{"the password in capitals", c.Username, strings.ToUpper(c.password), ErrInvalid},
		{"the first 100 characters of the token", c.Username, c.token[:100], ErrInvalid},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			if _, err := e.verifier.Login(ctx, tc.user, tc.secret); !errors.Is(err, tc.want) {
				t.Fatalf("Login: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAShortPasswordCarriesItsCredentialsExpiryAndRevocation(t *testing.T) {
	e, accounts := newLoginEnv(t)
	short := issueAccount(t, e, accounts, "CASE-1", time.Hour, false, false)
	revoked := issueAccount(t, e, accounts, "CASE-1", 0, false, false)
	e.revocations.revoked["CASE-1/"+revoked.CredentialID] = true
	ctx := context.Background()

	if _, err := e.verifier.Login(ctx, short.Username, short.password); err != nil {
		t.Fatalf("within its hour: %v", err)
	}
	if _, err := e.verifier.Login(ctx, revoked.Username, revoked.password); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked: %v, want ErrRevoked", err)
	}
	e.clock.Advance(time.Hour)
	if _, err := e.verifier.Login(ctx, short.Username, short.password); !errors.Is(err, ErrExpired) {
		t.Fatalf("an hour later: %v, want ErrExpired", err)
	}
	e.revocations.err = errors.New("store down")
	fresh := issueAccount(t, e, accounts, "CASE-1", 0, false, false)
	if _, err := e.verifier.Login(ctx, fresh.Username, fresh.password); err == nil || Reason(err) != "" {
		t.Fatalf("with the revocation check failing: %v, want an error that is no refusal", err)
	}
}

func TestACredentialOfTheOldReleaseLogsInWithItsTokenOnly(t *testing.T) {
	e, accounts := newLoginEnv(t)
	old := issueAccount(t, e, accounts, "CASE-1", 0, false, true)
	ctx := context.Background()
	if _, err := e.verifier.Login(ctx, old.Username, old.token); err != nil {
		t.Fatalf("its token: %v", err)
	}
	if _, err := e.verifier.Login(ctx, old.Username, old.password); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a password it never had: %v, want ErrInvalid", err)
	}
}

func TestUserNamesAreSplitAtTheirLastDashAndCheckedBeforeAnyLookup(t *testing.T) {
	e, accounts := newLoginEnv(t)
	c := issueAccount(t, e, accounts, "ACME-2026-0042", 0, false, false)
	ctx := context.Background()
	if _, err := e.verifier.Login(ctx, c.Username, c.password); err != nil {
		t.Fatalf("a case id with dashes: %v", err)
	}
	if want := "ACME-2026-0042/" + c.CredentialID[:6]; len(accounts.lookups) != 1 || accounts.lookups[0] != want {
		t.Fatalf("lookups %q, want [%s]", accounts.lookups, want)
	}
	accounts.lookups = nil
	for _, user := range []string{
		"", "root", "-" + c.CredentialID[:6], "ACME-2026-0042-", "ACME-2026-0042-ABCDEF", "ACME-2026-0042-abcde",
		"ACME-2026-0042-abcdefg", "ACME-2026-0042-abcd01", "ACME-2026-0042-abc/ef", "ACME-2026-0042-abc.ef",
	} {
		if _, err := e.verifier.Login(ctx, user, c.password); !errors.Is(err, ErrInvalid) {
			t.Errorf("user %q: %v, want ErrInvalid", user, err)
		}
		if _, err := e.verifier.LoginWithKey(ctx, user, newSSHKey(t)); !errors.Is(err, ErrInvalid) {
			t.Errorf("user %q with a key: %v, want ErrInvalid", user, err)
		}
	}
	for _, secret := range []string{"guess", "", c.password + c.password, strings.Repeat("x", 5000)} {
		if _, err := e.verifier.Login(ctx, c.Username, secret); !errors.Is(err, ErrInvalid) {
			t.Errorf("secret of %d characters: %v, want ErrInvalid", len(secret), err)
		}
	}
	if len(accounts.lookups) != 0 {
		t.Fatalf("malformed user names or secrets were looked up: %q", accounts.lookups)
	}
}

func TestAnSSHKeyLogsInOnlyAsItsCredentialAndDiesWithIt(t *testing.T) {
	e, accounts := newLoginEnv(t)
	c := issueAccount(t, e, accounts, "CASE-1", time.Hour, true, false)
	other := issueAccount(t, e, accounts, "CASE-1", 0, true, false)
	none := issueAccount(t, e, accounts, "CASE-1", 0, false, false)
	ctx := context.Background()

	got, err := e.verifier.LoginWithKey(ctx, c.Username, c.key)
	if err != nil || got.CredentialID != c.CredentialID {
		t.Fatalf("its own key: %+v, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		user string
		key  ssh.PublicKey
	}{
		{"another credential's key", c.Username, other.key},
		{"its key under another credential's user name", other.Username, c.key},
		{"its key under a credential without a key", none.Username, c.key},
		{"an unknown key", c.Username, newSSHKey(t)},
	} {
		if _, err := e.verifier.LoginWithKey(ctx, tc.user, tc.key); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
	e.revocations.revoked["CASE-1/"+other.CredentialID] = true
	if _, err := e.verifier.LoginWithKey(ctx, other.Username, other.key); !errors.Is(err, ErrRevoked) {
		t.Errorf("the key of a revoked credential: %v, want ErrRevoked", err)
	}
	e.clock.Advance(time.Hour)
	if _, err := e.verifier.LoginWithKey(ctx, c.Username, c.key); !errors.Is(err, ErrExpired) {
		t.Errorf("the key of an expired credential: %v, want ErrExpired", err)
	}
	accounts.err = errors.New("store down")
	if _, err := e.verifier.LoginWithKey(ctx, c.Username, c.key); err == nil || Reason(err) != "" {
		t.Errorf("with the lookup failing: %v, want an error that is no refusal", err)
	}
}

func TestTwoCredentialsSharingAUserNameAreEachTried(t *testing.T) {
	e, accounts := newLoginEnv(t)
	first := issueAccount(t, e, accounts, "CASE-1", time.Hour, true, false)
	// A second credential whose id starts with the same six characters,
	// carrying the same key: one in 2^30 per pair, but possible.
	token, claims, err := e.issuer.Issue(Claims{Case: "CASE-1", CredentialID: first.CredentialID[:6] + "zzzzzzzzzz",
		Username: first.Username, Role: RoleCustomer}, 0)
	if err != nil {
		t.Fatal(err)
	}
	password, hash := NewPassword()
	accounts.add(Account{Claims: claims, PasswordHash: hash, SSHKey: string(ssh.MarshalAuthorizedKey(first.key))})
	e.clock.Advance(time.Hour) // the first is expired now
	ctx := context.Background()
	for name, login := range map[string]func() (Claims, error){
		"the second's password": func() (Claims, error) { return e.verifier.Login(ctx, first.Username, password) },
		"the second's token":    func() (Claims, error) { return e.verifier.Login(ctx, first.Username, token) },
		"the shared key":        func() (Claims, error) { return e.verifier.LoginWithKey(ctx, first.Username, first.key) },
	} {
		if got, err := login(); err != nil || got.CredentialID != claims.CredentialID {
			t.Errorf("%s: %+v, %v; want the second credential", name, got, err)
		}
	}
	if _, err := e.verifier.Login(ctx, first.Username, first.password); !errors.Is(err, ErrExpired) {
		t.Errorf("the first's password: %v, want ErrExpired", err)
	}
}
