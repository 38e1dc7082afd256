package upload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
)

// LockStore is the part of storage.Store the shared lock uses. Its
// conditional writes must hold (storage.ProbeConditional).
type LockStore interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error
	PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) error
	Open(ctx context.Context, key string) (storage.Object, error)
}

// StoreLockConfig configures a StoreLocker.
type StoreLockConfig struct {
	Store LockStore
	// Instance names this process in the lock records, for people reading
	// them.
	Instance string
	// Lease is how long a lock stays held after its last renewal (default
	// DefaultLease); a holder renews every third of it. Clocks of the
	// instances must agree to well within it.
	Lease time.Duration
	// Poll is how often a waiter looks at a held lock and a holder looks
	// for a release request (default DefaultPoll).
	Poll time.Duration
	// Now decides expiry (default time.Now).
	Now func() time.Time
	// Ticker schedules the looks: a channel ticking every d and its stop
	// (default a time.Ticker).
	Ticker func(d time.Duration) (<-chan time.Time, func())
	Logger *slog.Logger
}

// Defaults of StoreLockConfig. The lease is what a client waits, at
// worst, after the instance holding its upload died: 10 s is half of
// tusd's 20 s wait for a lock, so a retry finds the lock free.
const (
	DefaultLease = 10 * time.Second
	DefaultPoll  = time.Second
)

// StoreLocker is a Locker shared by the instances on one store: a lease
// record per upload, taken and renewed with conditional writes. Within the
// process an in-memory Locker stands in front of it, so that waiters here
// ask and wait without reading the store.
type StoreLocker struct {
	cfg   StoreLockConfig
	local *memoryLocker

	mu   sync.Mutex
	held map[string]*lease // by lock key, while held here
}

// NewStoreLocker returns a StoreLocker ready to use.
func NewStoreLocker(cfg StoreLockConfig) *StoreLocker {
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Ticker == nil {
		cfg.Ticker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Instance == "" {
		cfg.Instance = "casedrop"
	}
	return &StoreLocker{cfg: cfg, local: newMemoryLocker(), held: map[string]*lease{}}
}

func lockKey(caseID, id string) string { return cases.Prefix(caseID) + "uploads/" + id + ".lock" }

// releaseKey is where a waiter asks the holder of lockKey to let go.
func releaseKey(caseID, id string) string {
	return cases.Prefix(caseID) + "uploads/" + id + ".lock-release"
}

// leaseRecord is the stored lock. A released or expired one is free, and
// is taken by replacing it on its ETag: of two takers one wins.
type leaseRecord struct {
	Holder    string    `json:"holder"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	Released  bool      `json:"released,omitempty"`
	// Write is new at every write, so that no two writes store the same
	// bytes (an S3 ETag is the content's MD5).
	Write string `json:"write"`
}

// releaseRequest asks the holder whose token is For to let go.
type releaseRequest struct {
	For string `json:"for"`
	By  string `json:"by"`
}

// errHeld: the lock is someone else's for now.
var errHeld = errors.New("upload lock held")

// Lock implements Locker.
func (l *StoreLocker) Lock(ctx context.Context, caseID, id string, release func()) (func(), error) {
	return l.take(ctx, caseID, id, release, true)
}

// Await implements Locker.
func (l *StoreLocker) Await(ctx context.Context, caseID, id string) (func(), error) {
	return l.take(ctx, caseID, id, nil, false)
}

func (l *StoreLocker) take(ctx context.Context, caseID, id string, release func(), preempt bool) (func(), error) {
	h := &storeHold{release: release}
	var (
		localUnlock func()
		err         error
	)
	if preempt {
		localUnlock, err = l.local.Lock(ctx, caseID, id, h.ask)
	} else {
		localUnlock, err = l.local.Await(ctx, caseID, id)
	}
	if err != nil {
		return nil, err
	}
	ls, err := l.acquire(ctx, caseID, id, preempt)
	if err != nil {
		localUnlock()
		return nil, err
	}
	l.track(ls)
	stop := l.keep(ls, h)
	h.acquired()
	return sync.OnceFunc(func() {
		stop()
		l.untrack(ls)
		l.letGo(ls)
		localUnlock()
	}), nil
}

func (l *StoreLocker) track(ls *lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held[ls.key] = ls
}

func (l *StoreLocker) untrack(ls *lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[ls.key] == ls {
		delete(l.held, ls.key)
	}
}

// Holds reports whether this process may still write upload id of case
// caseID: false once its lease on it was found taken over, or has less
// than a third of it left by this process's clock, as after a pause (a
// stopped process, a suspended VM) or renewals the store did not take.
// A writer asks before it sends a part: a holder that wakes up past its
// lease stops before it stores bytes where the new holder stores its own.
// An upload this process holds no lease on is not its to judge: true.
func (l *StoreLocker) Holds(caseID, id string) bool {
	l.mu.Lock()
	ls := l.held[lockKey(caseID, id)]
	l.mu.Unlock()
	if ls == nil {
		return true
	}
	if ls.lost.Load() {
		return false
	}
	return l.cfg.Now().Before(time.Unix(0, ls.validUntil.Load()))
}

// storeHold is one holder's release, which a newer writer may ask for
// before the lease is taken: it is then called once it is.
type storeHold struct {
	mu      sync.Mutex
	once    sync.Once
	held    bool
	asked   bool
	release func()
}

func (h *storeHold) ask() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked = true
	if h.held && h.release != nil {
		go h.once.Do(h.release)
	}
}

func (h *storeHold) acquired() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = true
	if h.asked && h.release != nil {
		go h.once.Do(h.release)
	}
}

// lease is a lock held in the store.
type lease struct {
	key, requestKey string
	rec             leaseRecord
	etag            string
	// validUntil (Unix ns) is when this holder stops writing unless the
	// lease was renewed: a third of it before it ends. lost: found taken
	// over. Read by writers (Holds) while the keeper renews.
	validUntil atomic.Int64
	lost       atomic.Bool
}

// held records rec, just written, as the lease's.
func (ls *lease) held(rec leaseRecord, etag string, lease time.Duration) {
	ls.rec, ls.etag = rec, etag
	ls.validUntil.Store(rec.ExpiresAt.Add(-lease / 3).UnixNano())
}

// acquire takes the stored lock, asking its holder to let go if preempt,
// and waiting until it is free or ctx ends.
func (l *StoreLocker) acquire(ctx context.Context, caseID, id string, preempt bool) (*lease, error) {
	ls := &lease{key: lockKey(caseID, id), requestKey: releaseKey(caseID, id)}
	var (
		tick  <-chan time.Time
		asked string
	)
	// ctx bounds the wait, not a look: a lock free at once is taken also
	// with a ctx that has ended, as the in-memory Locker does.
	look := func() error {
		opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.Lease/3)
		defer cancel()
		cur, err := l.tryTake(opCtx, ls)
		if !errors.Is(err, errHeld) || !preempt || cur.Token == "" || cur.Token == asked {
			return err
		}
		if err := l.requestRelease(opCtx, ls, cur.Token); err != nil {
			return err
		}
		asked = cur.Token
		return errHeld
	}
	for {
		err := look()
		if err == nil {
			return ls, nil
		}
		if !errors.Is(err, errHeld) {
			return nil, err
		}
		if tick == nil {
			c, stop := l.cfg.Ticker(l.cfg.Poll)
			defer stop()
			tick = c
		}
		select {
		case <-tick:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// tryTake takes the lock if it is free: missing, released or expired. It
// fails with errHeld, and the record it found, when it is not.
func (l *StoreLocker) tryTake(ctx context.Context, ls *lease) (leaseRecord, error) {
	cur, etag, err := l.read(ctx, ls.key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return cur, err
	}
	if err == nil && !cur.Released && l.cfg.Now().Before(cur.ExpiresAt) {
		return cur, errHeld
	}
	rec := leaseRecord{Holder: l.cfg.Instance, Token: newID(), ExpiresAt: l.cfg.Now().Add(l.cfg.Lease)}
	etag, err = l.write(ctx, ls.key, etag, &rec)
	if err != nil {
		return cur, err
	}
	ls.held(rec, etag, l.cfg.Lease)
	return cur, nil
}

// read reads the lock record under key and its ETag.
func (l *StoreLocker) read(ctx context.Context, key string) (leaseRecord, string, error) {
	var rec leaseRecord
	obj, err := l.cfg.Store.Open(ctx, key)
	if err != nil {
		return rec, "", err
	}
	defer obj.Close()
	if err := json.NewDecoder(io.LimitReader(obj, 1<<16)).Decode(&rec); err != nil {
		return rec, "", fmt.Errorf("upload lock %s: %w", key, err)
	}
	return rec, obj.Info().ETag, nil
}

// write stores rec under key: where none is ("" etag) or over the record
// whose ETag is etag. It returns the new record's ETag, read back since the
// conditional writes do not tell it. A lost race is errHeld.
func (l *StoreLocker) write(ctx context.Context, key, etag string, rec *leaseRecord) (string, error) {
	rec.Write = newID()
	data, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	if etag == "" {
		err = l.cfg.Store.PutIfAbsent(ctx, key, bytes.NewReader(data), int64(len(data)))
	} else {
		err = l.cfg.Store.PutIfMatch(ctx, key, etag, bytes.NewReader(data), int64(len(data)))
	}
	if errors.Is(err, storage.ErrExists) || errors.Is(err, storage.ErrChanged) {
		return "", errHeld
	}
	if err != nil {
		return "", err
	}
	back, etag, err := l.read(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return "", errHeld
	}
	if err != nil {
		return "", err
	}
	if back.Write != rec.Write {
		return "", errHeld
	}
	return etag, nil
}

func (l *StoreLocker) requestRelease(ctx context.Context, ls *lease, holder string) error {
	data, err := json.Marshal(releaseRequest{For: holder, By: l.cfg.Instance})
	if err != nil {
		return err
	}
	return l.cfg.Store.Put(ctx, ls.requestKey, bytes.NewReader(data), int64(len(data)))
}

// keep renews the lease every third of it and looks for release requests
// at every tick, until stop. A lease found taken over asks the holder to
// let go: its next save of the upload's state fails anyway (ErrLockLost).
func (l *StoreLocker) keep(ls *lease, h *storeHold) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	tick, stopTick := l.cfg.Ticker(l.cfg.Poll)
	renewAt := ls.rec.ExpiresAt.Add(-l.cfg.Lease * 2 / 3)
	go func() {
		defer close(stopped)
		defer stopTick()
		for {
			select {
			case <-done:
				return
			case <-tick:
			}
			ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Lease/3)
			if l.releaseRequested(ctx, ls) {
				h.ask()
			}
			if !l.cfg.Now().Before(renewAt) {
				err := l.renew(ctx, ls)
				switch {
				case errors.Is(err, errHeld):
					ls.lost.Store(true)
					l.cfg.Logger.Warn("upload lock taken over by another instance", "key", ls.key)
					h.ask()
					cancel()
					return
				case err != nil:
					l.cfg.Logger.Warn("upload lock not renewed; trying again", "key", ls.key, "err", err)
				default:
					renewAt = ls.rec.ExpiresAt.Add(-l.cfg.Lease * 2 / 3)
				}
			}
			cancel()
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

func (l *StoreLocker) renew(ctx context.Context, ls *lease) error {
	rec := ls.rec
	rec.ExpiresAt = l.cfg.Now().Add(l.cfg.Lease)
	etag, err := l.write(ctx, ls.key, ls.etag, &rec)
	if err != nil {
		return err
	}
	ls.held(rec, etag, l.cfg.Lease)
	return nil
}

// releaseRequested reports whether a waiter asked this lease's holder to
// let go. A request for an earlier holder is ignored.
func (l *StoreLocker) releaseRequested(ctx context.Context, ls *lease) bool {
	obj, err := l.cfg.Store.Open(ctx, ls.requestKey)
	if err != nil {
		return false
	}
	defer obj.Close()
	var req releaseRequest
	if err := json.NewDecoder(io.LimitReader(obj, 1<<16)).Decode(&req); err != nil {
		return false
	}
	return req.For == ls.rec.Token
}

// letGo marks the lease released, if it is still this holder's: a record
// taken over meanwhile is the new holder's and stays.
func (l *StoreLocker) letGo(ls *lease) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Lease)
	defer cancel()
	rec := ls.rec
	rec.Released = true
	if _, err := l.write(ctx, ls.key, ls.etag, &rec); err != nil && !errors.Is(err, errHeld) {
		// The lease runs out by itself.
		l.cfg.Logger.Warn("upload lock not released; it frees itself when its lease ends", "key", ls.key, "err", err)
	}
}
