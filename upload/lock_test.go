package upload

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
)

// testDeadline bounds every wait of these tests; none should come near it.
const testDeadline = 10 * time.Second

func within(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(testDeadline):
		t.Fatalf("timed out waiting until %s", what)
	}
}

// bounded is a context that ends at the test's deadline, so that a lock
// never given fails the test instead of hanging it.
func bounded(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return ctx
}

// cancelled is a context that has already ended: a lock taken with it is
// taken only if it is free at once.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// held reports whether upload id's lock is held, without waiting.
func held(l Locker, id string) bool {
	unlock, err := l.Await(cancelled(), "c", id)
	if err != nil {
		return true
	}
	unlock()
	return false
}

// lockOrNil is what a goroutine of a test hands back: the unlock of a
// lock taken, or nil.
func lockOrNil(unlock func(), err error) func() {
	if err != nil {
		return nil
	}
	return unlock
}

// unlockGot lets go of a lock a goroutine took, failing if it took none.
func unlockGot(t *testing.T, unlock func()) {
	t.Helper()
	if unlock == nil {
		t.Fatal("a waiting writer gave up without the lock")
	}
	unlock()
}

func TestLockTheNewestWriterWins(t *testing.T) {
	l := newMemoryLocker()
	var first func()
	first, err := l.Lock(bounded(t), "c", "u", func() { first() })
	if err != nil {
		t.Fatal(err)
	}
	second, err := l.Lock(bounded(t), "c", "u", nil)
	if err != nil {
		t.Fatalf("a newer writer did not get the lock its holder gave up: %v", err)
	}
	defer second()
	if !held(l, "u") {
		t.Fatal("the newer writer's lock is not held")
	}
}

func TestLockAsksTheHolderAndWaitsUntilItLetsGo(t *testing.T) {
	l := newMemoryLocker()
	asked := make(chan struct{})
	var asks atomic.Int32
	first, err := l.Lock(bounded(t), "c", "u", func() {
		if asks.Add(1) == 1 {
			close(asked)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 2)
	ctx := bounded(t)
	for range 2 {
		go func() { got <- lockOrNil(l.Lock(ctx, "c", "u", nil)) }()
	}
	within(t, asked, "the holder is asked to let go")
	select {
	case <-got:
		t.Fatal("a waiting writer got the lock while its holder still held it")
	default:
	}
	first()
	var second func()
	select {
	case second = <-got:
	case <-time.After(testDeadline):
		t.Fatal("the holder let go, and no waiting writer got the lock")
	}
	unlockGot(t, second)
	select {
	case third := <-got:
		unlockGot(t, third)
	case <-time.After(testDeadline):
		t.Fatal("the second waiting writer never got the lock")
	}
	if n := asks.Load(); n != 1 {
		t.Errorf("the holder was asked %d times to let go, want once", n)
	}
}

func TestAwaitDoesNotAskTheHolder(t *testing.T) {
	l := newMemoryLocker()
	var asked atomic.Bool
	first, err := l.Lock(bounded(t), "c", "u", func() { asked.Store(true) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Await(cancelled(), "c", "u"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Await on a held lock with an ended context: %v, want context.Canceled", err)
	}
	if asked.Load() {
		t.Fatal("Await asked the holder to let go")
	}
	got := make(chan func(), 1)
	ctx := bounded(t)
	go func() { got <- lockOrNil(l.Await(ctx, "c", "u")) }()
	first()
	select {
	case unlock := <-got:
		unlockGot(t, unlock)
	case <-time.After(testDeadline):
		t.Fatal("Await did not get the lock its holder let go of")
	}
	if asked.Load() {
		t.Fatal("Await asked the holder to let go")
	}
}

func TestLockOfAHolderWithoutReleaseWaitsForItsEnd(t *testing.T) {
	l := newMemoryLocker()
	first, err := l.Await(bounded(t), "c", "u")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lock(cancelled(), "c", "u", nil); err == nil {
		t.Fatal("Lock took a lock that is held")
	}
	first()
	second, err := l.Lock(bounded(t), "c", "u", nil)
	if err != nil {
		t.Fatal(err)
	}
	second()
}

func TestUnlockTwiceIsHarmless(t *testing.T) {
	l := newMemoryLocker()
	first, err := l.Lock(bounded(t), "c", "u", nil)
	if err != nil {
		t.Fatal(err)
	}
	first()
	first()
	second, err := l.Lock(cancelled(), "c", "u", nil)
	if err != nil {
		t.Fatalf("the lock is held after its holder let go: %v", err)
	}
	first() // a late second unlock must not free another holder's lock
	if !held(l, "u") {
		t.Fatal("an earlier holder's second unlock freed the lock of the next")
	}
	second()
	if held(l, "u") {
		t.Fatal("the lock stays held after its holder let go")
	}
}

func TestLockGivesUpWhenItsContextEnds(t *testing.T) {
	l := newMemoryLocker()
	asked := make(chan struct{})
	first, err := l.Lock(bounded(t), "c", "u", func() { close(asked) })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bounded(t))
	failed := make(chan error, 1)
	go func() {
		unlock, err := l.Lock(ctx, "c", "u", nil)
		if err == nil {
			unlock()
		}
		failed <- err
	}()
	within(t, asked, "the waiting writer asks the holder")
	cancel()
	select {
	case err := <-failed:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Lock after its context ended: %v, want context.Canceled", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("Lock kept waiting after its context ended")
	}
	if !held(l, "u") {
		t.Fatal("the holder lost its lock to a writer that gave up")
	}
	first()
	if held(l, "u") {
		t.Fatal("the lock stays held after its holder let go")
	}
}

func TestLocksOfDifferentUploadsAreIndependent(t *testing.T) {
	l := newMemoryLocker()
	a, err := l.Lock(cancelled(), "c", "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a()
	b, err := l.Lock(cancelled(), "c", "b", nil)
	if err != nil {
		t.Fatalf("the lock of one upload held another's: %v", err)
	}
	b()
}

// The tus door holds the lock the ingest gives the SFTP door: a tus
// request on an upload asks its SFTP holder to let go, and gives up with
// tusd's ErrLockTimeout when its wait ends.
func TestTusRequestsShareTheIngestLock(t *testing.T) {
	in := New(Config{})
	tus := tusLocker{&tusStore{in: in}}
	asked := make(chan struct{})
	unlock, err := in.Lock(bounded(t), "c", "u", func() { close(asked) })
	if err != nil {
		t.Fatal(err)
	}
	lock, err := tus.NewLock("u")
	if err != nil {
		t.Fatal(err)
	}
	if err := lock.Lock(WithUploader(cancelled(), Uploader{Case: "c"}), func() {}); !errors.Is(err, handler.ErrLockTimeout) {
		t.Fatalf("tus lock on a held upload with an ended context: %v, want ErrLockTimeout", err)
	}
	within(t, asked, "the tus request asks the holder to let go")
	unlock()
	if err := lock.Lock(WithUploader(bounded(t), Uploader{Case: "c"}), func() {}); err != nil {
		t.Fatal(err)
	}
	if !held(in.locker, "u") {
		t.Fatal("the tus request's lock is not the ingest's")
	}
	_ = lock.Unlock()
	_ = lock.Unlock()
	if held(in.locker, "u") {
		t.Fatal("the tus request's unlock did not let go")
	}
}
