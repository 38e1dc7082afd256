package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	type step struct {
		advance time.Duration
		source  string
		fails   int  // failures to record after advancing
		allow   bool // what Allow(source) must then say
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a source is allowed until its tenth failure in a minute", []step{
			{source: "10.0.0.1", allow: true},
			{source: "10.0.0.1", fails: 9, allow: true},
			{advance: 50 * time.Second, source: "10.0.0.1", fails: 1, allow: false},
		}},
		{"a refused source is allowed again once the window has passed", []step{
			{source: "10.0.0.1", fails: 10, allow: false},
			{advance: 59 * time.Second, source: "10.0.0.1", allow: false},
			{advance: time.Second, source: "10.0.0.1", allow: true},
		}},
		{"the window slides: the oldest failure leaving it frees one attempt", []step{
			{source: "10.0.0.1", fails: 1, allow: true},
			{advance: 30 * time.Second, source: "10.0.0.1", fails: 9, allow: false},
			{advance: 30 * time.Second, source: "10.0.0.1", allow: true},
			{source: "10.0.0.1", fails: 1, allow: false},
		}},
		{"other sources are unaffected by a refused one", []step{
			{source: "10.0.0.1", fails: 10, allow: false},
			{source: "10.0.0.2", allow: true},
			{source: "10.0.0.2", fails: 9, allow: true},
			{source: "10.0.0.1", allow: false},
		}},
		{"failures spread wider than the window never refuse", []step{
			{source: "10.0.0.1", fails: 5, allow: true},
			{advance: time.Minute, source: "10.0.0.1", fails: 5, allow: true},
			{advance: time.Minute, source: "10.0.0.1", fails: 5, allow: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			l := NewLimiter(10, time.Minute, clock.Now)
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				for range s.fails {
					l.Fail(s.source)
				}
				if got := l.Allow(s.source); got != s.allow {
					t.Fatalf("step %d: Allow(%s) = %v, want %v", i, s.source, got, s.allow)
				}
			}
		})
	}
}

func TestLimiterMemoryStaysBounded(t *testing.T) {
	t.Run("no more sources are tracked than the cap, however many fail", func(t *testing.T) {
		clock := newFakeClock()
		l := NewLimiter(10, time.Minute, clock.Now)
		l.maxSources = 100
		for i := range 1000 {
			l.Fail(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
			if n := len(l.failures); n > l.maxSources {
				t.Fatalf("tracking %d sources, cap %d", n, l.maxSources)
			}
		}
	})

	t.Run("sources whose failures left the window are forgotten", func(t *testing.T) {
		clock := newFakeClock()
		l := NewLimiter(10, time.Minute, clock.Now)
		for i := range 50 {
			l.Fail(fmt.Sprintf("10.0.0.%d", i))
		}
		clock.Advance(time.Minute)
		l.Allow("10.9.9.9")
		if n := len(l.failures); n != 0 {
			t.Fatalf("still tracking %d stale sources", n)
		}
	})

	t.Run("a source keeps no more failure times than the limit", func(t *testing.T) {
		clock := newFakeClock()
		l := NewLimiter(10, time.Minute, clock.Now)
		for range 1000 {
			l.Fail("10.0.0.1")
		}
		if n := len(l.failures["10.0.0.1"]); n != 10 {
			t.Fatalf("kept %d failure times, want 10", n)
		}
	})

	t.Run("when full, the source idle longest makes room, not a busy one", func(t *testing.T) {
		clock := newFakeClock()
		l := NewLimiter(3, time.Minute, clock.Now)
		l.maxSources = 2
		l.Fail("idle")
		clock.Advance(time.Second)
		for range 3 {
			l.Fail("busy")
		}
		clock.Advance(time.Second)
		l.Fail("new")
		if l.Allow("busy") {
			t.Fatal("the busy source was forgotten to make room")
		}
		if _, ok := l.failures["idle"]; ok {
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
					l.Allow("10.0.0.1")
					l.Fail("10.0.0.1")
				}
			})
		}
		wg.Wait()
		if l.Allow("10.0.0.1") {
			t.Fatal("100 concurrent failures did not reach the limit of 100")
		}
	})
}
