package cases_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/storage/diskstore"
)

func TestReleaseServesAQuarantinedFileOnlyWithAReasonAuditedAndKeepsItsFinding(t *testing.T) {
	ctx := context.Background()
	store, err := diskstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := testclock.New(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	catalog := cases.New(store, clock.Now)
	if _, _, err := catalog.Open(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []cases.File{
		{Name: "eicar.com", Object: "o1", Size: 68, SHA256: strings.Repeat("ab", 32), State: cases.FileQuarantined, Finding: "Eicar-Test-Signature"},
		{Name: "clean.log", Object: "o2", Size: 4, SHA256: strings.Repeat("cd", 32), State: cases.FileComplete},
	} {
		if _, err := catalog.AddFile(ctx, "c1", f); err != nil {
			t.Fatal(err)
		}
	}
	admin := cases.Actor{Role: auth.RoleAdmin, Door: "api"}

	if _, err := catalog.ReleaseFile(ctx, "c1", "eicar.com", "  ", admin); !errors.Is(err, cases.ErrReleaseReason) {
		t.Errorf("a release without a reason: %v, want ErrReleaseReason", err)
	}
	if _, err := catalog.ReleaseFile(ctx, "c1", "clean.log", "why not", admin); !errors.Is(err, cases.ErrNotQuarantined) {
		t.Errorf("a release of a complete file: %v, want ErrNotQuarantined", err)
	}
	if _, err := catalog.ReleaseFile(ctx, "c1", "nothing.here", "why not", admin); !errors.Is(err, cases.ErrNotFound) {
		t.Errorf("a release of no file: %v, want ErrNotFound", err)
	}
	if got, err := catalog.File(ctx, "c1", "eicar.com"); err != nil || got.State != cases.FileQuarantined {
		t.Fatalf("after the refused releases eicar.com is %+v, %v; want still quarantined", got, err)
	}

	clock.Advance(time.Hour)
	if _, err := catalog.ReleaseFile(ctx, "c1", "eicar.com", " the customer's AV test file ", admin); err != nil {
		t.Fatal(err)
	}
	got, err := catalog.File(ctx, "c1", "eicar.com")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != cases.FileComplete || got.Servable() != nil || got.Finding != "Eicar-Test-Signature" ||
		got.ReleasedAt == nil || !got.ReleasedAt.Equal(clock.Now()) || got.ReleaseReason != "the customer's AV test file" {
		t.Errorf("the released file is %+v; want complete, servable, its finding kept, released now with the reason", got)
	}
	events, err := catalog.AuditTrail(ctx, "c1", cases.AuditFilter{Types: []string{cases.EventFileReleased}})
	if err != nil || len(events) != 1 {
		t.Fatalf("file.released in the audit trail: %+v, %v; want one, of the one release that passed", events, err)
	}
	if e := events[0]; e.File != "eicar.com" || e.Actor.Role != auth.RoleAdmin || e.Signature != "Eicar-Test-Signature" || e.Detail != "the customer's AV test file" {
		t.Errorf("file.released: %+v; want the file, the admin, the signature and the reason", e)
	}
}
