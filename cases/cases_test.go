package cases_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/storage/diskstore"
)

// clock is an injected clock the tests move by hand.
type clock = testclock.Clock

func newCatalog(t *testing.T) (*cases.Catalog, *clock) {
	t.Helper()
	store, err := diskstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clk := testclock.New(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	return cases.New(store, clk.Now), clk
}

func TestCaseLifecycle(t *testing.T) {
	ctx := context.Background()
	cat, clk := newCatalog(t)

	c, created, err := cat.Open(ctx, "CASE-1")
	if err != nil || !created || c.State != cases.StateOpen {
		t.Fatalf("open: %+v created=%v err=%v", c, created, err)
	}
	t.Run("opening again is idempotent", func(t *testing.T) {
		again, created, err := cat.Open(ctx, "CASE-1")
		if err != nil || created || !again.OpenedAt.Equal(c.OpenedAt) {
			t.Fatalf("second open: %+v created=%v err=%v", again, created, err)
		}
	})
	t.Run("closing schedules the purge 30 days later", func(t *testing.T) {
		clk.Advance(time.Hour)
		closed, err := cat.Close(ctx, "CASE-1")
		if err != nil {
			t.Fatal(err)
		}
		if closed.State != cases.StateClosed || !closed.PurgeAt.Equal(clk.Now().Add(30*24*time.Hour)) {
			t.Fatalf("closed: %+v", closed)
		}
		if _, err := cat.RequireOpen(ctx, "CASE-1"); !errors.Is(err, cases.ErrCaseClosed) {
			t.Fatalf("RequireOpen on a closed case: %v", err)
		}
	})
	t.Run("reopening cancels the purge", func(t *testing.T) {
		reopened, err := cat.Reopen(ctx, "CASE-1")
		if err != nil || reopened.State != cases.StateOpen || reopened.PurgeAt != nil || reopened.ClosedAt != nil {
			t.Fatalf("reopened: %+v err=%v", reopened, err)
		}
	})
	t.Run("cases are listed", func(t *testing.T) {
		if _, _, err := cat.Open(ctx, "CASE-2"); err != nil {
			t.Fatal(err)
		}
		all, err := cat.Cases(ctx)
		if err != nil || len(all) != 2 || all[0].ID != "CASE-1" || all[1].ID != "CASE-2" {
			t.Fatalf("cases %+v (%v)", all, err)
		}
	})
	t.Run("unknown and malformed cases are refused", func(t *testing.T) {
		if _, err := cat.Get(ctx, "nope"); !errors.Is(err, cases.ErrNotFound) {
			t.Fatalf("get unknown: %v", err)
		}
		for _, id := range []string{"", "../x", "a/b", ".hidden", "with space", string(make([]byte, 65))} {
			if _, _, err := cat.Open(ctx, id); !errors.Is(err, cases.ErrInvalidCase) {
				t.Fatalf("open %q: %v", id, err)
			}
		}
	})
}

func TestClosingRevokesEveryCredentialIssuedBefore(t *testing.T) {
	ctx := context.Background()
	cat, clk := newCatalog(t)
	if _, _, err := cat.Open(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	add := func(id string) {
		if err := cat.AddCredential(ctx, cases.Credential{ID: id, Case: "c1", IssuedAt: clk.Now().Truncate(time.Second)}, ""); err != nil {
			t.Fatal(err)
		}
	}
	revoked := func(id string) bool {
		r, err := cat.Revoked(ctx, "c1", id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	add("before")
	if revoked("before") {
		t.Fatal("a fresh credential counts as revoked")
	}
	if !revoked("unknown") {
		t.Fatal("an unknown credential is accepted")
	}
	clk.Advance(300 * time.Millisecond)
	if _, err := cat.Close(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(300 * time.Millisecond) // same second as the close
	if _, err := cat.Reopen(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	add("after")
	if !revoked("before") {
		t.Fatal("a credential issued before the close survived it")
	}
	if revoked("after") {
		t.Fatal("a credential issued after the reopen, in the same second as the close, counts as revoked")
	}
	if _, err := cat.Revoke(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	if !revoked("after") {
		t.Fatal("revoking by id did not revoke")
	}
}
