package cases_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/backends"
	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/upload"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// stores runs fn on local disk and on a real MinIO.
var stores = backends.Each

// instance is one casedrop process's view of the shared store.
type instance struct {
	store   storage.Store
	catalog *cases.Catalog
	ingest  *upload.Ingest
	purger  *cases.Purger
}

func newInstance(store storage.Store, clk *clock, name string) *instance {
	cat := cases.New(store, clk.Now)
	in := upload.New(upload.Config{Store: store, Catalog: cat, Now: clk.Now, PartSize: storage.MinPartSize})
	purger := &cases.Purger{Catalog: cat, Uploads: in, Instance: name, Sleep: noSleep}
	return &instance{store: store, catalog: cat, ingest: in, purger: purger}
}

// noSleep is a Purger's Sleep that does not wait: the pauses between
// attempts only slow the tests down.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func (i *instance) upload(t *testing.T, caseID, name string, data []byte, finish bool) {
	t.Helper()
	ctx := context.Background()
	size := int64(len(data))
	if !finish {
		size = -1
	}
	up, err := i.ingest.Create(ctx, upload.NewFile{Case: caseID, Name: name, Size: size, Via: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(ctx, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if finish {
		if _, err := up.Finish(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func data(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// keysUnder lists what the store holds under prefix, and the unfinished
// multipart uploads there.
func keysUnder(t *testing.T, s storage.Store, prefix string) (objects []string, multiparts int) {
	t.Helper()
	infos, err := s.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		objects = append(objects, strings.TrimPrefix(info.Key, prefix))
	}
	mps, err := s.ListMultiparts(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return objects, len(mps)
}

func TestTheWholeLifeOfACase(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		clk := testclock.New(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
		a := newInstance(newStore(), clk, "a")
		if _, _, err := a.catalog.Open(ctx, "life"); err != nil {
			t.Fatal(err)
		}
		a.upload(t, "life", "small.log", []byte("hello"), true)
		a.upload(t, "life", "core.gz", data(6<<20, 1), true)
		// An unfinished upload with a multipart upload in the store.
		a.upload(t, "life", "partial.bin", data(7<<20, 2), false)
		if _, mps := keysUnder(t, a.store, cases.Prefix("life")); mps != 1 {
			t.Fatalf("setup: %d multipart uploads, want 1", mps)
		}

		closed, err := a.catalog.Close(ctx, "life")
		if err != nil {
			t.Fatal(err)
		}
		t.Run("day 29: nothing is due and reopening keeps everything", func(t *testing.T) {
			clk.Advance(29 * 24 * time.Hour)
			if due, _ := a.purger.Due(ctx, clk.Now()); len(due) != 0 {
				t.Fatalf("due on day 29: %+v", due)
			}
			if _, err := a.purger.Purge(ctx, "life", clk.Now(), false); !errors.Is(err, cases.ErrPurgeNotDue) {
				t.Fatalf("purge on day 29: %v", err)
			}
			if _, err := a.catalog.Reopen(ctx, "life"); err != nil {
				t.Fatal(err)
			}
			files, _ := a.catalog.Files(ctx, "life")
			if len(files) != 3 {
				t.Fatalf("files after reopen: %+v", files)
			}
		})
		t.Run("day 30 after the second close: the purge removes files, uploads and catalog", func(t *testing.T) {
			clk.Advance(time.Hour)
			closed, err = a.catalog.Close(ctx, "life")
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(30*24*time.Hour - time.Second)
			if due, _ := a.purger.Due(ctx, clk.Now()); len(due) != 0 {
				t.Fatal("due a second before 30 days")
			}
			clk.Advance(time.Second)
			reports, err := a.purger.PurgeDue(ctx, clk.Now(), true)
			if err != nil || len(reports) != 1 || len(reports[0].Files) != 3 {
				t.Fatalf("dry run: %+v %v", reports, err)
			}
			if objs, _ := keysUnder(t, a.store, cases.Prefix("life")+"objects/"); len(objs) != 2 {
				t.Fatalf("a dry run removed objects: %v", objs)
			}
			reports, err = a.purger.PurgeDue(ctx, clk.Now(), false)
			if err != nil || len(reports) != 1 {
				t.Fatalf("purge: %+v %v", reports, err)
			}
			objs, mps := keysUnder(t, a.store, cases.Prefix("life"))
			for _, k := range objs {
				if k != "case.json" && !strings.HasPrefix(k, "credentials/") {
					t.Errorf("left after the purge: %s", k)
				}
			}
			if mps != 0 {
				t.Errorf("%d multipart uploads left after the purge", mps)
			}
		})
		t.Run("the audit trail records exactly what was removed", func(t *testing.T) {
			events, err := a.catalog.AuditTrail(ctx, "life", cases.AuditFilter{Types: []string{cases.EventCasePurged}})
			if err != nil || len(events) != 1 {
				t.Fatalf("purge records: %+v %v", events, err)
			}
			names := map[string]int64{}
			for _, f := range events[0].Files {
				names[f.Name] = f.Size
			}
			if len(names) != 3 || names["small.log"] != 5 || names["core.gz"] != 6<<20 {
				t.Fatalf("purge record lists %+v", events[0].Files)
			}
		})
		t.Run("the trail outlives the purge until its retention is over", func(t *testing.T) {
			kept, err := a.catalog.PruneAudit(ctx, clk.Now().Add(-365*24*time.Hour))
			if err != nil || kept != 0 {
				t.Fatalf("a year's retention removed %d events (%v)", kept, err)
			}
			before, _ := a.catalog.AuditTrail(ctx, "life", cases.AuditFilter{})
			if len(before) == 0 {
				t.Fatal("no audit events to prune")
			}
			// 20 days' retention, two months after the first events: the
			// old ones go, the purge record (made just now) stays.
			removed, err := a.catalog.PruneAudit(ctx, clk.Now().Add(-20*24*time.Hour))
			if err != nil || removed == 0 {
				t.Fatalf("pruning removed %d events (%v)", removed, err)
			}
			after, _ := a.catalog.AuditTrail(ctx, "life", cases.AuditFilter{})
			if len(after) != len(before)-removed {
				t.Fatalf("%d events left of %d, %d removed", len(after), len(before), removed)
			}
			purgeRecords := 0
			for _, ev := range after {
				if ev.Time.Before(clk.Now().Add(-20 * 24 * time.Hour)) {
					t.Fatalf("an event from %v outlived its retention", ev.Time)
				}
				if ev.Type == cases.EventCasePurged {
					purgeRecords++
				}
			}
			if purgeRecords != 1 {
				t.Fatalf("%d purge records after pruning, want the recent one kept", purgeRecords)
			}
		})
		t.Run("reopened after the purge, the case is empty and says when it was purged", func(t *testing.T) {
			rec, err := a.catalog.Reopen(ctx, "life")
			if err != nil || rec.PurgedAt == nil || !rec.PurgedAt.Equal(clk.Now()) {
				t.Fatalf("reopened: %+v %v (closed %v)", rec, err, closed.ClosedAt)
			}
			if files, _ := a.catalog.Files(ctx, "life"); len(files) != 0 {
				t.Fatalf("files after the purge: %+v", files)
			}
		})
	})
}

// failingStore fails every delete after the first few: a purge that dies
// half way (a real store under it; only the failure is injected).
type failingStore struct {
	storage.Store
	deletesLeft atomic.Int32
}

func (f *failingStore) Delete(ctx context.Context, key string) error {
	if f.deletesLeft.Add(-1) < 0 {
		return errors.New("injected: store unreachable")
	}
	return f.Store.Delete(ctx, key)
}

func TestAPurgeThatDiesHalfWayIsFinishedByTheNextRunWithOneRecord(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		clk := testclock.New(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
		flaky := &failingStore{Store: newStore()}
		flaky.deletesLeft.Store(2)
		a := newInstance(flaky, clk, "a")
		var paused atomic.Int64
		a.purger.Sleep = func(ctx context.Context, d time.Duration) error {
			paused.Add(int64(d))
			return ctx.Err()
		}
		if _, _, err := a.catalog.Open(ctx, "half"); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			a.upload(t, "half", fmt.Sprintf("f%d.txt", i), []byte(strings.Repeat("x", i+1)), true)
		}
		if _, err := a.catalog.Close(ctx, "half"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(31 * 24 * time.Hour)
		var runs purgeRuns
		a.purger.Metrics = &runs
		if _, err := a.purger.PurgeDue(ctx, clk.Now(), false); err == nil {
			t.Fatal("a purge whose deletes fail claims success")
		}
		if rec, _ := a.catalog.Get(ctx, "half"); rec.PurgedAt != nil {
			t.Fatal("the case says purged after a failed purge")
		}
		if paused.Load() == 0 {
			t.Error("failed deletes were retried without a pause")
		}
		// The same instance runs again (a restarted process keeps its name).
		b := newInstance(newStore(), clk, "a")
		b.purger.Metrics = &runs
		reports, err := b.purger.PurgeDue(ctx, clk.Now(), false)
		if err != nil || len(reports) != 1 {
			t.Fatalf("second run: %+v %v", reports, err)
		}
		if want := []string{"error 0", fmt.Sprintf("ok %d", reports[0].Objects)}; !slices.Equal(runs.told, want) || reports[0].Objects == 0 {
			t.Errorf("the metrics were told %q, want %q", runs.told, want)
		}
		if objs, _ := keysUnder(t, b.store, cases.Prefix("half")+"objects/"); len(objs) != 0 {
			t.Fatalf("objects left: %v", objs)
		}
		events, err := b.catalog.AuditTrail(ctx, "half", cases.AuditFilter{Types: []string{cases.EventCasePurged}})
		if err != nil || len(events) != 1 || len(events[0].Files) != 4 {
			t.Fatalf("purge records %+v (%v), want one listing 4 files", events, err)
		}
		if again, _ := b.purger.PurgeDue(ctx, clk.Now(), false); len(again) != 0 {
			t.Fatalf("purged twice: %+v", again)
		}
	})
}

func TestTwoInstancesPurgingAtOncePurgeEachCaseOnce(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		clk := testclock.New(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
		a, b := newInstance(newStore(), clk, "a"), newInstance(newStore(), clk, "b")
		for i := range 3 {
			id := fmt.Sprintf("twin-%d", i)
			if _, _, err := a.catalog.Open(ctx, id); err != nil {
				t.Fatal(err)
			}
			a.upload(t, id, "f.txt", []byte(id), true)
			if _, err := a.catalog.Close(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(30 * 24 * time.Hour)
		var wg sync.WaitGroup
		var purged atomic.Int32
		for _, inst := range []*instance{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reports, err := inst.purger.PurgeDue(ctx, clk.Now(), false)
				if err != nil {
					t.Error(err)
				}
				purged.Add(int32(len(reports)))
			}()
		}
		wg.Wait()
		if purged.Load() != 3 {
			t.Fatalf("%d purges reported for 3 cases", purged.Load())
		}
		for i := range 3 {
			events, _ := a.catalog.AuditTrail(ctx, fmt.Sprintf("twin-%d", i), cases.AuditFilter{Types: []string{cases.EventCasePurged}})
			if len(events) != 1 {
				t.Fatalf("case twin-%d has %d purge records", i, len(events))
			}
		}
	})
}

// claimBarrier holds every reader of a purge claim until two have read
// it, so that two instances surely see the same claim before either
// writes it.
type claimBarrier struct {
	storage.Store
	readers *atomic.Int32
	both    chan struct{}
}

func (b claimBarrier) Open(ctx context.Context, key string) (storage.Object, error) {
	obj, err := b.Store.Open(ctx, key)
	if strings.HasPrefix(key, "purges/") {
		if b.readers.Add(1) == 2 {
			close(b.both)
		}
		select {
		case <-b.both:
		case <-time.After(10 * time.Second): // a deadline, not a pause: the other never came
		}
	}
	return obj, err
}

func TestTwoInstancesTakingOverAStaleClaimAtOnceOnePurges(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		clk := testclock.New(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
		// An instance claims the purge and dies: every delete fails.
		dead := &failingStore{Store: newStore()}
		d := newInstance(dead, clk, "dead")
		if _, _, err := d.catalog.Open(ctx, "stale"); err != nil {
			t.Fatal(err)
		}
		d.upload(t, "stale", "f.txt", []byte("evidence"), true)
		if _, err := d.catalog.Close(ctx, "stale"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(30 * 24 * time.Hour)
		if _, err := d.purger.PurgeDue(ctx, clk.Now(), false); err == nil {
			t.Fatal("a purge whose deletes fail claims success")
		}
		clk.Advance(11 * time.Minute) // past the claim's lease

		var readers atomic.Int32
		both := make(chan struct{})
		var (
			wg     sync.WaitGroup
			purged atomic.Int32
		)
		for _, name := range []string{"b", "c"} {
			inst := newInstance(claimBarrier{newStore(), &readers, both}, clk, name)
			wg.Go(func() {
				reports, err := inst.purger.PurgeDue(ctx, clk.Now(), false)
				if err != nil {
					t.Errorf("instance %s: %v", name, err)
				}
				purged.Add(int32(len(reports)))
			})
		}
		wg.Wait()
		if readers.Load() != 2 {
			t.Fatalf("%d instances read the stale claim, want both", readers.Load())
		}
		if purged.Load() != 1 {
			t.Errorf("%d instances took the stale claim over and purged, want one", purged.Load())
		}
		events, err := d.catalog.AuditTrail(ctx, "stale", cases.AuditFilter{Types: []string{cases.EventCasePurged}})
		if err != nil || len(events) != 1 || len(events[0].Files) != 1 {
			t.Fatalf("purge records %+v (%v), want one listing the file", events, err)
		}
	})
}

// purgeRuns records what a Purger tells its metrics.
type purgeRuns struct{ told []string }

func (p *purgeRuns) PurgeRun(result string, objects int) {
	p.told = append(p.told, fmt.Sprintf("%s %d", result, objects))
}
