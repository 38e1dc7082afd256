// Package outage follows the object store's health from the outcomes of
// its operations, so that an outage is told once rather than by every
// request it fails: in the log when it starts and when it ends, and to a
// callback once it is over (casedrop records it in the audit trail then,
// since the trail lives in the store that was out).
package outage

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/casedrop/casedrop/storage"
)

// Outage is a time during which the store's operations failed with one
// fault.
type Outage struct {
	// Fault is storage.ErrUnavailable or storage.ErrNoSpace.
	Fault      error
	Start, End time.Time
	// Failures is how many operations failed with it.
	Failures int
	// First is the error of the operation that began it.
	First error
}

// String describes the outage in a line, for the audit trail.
func (o Outage) String() string {
	what := "storage unavailable"
	if errors.Is(o.Fault, storage.ErrNoSpace) {
		what = "storage full"
	}
	return fmt.Sprintf("%s from %s for %s, %d operations failed; the first: %v",
		what, o.Start.UTC().Format(time.RFC3339), o.End.Sub(o.Start).Round(time.Millisecond), o.Failures, o.First)
}

// Config configures a Tracker.
type Config struct {
	Now    func() time.Time
	Logger *slog.Logger
	// Ended, if not nil, is called with each outage once it is over, on a
	// goroutine of its own.
	Ended func(Outage)
}

// Tracker follows the store's health. Its zero value is not usable; call
// New. It is safe for concurrent use.
type Tracker struct {
	now   func() time.Time
	log   *slog.Logger
	ended func(Outage)

	mu  sync.Mutex
	cur *Outage // the outage under way, or nil
	// changed is when an outage last began or ended: an operation begun
	// before it tells of the time before, and changes nothing.
	changed time.Time
}

// New returns a Tracker that has seen no outage.
func New(cfg Config) *Tracker {
	t := &Tracker{now: cfg.Now, log: cfg.Logger, ended: cfg.Ended}
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	return t
}

// Current returns the fault of the outage under way (storage.ErrUnavailable
// or storage.ErrNoSpace), or nil.
func (t *Tracker) Current() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur == nil {
		return nil
	}
	return t.cur.Fault
}

// Observe takes the outcome of one store operation that began at start
// (it is a metrics.Watcher). A failure with storage.ErrUnavailable or
// storage.ErrNoSpace begins an outage, or counts in the one under way. Any
// answer from the store ends an outage of ErrUnavailable; only an
// operation whose success shows room for a part (room) ends one of
// ErrNoSpace. Other errors (a caller that gave up, a bad key) tell nothing
// of the store's health.
func (t *Tracker) Observe(op string, room bool, start time.Time, err error) {
	fault := storage.Fault(err)
	answered := err == nil || storage.Answered(err)
	if fault == nil && !answered {
		return
	}
	t.mu.Lock()
	now := t.now()
	var (
		ended *Outage
		began bool
		stale = start.Before(t.changed)
	)
	switch {
	case fault != nil && t.cur != nil && t.cur.Fault == fault:
		t.cur.Failures++
	case fault != nil && stale:
		// Failed for a reason that has changed since it began.
	case fault != nil:
		ended = t.end(now)
		t.cur, t.changed, began = &Outage{Fault: fault, Start: now, Failures: 1, First: err}, now, true
	case t.cur != nil && !stale && (t.cur.Fault == storage.ErrUnavailable || room):
		ended = t.end(now)
	}
	t.mu.Unlock()

	if ended != nil {
		t.log.Warn(endMessage(ended.Fault), "after", ended.End.Sub(ended.Start).Round(time.Millisecond).String(),
			"failed_operations", ended.Failures, "op", op)
		if t.ended != nil {
			go t.ended(*ended)
		}
	}
	switch {
	case began && fault == storage.ErrNoSpace:
		t.log.Error("storage full: uploads fail until space is freed", "op", op, "err", err)
	case began:
		t.log.Error("storage unavailable: requests that need it fail until it is back", "op", op, "err", err)
	case fault != nil:
		t.log.Debug("storage operation failed during an outage", "op", op, "err", err)
	}
}

// end ends the outage under way at now and returns it, or nil if there
// is none. t.mu is held.
func (t *Tracker) end(now time.Time) *Outage {
	o := t.cur
	if o == nil {
		return nil
	}
	o.End = now
	t.cur, t.changed = nil, now
	return o
}

func endMessage(fault error) string {
	if fault == storage.ErrNoSpace {
		return "storage has space again"
	}
	return "storage available again"
}
