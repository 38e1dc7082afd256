package scan_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/scan"
	"github.com/casedrop/casedrop/storage/diskstore"
)

// fakeScanner answers with err, else verdict, and counts its scans.
type fakeScanner struct {
	verdict scan.Verdict
	err     error
	scans   int
}

func (s *fakeScanner) Scan(_ context.Context, r io.Reader, _ int64) (scan.Verdict, error) {
	s.scans++
	if _, err := io.Copy(io.Discard, r); err != nil {
		return scan.Verdict{}, err
	}
	return s.verdict, s.err
}

func TestAScanWithoutVerdictKeepsTheFileHeldAndIsRetriedWithBackoffOnTheClock(t *testing.T) {
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
	f := cases.File{Name: "dump.bin", Object: "obj1", Size: 4, SHA256: strings.Repeat("ab", 32), State: cases.FileScanning}
	if err := catalog.QueueScan(ctx, "c1", f); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.AddFile(ctx, "c1", f); err != nil {
		t.Fatal(err)
	}
	scanner := &fakeScanner{err: errors.New("clamd: connection refused")}
	w := scan.NewWorker(scan.Config{Scanner: scanner, Queue: catalog, Now: clock.Now, Instance: "i1", MaxBackoff: time.Minute,
		Open: func(context.Context, string, cases.File) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("data")), nil
		}})
	state := func() cases.FileState {
		got, err := catalog.File(ctx, "c1", "dump.bin")
		if err != nil {
			t.Fatal(err)
		}
		return got.State
	}

	// 1 s, 2 s, 4 s: each failure waits longer, on the injected clock.
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if err := w.ScanDue(ctx); err != nil {
			t.Fatal(err)
		}
		if scanner.scans != i+1 || state() != cases.FileScanning || w.Waiting() != 1 {
			t.Fatalf("attempt %d: %d scans, file %s, %d waiting", i+1, scanner.scans, state(), w.Waiting())
		}
		clock.Advance(wait - time.Millisecond)
		if err := w.ScanDue(ctx); err != nil {
			t.Fatal(err)
		}
		if scanner.scans != i+1 {
			t.Fatalf("attempt %d was retried before its backoff of %v", i+1, wait)
		}
		clock.Advance(time.Millisecond)
	}

	scanner.err, scanner.verdict = nil, scan.Verdict{Result: scan.Infected, Signature: "Test.Sig"}
	if err := w.ScanDue(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := catalog.File(ctx, "c1", "dump.bin")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != cases.FileQuarantined || got.Finding != "Test.Sig" || got.ScannedAt == nil {
		t.Fatalf("after the verdict the file is %+v", got)
	}
	if jobs, err := catalog.ScanQueue(ctx); err != nil || len(jobs) != 0 {
		t.Fatalf("queue after the verdict: %+v, %v", jobs, err)
	}
	events, err := catalog.AuditTrail(ctx, "c1", cases.AuditFilter{Types: []string{cases.EventFileScanned}})
	if err != nil || len(events) != 1 || events[0].Verdict != cases.VerdictInfected || events[0].Signature != "Test.Sig" {
		t.Fatalf("audit trail: %+v, %v", events, err)
	}
}
