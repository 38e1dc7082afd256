package auth

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestLimiter(t *testing.T) {
	type step struct {
		advance time.Duration
		source  string
		fails   int  // failures to record after advancing
		limited bool // what the last of them (or Limited, without any) must say
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a source's first ten failures in a minute are answered, the eleventh is limited", []step{
			{source: "10.0.0.1", fails: 9, limited: false},
			{advance: 50 * time.Second, source: "10.0.0.1", fails: 1, limited: false},
			{source: "10.0.0.1", fails: 1, limited: true},
		}},
		{"a limited source is answered again once the window has passed", []step{
			{source: "10.0.0.1", fails: 11, limited: true},
			{advance: 59 * time.Second, source: "10.0.0.1", limited: true},
			{advance: time.Second, source: "10.0.0.1", limited: false},
			{source: "10.0.0.1", fails: 1, limited: false},
		}},
		{"the window slides: the oldest failure leaving it frees one attempt", []step{
			{source: "10.0.0.1", fails: 1},
			{advance: 30 * time.Second, source: "10.0.0.1", fails: 10, limited: true},
			{advance: 30 * time.Second, source: "10.0.0.1", limited: false},
			{source: "10.0.0.1", fails: 1, limited: true},
		}},
		{"other sources are unaffected by a limited one", []step{
			{source: "10.0.0.1", fails: 11, limited: true},
			{source: "10.0.0.2", fails: 10, limited: false},
			{source: "10.0.0.1", limited: true},
		}},
		{"addresses of one IPv6 /64 share a budget", []step{
			{source: "2001:db8:1:2::1", fails: 6},
			{source: "2001:db8:1:2:ffff::9", fails: 5, limited: true},
			{source: "2001:db8:1:2::abcd", limited: true},
		}},
		{"another /64 has its own budget", []step{
			{source: "2001:db8:1:2::1", fails: 11, limited: true},
			{source: "2001:db8:1:3::1", fails: 10, limited: false},
		}},
		{"failures spread wider than the window never limit", []step{
			{source: "10.0.0.1", fails: 5},
			{advance: time.Minute, source: "10.0.0.1", fails: 5},
			{advance: time.Minute, source: "10.0.0.1", fails: 5},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			l := NewLimiter(10, time.Minute, clock.Now)
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				got := l.Limited(ip(s.source))
				for range s.fails {
					got = l.Fail(ip(s.source)).Limited
				}
				if got != s.limited {
					t.Fatalf("step %d: limited(%s) = %v, want %v", i, s.source, got, s.limited)
				}
			}
		})
	}
}

func TestLimiterRetryAfterIsWhenTheSourceIsWithinItsBudgetAgain(t *testing.T) {
	clock := newFakeClock()
	l := NewLimiter(3, time.Minute, clock.Now)
	l.Fail(ip("10.0.0.1"))
	clock.Advance(20 * time.Second)
	l.Fail(ip("10.0.0.1"))
	l.Fail(ip("10.0.0.1"))
	clock.Advance(10 * time.Second)
	a := l.Fail(ip("10.0.0.1"))
	if !a.Limited || a.RetryAfter != 30*time.Second {
		t.Fatalf("got %+v, want limited for 30s (the first failure leaves the window then)", a)
	}
	clock.Advance(a.RetryAfter)
	if l.Limited(ip("10.0.0.1")) {
		t.Fatal("still limited after Retry-After")
	}
}

func TestLimiterRecordsFailuresOnceOverBudgetOnlyOnceAWindowWithACount(t *testing.T) {
	clock := newFakeClock()
	l := NewLimiter(10, time.Minute, clock.Now)
	recorded := 0
	for range 11 {
		if l.Fail(ip("10.0.0.1")).Record {
			recorded++
		}
	}
	if recorded != 11 {
		t.Fatalf("%d of the first 11 failures recorded, want every one up to the one over the budget", recorded)
	}
	for range 500 { // a guesser keeps going within the minute
		clock.Advance(100 * time.Millisecond)
		if a := l.Fail(ip("10.0.0.1")); a.Record {
			t.Fatalf("a failure over the budget was recorded %v after the last record", clock.Now().Sub(time.Unix(0, 0)))
		}
	}
	clock.Advance(10 * time.Second) // a minute since the eleventh
	a := l.Fail(ip("10.0.0.1"))
	if !a.Record || !a.Limited || a.Unrecorded != 500 {
		t.Fatalf("got %+v, want a record a minute later counting the 500 unrecorded", a)
	}
	for range 20 {
		l.Fail(ip("10.0.0.1"))
	}
	clock.Advance(10 * time.Minute) // the guesser stops for a while
	if a := l.Fail(ip("10.0.0.1")); !a.Record || a.Limited || a.Unrecorded != 20 {
		t.Fatalf("got %+v after a quiet spell, want a record counting the 20 not recorded before it", a)
	}
}

func TestLimiterMemoryStaysBounded(t *testing.T) {
	t.Run("no more sources are tracked than the cap, however many fail", func(t *testing.T) {
		clock := newFakeClock()
		l := NewLimiter(10, time.Minute, clock.Now)
		l.maxSources = 100
		for i := range 1000 {
			l.Fail(ip(fmt.Sprintf("10.0.%d.%d", i/256, i%256)))
			if n := len(l.sources); n > l.maxSources {
				t.Fatalf("tracking %d sources, cap %d", n, l.maxSources)
			}
		}
	})

	t.Run("addresses of one /64 are one source", func(t *testing.T) {
		clock := newFakeClock()
		l := NewLimiter(10, time.Minute, clock.Now)
		for i := range 1000 {
			l.Fail(ip(fmt.Sprintf("2001:db8::%x", i)))
		}
		if n := len(l.sources); n != 1 {
			t.Fatalf("tracking %d sources, want 1", n)
		}
	})

	t.Run("sources whose failures left the window are forgotten", func(t *testing.T) {
		clock := newFakeClock()
		l := NewLimiter(10, time.Minute, clock.Now)
		for i := range 50 {
			l.Fail(ip(fmt.Sprintf("10.0.0.%d", i)))
		}
		clock.Advance(time.Minute)
		l.Fail(ip("10.9.9.9"))
		if n := len(l.sources); n != 1 {
			t.Fatalf("tracking %d sources, want only the new one", n)
		}
	})

	t.Run("a source keeps no more failure times than the limit and one", func(t *testing.T) {
		clock := newFakeClock()
		l := NewLimiter(10, time.Minute, clock.Now)
		for range 1000 {
			l.Fail(ip("10.0.0.1"))
		}
		if n := len(l.sources["10.0.0.1"].failures); n != 11 {
			t.Fatalf("kept %d failure times, want 11", n)
		}
	})

	t.Run("when full, the source idle longest makes room, not a busy one", func(t *testing.T) {
		clock := newFakeClock()
		l := NewLimiter(3, time.Minute, clock.Now)
		l.maxSources = 2
		l.Fail(ip("10.0.0.1"))
		clock.Advance(time.Second)
		for range 4 {
			l.Fail(ip("10.0.0.2"))
		}
		clock.Advance(time.Second)
		l.Fail(ip("10.0.0.3"))
		if !l.Limited(ip("10.0.0.2")) {
			t.Fatal("the busy source was forgotten to make room")
		}
		if _, ok := l.sources["10.0.0.1"]; ok {
			t.Fatal("the idle source is still tracked")
		}
	})
}

func TestLimiterConcurrentUse(t *testing.T) {
	t.Run("concurrent failures from one source are all counted", func(t *testing.T) {
		clock := newFakeClock()
		l := NewLimiter(100, time.Minute, clock.Now)
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				for range 10 {
					l.Limited(ip("10.0.0.1"))
					l.Fail(ip("10.0.0.1"))
				}
			})
		}
		wg.Wait()
		if !l.Fail(ip("10.0.0.1")).Limited {
			t.Fatal("the failure after 100 concurrent ones was not over the limit of 100")
		}
	})
}
