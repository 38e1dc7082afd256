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
	x := newQueueFixture(t)
	clock, catalog := x.clock, x.catalog
	scanner := &fakeScanner{err: errors.New("clamd: connection refused")}
	w := x.worker("i1", scanner, nil)
	state := func() cases.FileState {
		got, err := catalog.File(ctx, "c1", "core.dump")
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
	got, err := catalog.File(ctx, "c1", "core.dump")
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

// heldScanner blocks each scan until release is closed or its context
// ends; started hears of each scan as it begins.
type heldScanner struct {
	started chan struct{}
	release chan struct{}
	verdict scan.Verdict
}

func newHeldScanner() *heldScanner {
	return &heldScanner{started: make(chan struct{}, 4), release: make(chan struct{}), verdict: scan.Verdict{Result: scan.Clean}}
}

func (s *heldScanner) Scan(ctx context.Context, _ io.Reader, _ int64) (scan.Verdict, error) {
	s.started <- struct{}{}
	select {
	case <-s.release:
		return s.verdict, nil
	case <-ctx.Done():
		return scan.Verdict{}, context.Cause(ctx)
	}
}

// queueFixture is a catalog on the injected clock with one file,
// core.dump, waiting for its scan, and workers for it.
type queueFixture struct {
	t       *testing.T
	clock   *testclock.Clock
	catalog *cases.Catalog
}

func newQueueFixture(t *testing.T) *queueFixture {
	t.Helper()
	store, err := diskstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	x := &queueFixture{t: t, clock: testclock.New(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))}
	x.catalog = cases.New(store, x.clock.Now)
	ctx := context.Background()
	if _, _, err := x.catalog.Open(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	f := cases.File{Name: "core.dump", Object: "obj1", Size: 4, SHA256: strings.Repeat("cd", 32), State: cases.FileScanning}
	if err := x.catalog.QueueScan(ctx, "c1", f); err != nil {
		t.Fatal(err)
	}
	if _, err := x.catalog.AddFile(ctx, "c1", f); err != nil {
		t.Fatal(err)
	}
	return x
}

const claimTestLease = 11 * time.Minute

func (x *queueFixture) worker(instance string, scanner scan.Scanner, ticks <-chan time.Time) *scan.Worker {
	return scan.NewWorker(scan.Config{Scanner: scanner, Queue: x.catalog, Now: x.clock.Now, Instance: instance,
		ClaimLease: claimTestLease, RenewTicks: ticks,
		Open: func(context.Context, string, cases.File) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("data")), nil
		}})
}

// job is the one job in the queue.
func (x *queueFixture) job() cases.ScanJob {
	x.t.Helper()
	jobs, err := x.catalog.ScanQueue(context.Background())
	if err != nil || len(jobs) != 1 {
		x.t.Fatalf("queue: %+v, %v", jobs, err)
	}
	return jobs[0]
}

// heldScan starts instance i1 scanning the file with a heldScanner, its
// claim renewed at each tick sent on ticks, and returns once the scan
// runs; done gives ScanDue's error.
func (x *queueFixture) heldScan() (ticks chan time.Time, s *heldScanner, done <-chan error) {
	ticks, s = make(chan time.Time), newHeldScanner()
	done = scanDue(x.worker("i1", s, ticks))
	<-s.started
	return ticks, s, done
}

// scanDue runs w.ScanDue in the background; the channel gives its error.
func scanDue(w *scan.Worker) <-chan error {
	done := make(chan error, 1)
	go func() { done <- w.ScanDue(context.Background()) }()
	return done
}

// waitUntil polls cond until it holds, for at most ten seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		<-tick.C
	}
}

// finished waits for the ScanDue behind done, for at most ten seconds.
func finished(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ScanDue: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scan did not end")
	}
}

func TestAScanLongerThanItsLeaseKeepsItsClaimSoThatNoOtherInstanceScansTheFile(t *testing.T) {
	x := newQueueFixture(t)
	ticks, first, done := x.heldScan()
	claimed := x.job().ClaimedUntil

	// Ten minutes into the scan the claim is renewed for another lease.
	x.clock.Advance(10 * time.Minute)
	ticks <- x.clock.Now()
	want := x.clock.Now().Add(claimTestLease)
	waitUntil(t, "the claim is renewed", func() bool { return x.job().ClaimedUntil.Equal(want) })
	if !want.After(claimed) {
		t.Fatalf("renewed until %v, first claimed until %v", want, claimed)
	}

	// Past the first lease, another instance leaves the file alone.
	x.clock.Advance(5 * time.Minute)
	second := &fakeScanner{verdict: scan.Verdict{Result: scan.Clean}}
	if err := x.worker("i2", second, nil).ScanDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if second.scans != 0 {
		t.Fatalf("a second instance scanned the file while the first held its renewed claim")
	}

	close(first.release)
	finished(t, done)
	got, err := x.catalog.File(context.Background(), "c1", "core.dump")
	if err != nil || got.State != cases.FileComplete {
		t.Fatalf("after the scan the file is %+v, %v", got, err)
	}
}

func TestAScanWhoseClaimAnotherInstanceTookOverStopsWithoutAVerdict(t *testing.T) {
	x := newQueueFixture(t)
	ticks, first, done := x.heldScan()

	// Its claim ran out unrenewed, and another instance took the job.
	x.clock.Advance(claimTestLease + time.Second)
	if _, mine, err := x.catalog.ClaimScan(context.Background(), x.job(), "i2", claimTestLease); err != nil || !mine {
		t.Fatalf("the second instance's claim: %v, %v", mine, err)
	}
	ticks <- x.clock.Now()
	t.Cleanup(func() { close(first.release) })
	finished(t, done)
	if j := x.job(); j.ClaimedBy != "i2" || j.Attempts != 0 {
		t.Fatalf("the job after the first instance stopped: %+v; want i2's claim untouched", j)
	}
	got, err := x.catalog.File(context.Background(), "c1", "core.dump")
	if err != nil || got.State != cases.FileScanning {
		t.Fatalf("the file is %+v, %v; want it still scanning", got, err)
	}
}

func TestBacklogSaysHowManyScansWaitAndSinceWhenTheOldestWaits(t *testing.T) {
	x := newQueueFixture(t) // core.dump, queued at 9:00
	queuedFirst := x.clock.Now()
	x.clock.Advance(time.Minute)
	ctx := context.Background()
	f := cases.File{Name: "later.log", Object: "obj2", Size: 4, SHA256: strings.Repeat("ef", 32), State: cases.FileScanning}
	if err := x.catalog.QueueScan(ctx, "c1", f); err != nil {
		t.Fatal(err)
	}
	if _, err := x.catalog.AddFile(ctx, "c1", f); err != nil {
		t.Fatal(err)
	}
	scanner := &fakeScanner{err: errors.New("clamd: connection refused")}
	w := x.worker("i1", scanner, nil)
	if n, oldest := w.Backlog(); n != 0 || !oldest.IsZero() {
		t.Fatalf("before a look at the queue the backlog is %d since %v", n, oldest)
	}

	if err := w.ScanDue(ctx); err != nil {
		t.Fatal(err)
	}
	if n, oldest := w.Backlog(); n != 2 || !oldest.Equal(queuedFirst) {
		t.Fatalf("with the scanner down the backlog is %d since %v; want 2 since %v", n, oldest, queuedFirst)
	}

	scanner.err, scanner.verdict = nil, scan.Verdict{Result: scan.Clean}
	x.clock.Advance(time.Hour) // past every backoff
	if err := w.ScanDue(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := w.Backlog(); n != 0 {
		t.Fatalf("after both verdicts the backlog is %d", n)
	}
	if err := w.ScanDue(ctx); err != nil {
		t.Fatal(err)
	}
	if n, oldest := w.Backlog(); n != 0 || !oldest.IsZero() {
		t.Fatalf("with the queue empty the backlog is %d since %v", n, oldest)
	}
}

func TestWakeHasRunScanAFileQueuedJustNowWithoutWaitingForItsInterval(t *testing.T) {
	x := newQueueFixture(t)
	w := x.worker("i1", &fakeScanner{verdict: scan.Verdict{Result: scan.Clean}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	t.Cleanup(func() { cancel(); <-stopped })
	go func() {
		defer close(stopped)
		w.Run(ctx, time.Hour) // no second look at the queue unless woken
	}()
	state := func(name string) func() bool {
		return func() bool {
			f, err := x.catalog.File(ctx, "c1", name)
			return err == nil && f.State == cases.FileComplete
		}
	}
	waitUntil(t, "Run's first look scans core.dump", state("core.dump"))

	f := cases.File{Name: "new.log", Object: "obj2", Size: 4, SHA256: strings.Repeat("ef", 32), State: cases.FileScanning}
	if err := x.catalog.QueueScan(ctx, "c1", f); err != nil {
		t.Fatal(err)
	}
	if _, err := x.catalog.AddFile(ctx, "c1", f); err != nil {
		t.Fatal(err)
	}
	w.Wake()
	waitUntil(t, "woken, Run scans new.log", state("new.log"))
}
