package upload_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/upload"
)

const testLease = 30 * time.Second

// realTicks schedules a locker's looks every few milliseconds.
func realTicks(time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(5 * time.Millisecond)
	return t.C, t.Stop
}

// noTicks never schedules a look: a holder paused, or a process stopped.
func noTicks(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }

// instance is a StoreLocker as another process would have one: its own
// store value over the shared data.
func instance(newStore func() storage.Store, name string, clock *testclock.Clock, ticker func(time.Duration) (<-chan time.Time, func())) *upload.StoreLocker {
	return upload.NewStoreLocker(upload.StoreLockConfig{
		Store: newStore(), Instance: name, Lease: testLease, Now: clock.Now, Ticker: ticker,
	})
}

func newClock() *testclock.Clock {
	return testclock.New(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ended() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// heldBy reports whether l finds upload id's lock held, without waiting.
func heldBy(l upload.Locker, id string) bool {
	unlock, err := l.Await(ended(), "case-1", id)
	if err != nil {
		return true
	}
	unlock()
	return false
}

func TestSharedLockIsHeldByOneInstanceAtATime(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		clock := newClock()
		a, b := instance(newStore, "a", clock, realTicks), instance(newStore, "b", clock, realTicks)
		unlock, err := a.Lock(timeout(t), "case-1", "u1", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !heldBy(b, "u1") {
			t.Fatal("another instance took a lock that is held")
		}
		if heldBy(b, "u2") {
			t.Fatal("another upload's lock is held too")
		}
		unlock()
		unlock()
		second, err := b.Await(timeout(t), "case-1", "u1")
		if err != nil {
			t.Fatalf("the lock let go is not taken by the other instance: %v", err)
		}
		if !heldBy(a, "u1") {
			t.Fatal("the first instance took the lock back while the other holds it")
		}
		second()
	})
}

// readLease is the stored lock record of upload id.
func readLease(t *testing.T, store storage.Store, id string) (expires time.Time) {
	t.Helper()
	obj, err := store.Open(context.Background(), cases.Prefix("case-1")+"uploads/"+id+".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	var rec struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.NewDecoder(obj).Decode(&rec); err != nil {
		t.Fatal(err)
	}
	return rec.ExpiresAt
}

func TestSharedLockIsKeptByRenewalAndLostWithout(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		clock := newClock()
		ticks := make(chan time.Time)
		manual := func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }
		a, b := instance(newStore, "a", clock, manual), instance(newStore, "b", clock, realTicks)
		unlock, err := a.Lock(timeout(t), "case-1", "u1", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		first := readLease(t, newStore(), "u1")

		clock.Advance(testLease / 2)
		ticks <- clock.Now()
		upload.WaitFor(t, func() bool { return readLease(t, newStore(), "u1").After(first) })
		clock.Advance(testLease/2 + time.Second) // past the first lease, within the renewed one
		if !heldBy(b, "u1") {
			t.Fatal("a lock renewed in time was taken by another instance")
		}

		clock.Advance(testLease) // no tick: the holder stopped renewing
		taken, err := b.Await(timeout(t), "case-1", "u1")
		if err != nil {
			t.Fatalf("a lock not renewed for its lease is not taken over: %v", err)
		}
		taken()
	})
}

func TestSharedLockReleaseRequestReachesTheHolderOnAnotherInstance(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		clock := newClock()
		a, b := instance(newStore, "a", clock, realTicks), instance(newStore, "b", clock, realTicks)
		asked := make(chan struct{})
		unlock, err := a.Lock(timeout(t), "case-1", "u1", func() { close(asked) })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Await(ended(), "case-1", "u1"); err == nil {
			t.Fatal("Await took a held lock")
		}
		got := make(chan error, 1)
		go func() {
			second, err := b.Lock(timeout(t), "case-1", "u1", nil)
			if err == nil {
				second()
			}
			got <- err
		}()
		select {
		case <-asked:
		case err := <-got:
			t.Fatalf("Lock on the other instance returned (%v) before the holder was asked", err)
		case <-time.After(10 * time.Second):
			t.Fatal("the holder was never asked to let go")
		}
		unlock()
		if err := <-got; err != nil {
			t.Fatalf("the newer writer did not get the lock the holder let go: %v", err)
		}
	})
}

// takenOver sets up a holder paused past its lease: instance "a", which
// never renews (noTicks), wrote "hello" of the 10 bytes of log.txt; its
// lease ran out and instance "b" took the upload over, wrote "world" and
// finished it. It returns a's upload as a still holds it, and b.
func takenOver(t *testing.T, newStore func() storage.Store, clock *testclock.Clock) (paused *upload.Upload, winner *upload.Ingest) {
	t.Helper()
	ctx := context.Background()
	a := fencedInstance(newStore(), newStore, clock, "a", noTicks)
	winner = fencedInstance(newStore(), newStore, clock, "b", realTicks)
	if _, _, err := cases.New(newStore(), clock.Now).Open(ctx, "case-1"); err != nil {
		t.Fatal(err)
	}
	up, err := a.Create(ctx, upload.NewFile{Case: "case-1", Name: "log.txt", Size: 10, Via: "test", UploadedBy: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	id := up.Info().ID
	pausedUnlock, err := a.Lock(timeout(t), "case-1", id, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pausedUnlock) // finds the lock taken over, and leaves it
	if _, err := up.Write(ctx, 0, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}

	clock.Advance(testLease + time.Second)
	unlock, err := winner.Lock(timeout(t), "case-1", id, nil)
	if err != nil {
		t.Fatalf("an expired lock was not taken over: %v", err)
	}
	t.Cleanup(unlock)
	taken, err := winner.Resume(ctx, "case-1", id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := taken.Write(ctx, 5, strings.NewReader("world")); err != nil {
		t.Fatal(err)
	}
	if _, err := taken.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	return up, winner
}

// checkWinnersFile fails t unless log.txt is listed with the bytes and the
// digest of "helloworld", the winner's.
func checkWinnersFile(t *testing.T, winner *upload.Ingest, newStore func() storage.Store, clock *testclock.Clock) {
	t.Helper()
	entry, err := cases.New(newStore(), clock.Now).File(context.Background(), "case-1", "log.txt")
	if err != nil {
		t.Fatalf("the file the winner finished: %v", err)
	}
	if got := readObject(t, winner, entry); string(got) != "helloworld" || entry.SHA256 != sha(got) {
		t.Fatalf("stored %q (catalog sha256 %s), want the winner's %q", got, entry.SHA256, "helloworld")
	}
}

// A holder paused past its lease (a stopped VM, a long GC) wakes up after
// another instance took the upload over: its next save fails, and the
// file is what the new writer stored.
func TestAPausedHolderTakenOverCannotSave(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		clock := newClock()
		up, winner := takenOver(t, newStore, clock)
		for what, write := range map[string]func() error{
			"its tail": func() error { _, err := up.Write(ctx, 5, strings.NewReader("XX")); return err },
			"its end":  func() error { _, err := up.Write(ctx, 5, strings.NewReader("XXXXX")); return err },
		} {
			if err := write(); !errors.Is(err, upload.ErrLockLost) {
				t.Errorf("the paused holder wrote %s: err = %v, want ErrLockLost", what, err)
			}
		}
		checkWinnersFile(t, winner, newStore, clock)
	})
}

// fencedInstance is an ingest with fenced states and a StoreLocker over
// store, as one of several instances on the shared data would have.
func fencedInstance(store storage.Store, newStore func() storage.Store, clock *testclock.Clock, name string, ticker func(time.Duration) (<-chan time.Time, func())) *upload.Ingest {
	return upload.New(upload.Config{Store: store, Catalog: cases.New(store, clock.Now), Now: clock.Now,
		PartSize: storage.MinPartSize, Locker: instance(newStore, name, clock, ticker), FenceStates: true})
}

// stalledStore holds back the first Put or CompleteMultipart of an
// upload's object, as a pause of its process would, until released.
type stalledStore struct {
	storage.Store
	once             sync.Once
	reached, release chan struct{}
}

func newStalledStore(s storage.Store) *stalledStore {
	return &stalledStore{Store: s, reached: make(chan struct{}), release: make(chan struct{})}
}

func (s *stalledStore) stall(key string) {
	if strings.Contains(key, "/objects/") {
		s.once.Do(func() {
			close(s.reached)
			<-s.release
		})
	}
}

func (s *stalledStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	s.stall(key)
	return s.Store.Put(ctx, key, r, size)
}

func (s *stalledStore) CompleteMultipart(ctx context.Context, key, uploadID string, parts []storage.Part) (storage.Info, error) {
	s.stall(key)
	return s.Store.CompleteMultipart(ctx, key, uploadID, parts)
}

// A holder paused just before the store makes its upload's object (the
// one Put of a small file, or the completion of a multipart upload) and
// taken over meanwhile: whatever it stores when it wakes up is what its
// state named before, which the new holder finishes with too. The object
// and the digest in the catalog agree, and the paused holder's commit
// fails.
func TestAPausedHolderStoresOnlyWhatItsStateNamed(t *testing.T) {
	for what, size := range map[string]int{"one put": 10, "multipart": storage.MinPartSize + 10} {
		t.Run(what, func(t *testing.T) {
			backends(t, func(t *testing.T, newStore func() storage.Store) {
				ctx := context.Background()
				clock := newClock()
				stalled := newStalledStore(newStore())
				paused := fencedInstance(stalled, newStore, clock, "a", noTicks)
				winner := fencedInstance(newStore(), newStore, clock, "b", realTicks)
				if _, _, err := cases.New(newStore(), clock.Now).Open(ctx, "case-1"); err != nil {
					t.Fatal(err)
				}
				mine, theirs := randomBytes(size, 1), randomBytes(size, 2)
				up, err := paused.Create(ctx, upload.NewFile{Case: "case-1", Name: "core", Size: int64(size), Via: "test", UploadedBy: "alice"})
				if err != nil {
					t.Fatal(err)
				}
				id := up.Info().ID
				pausedUnlock, err := paused.Lock(timeout(t), "case-1", id, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer pausedUnlock()
				done := make(chan error, 1)
				go func() {
					_, err := up.Write(ctx, 0, bytes.NewReader(mine))
					done <- err
				}()
				select {
				case <-stalled.reached:
				case err := <-done:
					t.Fatalf("the write ended before it stored the object: %v", err)
				case <-timeout(t).Done():
					t.Fatal("the write never reached the object")
				}

				clock.Advance(testLease + time.Second)
				unlock, err := winner.Lock(timeout(t), "case-1", id, nil)
				if err != nil {
					t.Fatalf("an expired lock was not taken over: %v", err)
				}
				defer unlock()
				taken, err := winner.Resume(ctx, "case-1", id)
				if err != nil {
					t.Fatal(err)
				}
				if off := taken.Info().Offset; off < int64(size) {
					if _, err := taken.Write(ctx, off, bytes.NewReader(theirs[off:])); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := taken.Finish(ctx); err != nil {
					t.Fatal(err)
				}

				close(stalled.release)
				if err := <-done; !errors.Is(err, upload.ErrLockLost) {
					t.Errorf("the paused holder's write ended with %v, want ErrLockLost", err)
				}
				entry, err := cases.New(newStore(), clock.Now).File(ctx, "case-1", "core")
				if err != nil {
					t.Fatal(err)
				}
				got := readObject(t, winner, entry)
				if sha(got) != entry.SHA256 || len(got) != size {
					t.Fatalf("the object (%d bytes, sha256 %s) is not the file the catalog lists (%d bytes, sha256 %s)", len(got), sha(got), entry.Size, entry.SHA256)
				}
			})
		})
	}
}

// A holder paused past its lease cannot terminate the upload another
// instance took over and finished: nothing of the file is deleted.
func TestAPausedHolderTakenOverCannotTerminate(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		clock := newClock()
		up, winner := takenOver(t, newStore, clock)
		if err := up.Terminate(context.Background()); !errors.Is(err, upload.ErrLockLost) {
			t.Errorf("the paused holder's terminate ended with %v, want ErrLockLost", err)
		}
		checkWinnersFile(t, winner, newStore, clock)
	})
}

func readObject(t *testing.T, in *upload.Ingest, f cases.File) []byte {
	t.Helper()
	obj, err := in.Open(context.Background(), "case-1", f)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A holder whose lease ran out by its own clock (its renewals stopped, as
// in a process paused past it) sends no more parts, although nobody took
// the upload over yet: the next taker would store its own parts there.
func TestAHolderPastItsLeaseSendsNoPart(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		clock := newClock()
		in := fencedInstance(newStore(), newStore, clock, "a", noTicks)
		if _, _, err := cases.New(newStore(), clock.Now).Open(ctx, "case-1"); err != nil {
			t.Fatal(err)
		}
		data := randomBytes(3*storage.MinPartSize, 3)
		up, err := in.Create(ctx, upload.NewFile{Case: "case-1", Name: "core", Size: int64(len(data)), Via: "test", UploadedBy: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		unlock, err := in.Lock(timeout(t), "case-1", up.Info().ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		if _, err := up.Write(ctx, 0, bytes.NewReader(data[:storage.MinPartSize])); err != nil {
			t.Fatalf("a write within the lease: %v", err)
		}
		clock.Advance(testLease * 2 / 3)
		n, err := up.Write(ctx, storage.MinPartSize, bytes.NewReader(data[storage.MinPartSize:2*storage.MinPartSize]))
		if !errors.Is(err, upload.ErrLockLost) || n != 0 {
			t.Fatalf("a write past two thirds of an unrenewed lease stored %d bytes, err %v; want none, ErrLockLost", n, err)
		}
		if off := up.Info().Offset; off != storage.MinPartSize {
			t.Fatalf("offset %d after the refused write, want %d", off, storage.MinPartSize)
		}
	})
}

// A holder whose lease runs out while its request waits for the client is
// interrupted (the door cancels the request when the lease is taken over):
// the write ends as taken over, not with the interruption's own error.
func TestAWriteInterruptedAfterItsLeaseRanOutEndsAsTakenOver(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		clock := newClock()
		in := fencedInstance(newStore(), newStore, clock, "a", noTicks)
		if _, _, err := cases.New(newStore(), clock.Now).Open(ctx, "case-1"); err != nil {
			t.Fatal(err)
		}
		up, err := in.Create(ctx, upload.NewFile{Case: "case-1", Name: "core", Size: 3 * storage.MinPartSize, Via: "test", UploadedBy: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		unlock, err := in.Lock(timeout(t), "case-1", up.Info().ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		errInterrupted := errors.New("interrupted by another request")
		wctx, interrupt := context.WithCancelCause(ctx)
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := up.Write(wctx, 0, pr)
			done <- err
		}()
		if _, err := pw.Write(randomBytes(1000, 4)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(testLease) // the lease runs out while the client is quiet
		interrupt(errInterrupted)
		_ = pw.CloseWithError(errInterrupted)
		if err := <-done; !errors.Is(err, upload.ErrLockLost) {
			t.Fatalf("a write interrupted after its lease ran out ended with %v, want ErrLockLost", err)
		}
	})
}
