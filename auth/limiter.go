package auth

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/casedrop/casedrop/clientaddr"
)

// defaultMaxSources bounds how many sources a Limiter tracks.
const defaultMaxSources = 10000

// Limiter slows down failed logins per source (an IPv4 address, an IPv6
// /64; see clientaddr.Source) over a sliding window; both doors share it.
// It is asked only after a credential has been checked and refused, so it
// never stands between a valid credential and the server, whoever else
// shares its address. It keeps at most max+1 failure times for each of a
// bounded number of sources, so its memory stays bounded whatever the
// traffic. It is safe for concurrent use.
type Limiter struct {
	max        int
	window     time.Duration
	now        func() time.Time
	maxSources int

	mu        sync.Mutex
	sources   map[string]*source
	lastSweep time.Time
}

// source is what a Limiter remembers of one source.
type source struct {
	failures   []time.Time // inside the window, oldest first, at most max+1
	last       time.Time   // the latest failure
	recorded   time.Time   // when the source's last recorded failure was
	unrecorded int         // failures since then that were not recorded
}

// Attempt is what Fail says about a failed login.
type Attempt struct {
	// Limited: the source has failed more than its budget inside the
	// window; answer "too many attempts" rather than why this one failed.
	Limited bool
	// RetryAfter is how long until the source is within its budget again
	// (when Limited).
	RetryAfter time.Duration
	// Record says whether this failure goes into the audit trail: each
	// one within the budget does, and the one that exceeds it; after that
	// one a window, carrying the count of those not recorded, so that a
	// guesser cannot flood the trail.
	Record bool
	// Unrecorded is how many of the source's failures since its last
	// recorded one were not recorded (when Record).
	Unrecorded int
}

// NewLimiter returns a Limiter that limits a source once it has failed
// more than maxFailures times within window (e.g. 10 per minute), with time
// read from now. A maxFailures below 1 counts as 1.
func NewLimiter(maxFailures int, window time.Duration, now func() time.Time) *Limiter {
	return &Limiter{
		max:        max(maxFailures, 1),
		window:     window,
		now:        now,
		maxSources: defaultMaxSources,
		sources:    make(map[string]*source),
	}
}

// Fail records a failed login from addr and says how to answer it.
func (l *Limiter) Fail(addr netip.Addr) Attempt {
	key := clientaddr.Source(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweepIfDue(now)
	s := l.recent(key, now)
	if s == nil {
		l.makeRoom(now)
		s = &source{}
		l.sources[key] = s
	}
	wasOver := len(s.failures) > l.max
	if len(s.failures) == l.max+1 {
		s.failures = append(s.failures[:0], s.failures[1:]...) // only the newest max+1 matter
	}
	s.failures = append(s.failures, now)
	s.last = now
	var a Attempt
	if n := len(s.failures); n > l.max {
		a.Limited = true
		a.RetryAfter = s.failures[n-l.max-1].Add(l.window).Sub(now)
	}
	if !wasOver || now.Sub(s.recorded) >= l.window {
		a.Record, a.Unrecorded = true, s.unrecorded
		s.recorded, s.unrecorded = now, 0
	} else {
		s.unrecorded++
	}
	return a
}

// Limited reports whether addr's source is over its budget now.
func (l *Limiter) Limited(addr netip.Addr) bool {
	key := clientaddr.Source(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.recent(key, l.now())
	return s != nil && len(s.failures) > l.max
}

// keepUnrecorded is how many windows a source with failures not yet
// recorded is remembered after its last failure, so that its next record
// can count them.
const keepUnrecorded = 60

// recent returns key's source with only its failures inside the window,
// forgetting it when none is left (and no count of unrecorded failures is
// still due).
func (l *Limiter) recent(key string, now time.Time) *source {
	s, ok := l.sources[key]
	if !ok {
		return nil
	}
	cut := now.Add(-l.window)
	i := 0
	for i < len(s.failures) && !s.failures[i].After(cut) {
		i++
	}
	switch {
	case i == len(s.failures):
		s.failures = s.failures[:0]
		if s.unrecorded == 0 || now.Sub(s.last) >= keepUnrecorded*l.window {
			delete(l.sources, key)
			return nil
		}
	case i > 0:
		s.failures = append(s.failures[:0], s.failures[i:]...)
	}
	return s
}

// makeRoom forgets stale sources, or else the stalest one, when a new
// source would exceed the bound.
func (l *Limiter) makeRoom(now time.Time) {
	if len(l.sources) < l.maxSources {
		return
	}
	l.sweep(now)
	if len(l.sources) >= l.maxSources {
		l.evictStalest()
	}
}

// sweepIfDue forgets stale sources once per window, so that sources that
// never come back do not stay: the cost is amortised over the calls.
func (l *Limiter) sweepIfDue(now time.Time) {
	if now.Sub(l.lastSweep) >= l.window {
		l.sweep(now)
	}
}

func (l *Limiter) sweep(now time.Time) {
	for key := range l.sources {
		l.recent(key, now)
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
	for key, s := range l.sources {
		if !found || s.last.Before(at) {
			stalest, at, found = key, s.last, true
		}
	}
	delete(l.sources, stalest)
}

// Detail is what, the reason a login was refused, with what the audit
// trail must know about the attempt: that its source was over its budget,
// and how many failures were not recorded one by one before it.
func (a Attempt) Detail(what string) string {
	if a.Limited {
		what += "; source over its failed-login budget (failures past it are recorded once a minute, with a count)"
	}
	if a.Unrecorded > 0 {
		what += fmt.Sprintf("; %d more failures from this source since the last record", a.Unrecorded)
	}
	return what
}
