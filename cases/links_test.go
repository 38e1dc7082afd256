package cases_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
)

// linkEnv is an open case c1 with an upload link issued for it.
func newLinkEnv(t *testing.T) (*opsEnv, cases.IssuedLink) {
	t.Helper()
	e := newOpsEnv(t)
	if _, _, err := e.catalog.OpenCase(context.Background(), "c1", operator); err != nil {
		t.Fatal(err)
	}
	link, err := e.catalog.IssueLink(context.Background(), "c1", 0, operator)
	if err != nil {
		t.Fatal(err)
	}
	return e, link
}

var visitor = cases.Actor{Door: "api", Remote: "192.0.2.7"}

func TestAnUploadLinkIsStoredByItsCodesHashAndLivesTenMinutesByDefault(t *testing.T) {
	ctx := context.Background()
	e, link := newLinkEnv(t)
	if link.Code == "" || link.ExpiresAt.Sub(link.CreatedAt) != cases.LinkTTL || link.UsedAt != nil {
		t.Fatalf("issued %+v", link)
	}
	infos, err := e.store.List(ctx, cases.Prefix("c1")+"links/")
	if err != nil || len(infos) != 1 {
		t.Fatalf("links stored: %v, %v", infos, err)
	}
	if key := infos[0].Key; key != cases.Prefix("c1")+"links/"+hashOf(t, link.Code)+".json" {
		t.Errorf("the link is stored under %s, not its code's hash", key)
	}
	record := read(t, e, infos[0].Key)
	if strings.Contains(record, link.Code) {
		t.Errorf("the record holds the code: %s", record)
	}
	events, err := e.catalog.AuditTrail(ctx, "c1", cases.AuditFilter{Types: []string{cases.EventLinkIssued}})
	if err != nil || len(events) != 1 || strings.Contains(events[0].Detail, link.Code) || !strings.Contains(events[0].Detail, link.ID) {
		t.Fatalf("link.issued events: %+v, %v", events, err)
	}

	t.Run("its life is asked for, up to an hour", func(t *testing.T) {
		short, err := e.catalog.IssueLink(ctx, "c1", time.Minute, operator)
		if err != nil || short.ExpiresAt.Sub(short.CreatedAt) != time.Minute {
			t.Fatalf("IssueLink for a minute: %+v, %v", short, err)
		}
		if _, err := e.catalog.IssueLink(ctx, "c1", cases.MaxLinkTTL+time.Second, operator); err == nil {
			t.Fatal("a link for over an hour was issued")
		}
	})
	t.Run("a closed case or one that is not gets none", func(t *testing.T) {
		if _, err := e.catalog.IssueLink(ctx, "nobody", 0, operator); !errors.Is(err, cases.ErrNotFound) {
			t.Errorf("IssueLink for a case that is not: %v", err)
		}
		if _, err := e.catalog.CloseCase(ctx, "c1", operator); err != nil {
			t.Fatal(err)
		}
		if _, err := e.catalog.IssueLink(ctx, "c1", 0, operator); !errors.Is(err, cases.ErrCaseClosed) {
			t.Errorf("IssueLink for a closed case: %v", err)
		}
	})
}

func TestAnUploadLinkIsRedeemedOnceForANewCustomerCredential(t *testing.T) {
	ctx := context.Background()
	e, link := newLinkEnv(t)
	cred, err := e.catalog.RedeemLink(ctx, e.signer, "c1", link.Code, visitor)
	if err != nil {
		t.Fatal(err)
	}
	if cred.Token == "" || cred.Password == "" || cred.Role != auth.RoleCustomer || cred.Case != "c1" ||
		cred.ExpiresAt.Sub(cred.IssuedAt) != auth.MaxTTL {
		t.Fatalf("redeemed for %+v", cred)
	}
	if _, err := e.catalog.Credential(ctx, cred.ID); err != nil {
		t.Errorf("the credential is not recorded: %v", err)
	}
	var stored cases.Link
	if err := json.Unmarshal([]byte(read(t, e, cases.Prefix("c1")+"links/"+hashOf(t, link.Code)+".json")), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.UsedAt == nil || stored.CredentialID != cred.ID {
		t.Errorf("the link's record after the redeem: %+v", stored)
	}
	events, err := e.catalog.AuditTrail(ctx, "c1", cases.AuditFilter{Types: []string{cases.EventCredentialIssued, cases.EventLinkRedeemed}})
	if err != nil || len(events) != 2 {
		t.Fatalf("events: %+v, %v", events, err)
	}
	for _, ev := range events {
		if ev.CredentialID != cred.ID || ev.Remote != visitor.Remote || !strings.Contains(ev.Detail, link.ID) ||
			strings.Contains(ev.Detail, link.Code) || strings.Contains(ev.Detail, cred.Token) || strings.Contains(ev.Detail, cred.Password) {
			t.Errorf("recorded as %+v", ev)
		}
	}

	if _, err := e.catalog.RedeemLink(ctx, e.signer, "c1", link.Code, visitor); !errors.Is(err, cases.ErrLinkUsed) {
		t.Errorf("a second redeem: %v, want ErrLinkUsed", err)
	}
}

func TestOfTwoRedeemsOfOneLinkAtOnceOneWins(t *testing.T) {
	ctx := context.Background()
	e, link := newLinkEnv(t)
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		won     int
		refused []error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.catalog.RedeemLink(ctx, e.signer, "c1", link.Code, visitor)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else {
				refused = append(refused, err)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d redeems won, want 1; the others: %v", won, refused)
	}
	for _, err := range refused {
		if !errors.Is(err, cases.ErrLinkUsed) {
			t.Errorf("a losing redeem: %v, want ErrLinkUsed", err)
		}
	}
	creds, err := e.catalog.Credentials(ctx, "c1")
	if err != nil || len(creds) != 1 {
		t.Errorf("credentials of the case: %+v, %v; want the winner's alone", creds, err)
	}
}

func TestAnUploadLinkIsRefusedWhenExpiredUnknownOrItsCaseClosed(t *testing.T) {
	ctx := context.Background()
	other, _ := auth.NewLinkCode()
	tests := []struct {
		name   string
		before func(e *opsEnv)
		caseID string
		code   func(link cases.IssuedLink) string
		want   error
	}{
		{"at its expiry", func(e *opsEnv) { e.clock.Advance(cases.LinkTTL) }, "c1", nil, cases.ErrLinkExpired},
		{"with a code of no link", nil, "c1", func(cases.IssuedLink) string { return other }, cases.ErrLinkNotFound},
		{"with a code cut short", nil, "c1", func(l cases.IssuedLink) string { return l.Code[1:] }, cases.ErrLinkNotFound},
		{"under another case", func(e *opsEnv) { _, _, _ = e.catalog.OpenCase(ctx, "c2", operator) }, "c2", nil, cases.ErrLinkNotFound},
		{"under no valid case", nil, "../c1", nil, cases.ErrLinkNotFound},
		{"once its case is closed", func(e *opsEnv) { _, _ = e.catalog.CloseCase(ctx, "c1", operator) }, "c1", nil, cases.ErrCaseClosed},
		{"after its case was closed and reopened", func(e *opsEnv) {
			_, _ = e.catalog.CloseCase(ctx, "c1", operator)
			e.clock.Advance(time.Second)
			_, _ = e.catalog.ReopenCase(ctx, "c1", operator)
		}, "c1", nil, cases.ErrLinkExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, link := newLinkEnv(t)
			e.clock.Advance(time.Second)
			if tt.before != nil {
				tt.before(e)
			}
			code := link.Code
			if tt.code != nil {
				code = tt.code(link)
			}
			if _, err := e.catalog.RedeemLink(ctx, e.signer, tt.caseID, code, visitor); !errors.Is(err, tt.want) {
				t.Fatalf("RedeemLink: %v, want %v", err, tt.want)
			}
			for _, id := range []string{"c1", "c2"} {
				if creds, _ := e.catalog.Credentials(ctx, id); len(creds) != 0 {
					t.Errorf("a refused link issued %+v", creds)
				}
			}
		})
	}
}

func hashOf(t *testing.T, code string) string {
	t.Helper()
	h := auth.LinkCodeHash(code)
	if h == "" {
		t.Fatalf("%q is no link code", code)
	}
	return h
}

func read(t *testing.T, e *opsEnv, key string) string {
	t.Helper()
	obj, err := e.store.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
