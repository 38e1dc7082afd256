package upload

import (
	"context"
	"sync"
)

// Locker gives one holder at a time the right to change an upload: write
// to it, finish, terminate or rename it. An Upload must be changed by one
// caller at a time; two writers would interleave parts and corrupt it.
// Both doors take the lock through the ingest (Ingest.Lock, Ingest.Await).
//
// The newest writer wins: a client whose link died reconnects and resumes
// long before the server notices the dead connection, and must not be
// refused until then. So Lock asks the holder to let go and waits until it
// has; the holder stops as after a dropped connection, keeping what it
// stored.
//
// The in-memory Locker, the default, serves one process. One shared by
// several instances must give the same guarantees across them: at most one
// holder per upload id, a release request that reaches the holder wherever
// it runs, and a lock that frees itself when its holder's process dies.
//
// A lock is named by the case and the upload id, though the id alone is
// unique: a lock kept in the store lives under the case's prefix, so that
// the case's purge takes it with everything else of the case.
type Locker interface {
	// Lock takes the lock of upload id of case caseID. While another holds it, Lock asks
	// the holder to let go (calls the release the holder passed) and waits
	// until it has, or fails with ctx's cause when ctx ends first.
	//
	// release is called, at most once and from another goroutine, when a
	// later Lock wants the lock: the holder should stop soon and unlock. A
	// nil release is never called: the holder is not interrupted and only
	// finishes sooner or later. unlock lets go; calling it again is
	// harmless.
	Lock(ctx context.Context, caseID, id string, release func()) (unlock func(), err error)
	// Await takes the lock of upload id of case caseID once its holder lets go by itself,
	// without asking it to; it fails with ctx's cause when ctx ends first.
	// Its holder is never asked to let go.
	Await(ctx context.Context, caseID, id string) (unlock func(), err error)
}

// Lock takes the lock of upload id through the ingest's Locker (see
// Locker.Lock): the holder, if any, is asked to let go.
func (in *Ingest) Lock(ctx context.Context, caseID, id string, release func()) (unlock func(), err error) {
	return in.locker.Lock(ctx, caseID, id, release)
}

// Await takes the lock of upload id through the ingest's Locker once its
// holder lets go by itself (see Locker.Await).
func (in *Ingest) Await(ctx context.Context, caseID, id string) (unlock func(), err error) {
	return in.locker.Await(ctx, caseID, id)
}

// leaseLocker is a Locker whose holds can run out while held (StoreLocker).
type leaseLocker interface {
	Holds(caseID, id string) bool
}

// holds reports whether this process may still write upload id: always
// with a Locker whose holds do not run out.
func (in *Ingest) holds(caseID, id string) bool {
	l, ok := in.locker.(leaseLocker)
	return !ok || l.Holds(caseID, id)
}

// memoryLocker is the Locker of one process.
type memoryLocker struct {
	mu   sync.Mutex
	held map[string]*heldLock
}

// heldLock is one holder's lock on an upload.
type heldLock struct {
	askOnce  sync.Once
	release  func() // nil: never asked
	released chan struct{}
}

// ask asks the holder to let go, once.
func (h *heldLock) ask() {
	if h.release != nil {
		h.askOnce.Do(h.release)
	}
}

func newMemoryLocker() *memoryLocker {
	return &memoryLocker{held: make(map[string]*heldLock)}
}

// Lock implements Locker.
func (l *memoryLocker) Lock(ctx context.Context, caseID, id string, release func()) (func(), error) {
	return l.take(ctx, caseID+"/"+id, release, true)
}

// Await implements Locker.
func (l *memoryLocker) Await(ctx context.Context, caseID, id string) (func(), error) {
	return l.take(ctx, caseID+"/"+id, nil, false)
}

func (l *memoryLocker) take(ctx context.Context, id string, release func(), preempt bool) (func(), error) {
	for {
		l.mu.Lock()
		cur := l.held[id]
		if cur == nil {
			h := &heldLock{release: release, released: make(chan struct{})}
			l.held[id] = h
			l.mu.Unlock()
			return l.unlocker(id, h), nil
		}
		l.mu.Unlock()
		if preempt {
			cur.ask()
		}
		select {
		case <-cur.released:
			// Another waiter may take it first: look again.
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// unlocker returns the function that lets go of h; calling it again does
// nothing.
func (l *memoryLocker) unlocker(id string, h *heldLock) func() {
	return sync.OnceFunc(func() {
		l.mu.Lock()
		if l.held[id] == h {
			delete(l.held, id)
		}
		l.mu.Unlock()
		close(h.released)
	})
}
