package cases_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
)

// refusingStore fails the writes of keys under the prefixes it is told,
// over a real store.
type refusingStore struct {
	storage.Store
	mu      sync.Mutex
	refused []string
}

func (s *refusingStore) refuse(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused = append(s.refused, prefix)
}

func (s *refusingStore) check(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.refused {
		if strings.HasPrefix(key, p) {
			return errors.New("injected: cannot write " + key)
		}
	}
	return nil
}

func (s *refusingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.check(key); err != nil {
		return err
	}
	return s.Store.Put(ctx, key, r, size)
}

func (s *refusingStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.check(key); err != nil {
		return err
	}
	return s.Store.PutIfAbsent(ctx, key, r, size)
}

// failingSigner is a Signer that cannot sign.
type failingSigner struct{}

func (failingSigner) Issue(auth.Claims, time.Duration) (string, auth.Claims, error) {
	return "", auth.Claims{}, errors.New("injected: no signing key")
}

type opsEnv struct {
	clock   *clock
	store   *refusingStore
	catalog *cases.Catalog
	signer  *auth.Issuer
}

func newOpsEnv(t *testing.T) *opsEnv {
	t.Helper()
	disk, err := diskstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clk := testclock.New(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	keys, err := auth.LoadKeys(context.Background(), disk, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	store := &refusingStore{Store: disk}
	return &opsEnv{clock: clk, store: store, catalog: cases.New(store, clk.Now), signer: &auth.Issuer{Keys: keys, Issuer: "casedrop", Now: clk.Now}}
}

// trail is the types of caseID's audit events, in order.
func (e *opsEnv) trail(t *testing.T, caseID string) []string {
	t.Helper()
	events, err := e.catalog.AuditTrail(context.Background(), caseID, cases.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type)
	}
	return types
}

var operator = cases.AdminActor("cli", "")

func TestCaseOperationsAreAuditedOnlyWhenDone(t *testing.T) {
	ctx := context.Background()
	e := newOpsEnv(t)
	if _, created, err := e.catalog.OpenCase(ctx, "c1", operator); err != nil || !created {
		t.Fatalf("OpenCase: created %v, %v", created, err)
	}
	if _, created, err := e.catalog.OpenCase(ctx, "c1", operator); err != nil || created {
		t.Fatalf("OpenCase again: created %v, %v", created, err)
	}
	e.clock.Advance(time.Second)
	if _, err := e.catalog.CloseCase(ctx, "c1", operator); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if _, err := e.catalog.ReopenCase(ctx, "c1", operator); err != nil {
		t.Fatal(err)
	}
	want := []string{cases.EventCaseOpened, cases.EventCaseClosed, cases.EventCaseReopened}
	if got := e.trail(t, "c1"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the trail holds %v, want %v: opening an open case is no event", got, want)
	}

	t.Run("a case that is not is neither closed, reopened nor recorded", func(t *testing.T) {
		if _, err := e.catalog.CloseCase(ctx, "nobody", operator); !errors.Is(err, cases.ErrNotFound) {
			t.Errorf("CloseCase: %v", err)
		}
		if _, err := e.catalog.ReopenCase(ctx, "nobody", operator); !errors.Is(err, cases.ErrNotFound) {
			t.Errorf("ReopenCase: %v", err)
		}
		if _, err := e.catalog.RevokeCredential(ctx, "nocredential", operator); !errors.Is(err, cases.ErrNotFound) {
			t.Errorf("RevokeCredential: %v", err)
		}
		if got := e.trail(t, "nobody"); len(got) != 0 {
			t.Errorf("the trail of a case that is not holds %v", got)
		}
	})
	t.Run("a close the store refuses is not recorded", func(t *testing.T) {
		e.store.refuse(cases.Prefix("c1") + "case.json")
		if _, err := e.catalog.CloseCase(ctx, "c1", operator); err == nil || errors.Is(err, cases.ErrNotAudited) {
			t.Fatalf("CloseCase on a refusing store: %v", err)
		}
		if got := e.trail(t, "c1"); len(got) != len(want) {
			t.Errorf("the trail holds %v after a close that failed", got)
		}
	})
}

func TestACredentialIsAuditedOnlyOnceItIsRecorded(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		caseID  string
		role    auth.Role
		signer  cases.Signer
		refuse  string // a key prefix the store refuses to write
		wantErr error  // nil: any error
	}{
		{"a case that is not", "nobody", auth.RoleCustomer, nil, "", cases.ErrNotFound},
		{"a customer's for a closed case", "closed", auth.RoleCustomer, nil, "", cases.ErrCaseClosed},
		{"a signer that fails", "open", auth.RoleCustomer, failingSigner{}, "", nil},
		{"a store that refuses the record", "open", auth.RoleCustomer, nil, "cases/open/credentials/", nil},
		{"a store that refuses the index", "open", auth.RoleStaff, nil, "credentials/", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused and not recorded", func(t *testing.T) {
			e := newOpsEnv(t)
			for _, id := range []string{"open", "closed"} {
				if _, _, err := e.catalog.OpenCase(ctx, id, operator); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := e.catalog.CloseCase(ctx, "closed", operator); err != nil {
				t.Fatal(err)
			}
			if tt.refuse != "" {
				e.store.refuse(tt.refuse)
			}
			signer := tt.signer
			if signer == nil {
				signer = e.signer
			}
			_, err := e.catalog.IssueCredential(ctx, signer, cases.CredentialRequest{Case: tt.caseID, Role: tt.role}, operator)
			if err == nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) || errors.Is(err, cases.ErrNotAudited) {
				t.Fatalf("IssueCredential: %v, want %v", err, tt.wantErr)
			}
			for _, typ := range e.trail(t, tt.caseID) {
				if typ == cases.EventCredentialIssued {
					t.Errorf("%s recorded for a credential that was not issued", typ)
				}
			}
		})
	}
}

func TestAnIssuedCredentialIsRecordedAndAuditedWithoutItsSecrets(t *testing.T) {
	ctx := context.Background()
	e := newOpsEnv(t)
	if _, _, err := e.catalog.OpenCase(ctx, "c1", operator); err != nil {
		t.Fatal(err)
	}
	by := cases.AdminActor("api", "192.0.2.1")
	cred, err := e.catalog.IssueCredential(ctx, e.signer, cases.CredentialRequest{Case: "c1", Role: auth.RoleStaff, TTL: time.Hour}, by)
	if err != nil {
		t.Fatal(err)
	}
	if cred.Token == "" || cred.Password == "" || cred.Role != auth.RoleStaff || cred.ExpiresAt.Sub(cred.IssuedAt) != time.Hour {
		t.Errorf("issued %+v", cred)
	}
	if recorded, err := e.catalog.Credential(ctx, cred.ID); err != nil || recorded.Username != cred.Username {
		t.Errorf("recorded as %+v, %v", recorded, err)
	}
	events, err := e.catalog.AuditTrail(ctx, "c1", cases.AuditFilter{Types: []string{cases.EventCredentialIssued}})
	if err != nil || len(events) != 1 {
		t.Fatalf("credential.issued events: %v, %v", events, err)
	}
	if ev := events[0]; ev.Actor != by || !strings.Contains(ev.Detail, cred.ID) ||
		strings.Contains(ev.Detail, cred.Password) || strings.Contains(ev.Detail, cred.Token) {
		t.Errorf("recorded as %+v", ev)
	}

	t.Run("a trail that cannot be written says so, with the credential issued", func(t *testing.T) {
		e.store.refuse("audit/")
		cred, err := e.catalog.IssueCredential(ctx, e.signer, cases.CredentialRequest{Case: "c1", Role: auth.RoleCustomer}, by)
		if !errors.Is(err, cases.ErrNotAudited) || cred.Token == "" {
			t.Fatalf("IssueCredential with the trail down: %+v, %v; want the credential and ErrNotAudited", cred, err)
		}
		if _, err := e.catalog.Credential(ctx, cred.ID); err != nil {
			t.Errorf("the credential is not recorded: %v", err)
		}
	})
}
