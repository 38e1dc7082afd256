package auth

import (
	"sync"
	"time"
)

// defaultMaxSources bounds how many source addresses a Limiter tracks.
const defaultMaxSources = 10000

// Limiter limits failed login attempts per source address over a sliding
// window; both doors share it. It keeps at most max failure times for each
// of a bounded number of sources, so its memory stays bounded whatever the
// traffic. It is safe for concurrent use.
type Limiter struct {
	max        int
	window     time.Duration
	now        func() time.Time
	maxSources int

	mu        sync.Mutex
	failures  map[string][]time.Time // per source, failures inside the window, oldest first
	lastSweep time.Time
}

// NewLimiter returns a Limiter that refuses a source once it has failed
// maxFailures times within window (e.g. 10 per minute), with time read from
// now. A maxFailures below 1 counts as 1.
func NewLimiter(maxFailures int, window time.Duration, now func() time.Time) *Limiter {
	return &Limiter{
		max:        max(maxFailures, 1),
		window:     window,
		now:        now,
		maxSources: defaultMaxSources,
		failures:   make(map[string][]time.Time),
	}
}

// Allow reports whether source may try to log in now: false while it has
// max failures inside the window.
func (l *Limiter) Allow(source string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweepIfDue(now)
	return len(l.recent(source, now)) < l.max
}

// Fail records a failed login attempt by source.
func (l *Limiter) Fail(source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweepIfDue(now)
	f := l.recent(source, now)
	if f == nil && len(l.failures) >= l.maxSources {
		l.sweep(now)
		if len(l.failures) >= l.maxSources {
			l.evictStalest()
		}
	}
	if len(f) == l.max {
		f = append(f[:0], f[1:]...) // only the newest max failures matter
	}
	l.failures[source] = append(f, now)
}

// recent returns source's failures inside the window, forgetting older ones.
func (l *Limiter) recent(source string, now time.Time) []time.Time {
	f, ok := l.failures[source]
	if !ok {
		return nil
	}
	cut := now.Add(-l.window)
	i := 0
	for i < len(f) && !f[i].After(cut) {
		i++
	}
	switch {
	case i == len(f):
		delete(l.failures, source)
		return nil
	case i > 0:
		f = append(f[:0], f[i:]...)
		l.failures[source] = f
	}
	return f
}

// sweepIfDue forgets stale sources once per window, so that sources that
// never come back do not stay: the cost is amortised over the calls.
func (l *Limiter) sweepIfDue(now time.Time) {
	if now.Sub(l.lastSweep) >= l.window {
		l.sweep(now)
	}
}

func (l *Limiter) sweep(now time.Time) {
	for source := range l.failures {
		l.recent(source, now)
	}
	l.lastSweep = now
}

// evictStalest forgets the source whose latest failure is the oldest, to
// make room when every tracked source is still inside its window.
func (l *Limiter) evictStalest() {
	var (
		stalest string
		at      time.Time
		found   bool
	)
	for source, f := range l.failures {
		if last := f[len(f)-1]; !found || last.Before(at) {
			stalest, at, found = source, last, true
		}
	}
	delete(l.failures, stalest)
}
