package cases_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
)

// countingStore counts the reads that reach the store.
type countingStore struct {
	storage.Store
	reads atomic.Int32
}

func (s *countingStore) List(ctx context.Context, prefix string) ([]storage.Info, error) {
	s.reads.Add(1)
	return s.Store.List(ctx, prefix)
}

func (s *countingStore) Open(ctx context.Context, key string) (storage.Object, error) {
	s.reads.Add(1)
	return s.Store.Open(ctx, key)
}

// loginEnv is a catalog on disk with the verifier the SFTP door uses on it.
type loginEnv struct {
	dir      string
	store    *countingStore
	catalog  *cases.Catalog
	clock    *clock
	issuer   *auth.Issuer
	verifier *auth.Verifier
}

func newLoginEnv(t *testing.T) *loginEnv {
	t.Helper()
	e := &loginEnv{dir: t.TempDir(), clock: testclock.New(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))}
	disk, err := diskstore.New(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	e.store = &countingStore{Store: disk}
	e.catalog = cases.New(e.store, e.clock.Now)
	keys, err := auth.LoadKeys(context.Background(), disk, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	e.issuer = &auth.Issuer{Keys: keys, Issuer: "casedrop", Now: e.clock.Now}
	e.verifier = &auth.Verifier{Keys: keys, Issuer: "casedrop", Now: e.clock.Now, Revocations: e.catalog, Accounts: e.catalog}
	return e
}

type issuedCredential struct {
	auth.Claims
	token, password string
	key             ssh.PublicKey
}

// issue issues and records a credential of caseID the way the admin API
// does, with an SSH key attached.
func (e *loginEnv) issue(t *testing.T, caseID string) issuedCredential {
	t.Helper()
	token, claims, err := e.issuer.Issue(auth.NewCredential(caseID, auth.RoleCustomer), 0)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshKey, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	key, err := auth.ParseSSHKey(string(ssh.MarshalAuthorizedKey(sshKey)))
	if err != nil {
		t.Fatal(err)
	}
	password, hash := auth.NewPassword()
	err = e.catalog.AddCredential(context.Background(), cases.Credential{
		ID: claims.CredentialID, Case: caseID, Username: claims.Username, Role: claims.Role,
		IssuedAt: claims.IssuedAt, ExpiresAt: claims.ExpiresAt, SSHPublicKey: key.AuthorizedKey, SSHKeyFingerprint: key.Fingerprint,
	}, hash)
	if err != nil {
		t.Fatal(err)
	}
	return issuedCredential{Claims: claims, token: token, password: password, key: sshKey}
}

func TestAShortPasswordAndAKeyOpenTheirCaseUntilTheCredentialIsRevokedOrTheCaseCloses(t *testing.T) {
	e := newLoginEnv(t)
	ctx := context.Background()
	const caseID = "ACME-2026-0042" // dashes in the case id, as in its user names
	if _, _, err := e.catalog.Open(ctx, caseID); err != nil {
		t.Fatal(err)
	}
	kept, revoked := e.issue(t, caseID), e.issue(t, caseID)
	login := func(c issuedCredential) error {
		got, err := e.verifier.Login(ctx, c.Username, c.password)
		if err == nil && (got.CredentialID != c.CredentialID || got.Case != caseID || !got.ExpiresAt.Equal(c.ExpiresAt)) {
			t.Fatalf("password login as %s gave %+v", c.Username, got)
		}
		if _, keyErr := e.verifier.LoginWithKey(ctx, c.Username, c.key); !errors.Is(keyErr, err) {
			t.Fatalf("%s: key login: %v; password login: %v", c.Username, keyErr, err)
		}
		return err
	}
	for _, c := range []issuedCredential{kept, revoked} {
		if err := login(c); err != nil {
			t.Fatalf("a fresh credential: %v", err)
		}
	}
	if _, err := e.catalog.Revoke(ctx, revoked.CredentialID); err != nil {
		t.Fatal(err)
	}
	if err := login(revoked); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("after its revocation: %v, want ErrRevoked", err)
	}
	if err := login(kept); err != nil {
		t.Fatalf("another credential of the case after a revocation: %v", err)
	}
	if _, err := e.catalog.Close(ctx, caseID); err != nil {
		t.Fatal(err)
	}
	if err := login(kept); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("after the case closed: %v, want ErrRevoked", err)
	}
	if _, err := e.catalog.Reopen(ctx, caseID); err != nil {
		t.Fatal(err)
	}
	if err := login(kept); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("after the case reopened: %v, want still ErrRevoked", err)
	}
}

func TestTheShortPasswordIsStoredOnlyAsAHashThatNeverLeavesTheCatalog(t *testing.T) {
	e := newLoginEnv(t)
	ctx := context.Background()
	if _, _, err := e.catalog.Open(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	c := e.issue(t, "c1")
	record, err := os.ReadFile(filepath.Join(e.dir, "cases", "c1", "credentials", c.CredentialID+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(record), c.password) || strings.Contains(string(record), c.token) {
		t.Fatalf("the record holds a secret: %s", record)
	}
	if !strings.Contains(string(record), `"password_hash":"sha256:`) {
		t.Fatalf("the record holds no password hash: %s", record)
	}
	if _, err := e.catalog.Revoke(ctx, c.CredentialID); err != nil {
		t.Fatal(err)
	}
	accounts, err := e.catalog.Accounts(ctx, "c1", c.CredentialID[:6])
	if err != nil || len(accounts) != 1 || accounts[0].PasswordHash == "" || accounts[0].SSHKey == "" {
		t.Fatalf("after a revocation the record is %+v (%v), want its hash and key kept", accounts, err)
	}
	one, err := e.catalog.Credential(ctx, c.CredentialID)
	if err != nil {
		t.Fatal(err)
	}
	all, err := e.catalog.Credentials(ctx, "c1")
	if err != nil || len(all) != 1 {
		t.Fatalf("Credentials: %+v, %v", all, err)
	}
	for _, cred := range []cases.Credential{one, all[0]} {
		if cred.SSHKeyFingerprint != ssh.FingerprintSHA256(c.key) || cred.RevokedAt == nil {
			t.Errorf("record handed out as %+v", cred)
		}
	}
}

func TestAccountsLooksNothingUpForWhatIsNoCaseOrCredentialID(t *testing.T) {
	e := newLoginEnv(t)
	ctx := context.Background()
	for _, tc := range []struct{ caseID, prefix string }{
		{"..", "abcdef"}, {"c1/../..", "abcdef"}, {"", "abcdef"}, {"c1", "../x"}, {"c1", ""}, {"c1", "ab/cd"},
		{strings.Repeat("x", 65), "abcdef"},
	} {
		accounts, err := e.catalog.Accounts(ctx, tc.caseID, tc.prefix)
		if err != nil || len(accounts) != 0 {
			t.Errorf("Accounts(%q, %q) = %+v, %v", tc.caseID, tc.prefix, accounts, err)
		}
	}
	if n := e.store.reads.Load(); n != 0 {
		t.Fatalf("%d reads reached the store", n)
	}
}
