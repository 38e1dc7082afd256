package upload

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
)

func TestBufferPoolNeverHandsOutMoreThanItsLimit(t *testing.T) {
	p := newBufferPool(3<<20, 4)
	a := p.tryGet(1 << 20)
	b := p.tryGet(1 << 20)
	c := p.tryGet(1 << 20)
	if a == nil || b == nil || c == nil {
		t.Fatal("three 1 MiB buffers under a 3 MiB limit were refused")
	}
	if d := p.tryGet(1 << 20); d != nil {
		t.Fatal("a fourth 1 MiB buffer was handed out under a 3 MiB limit")
	}
	if inUse, _ := p.stats(); inUse != 3<<20 {
		t.Fatalf("in use %d, want %d", inUse, 3<<20)
	}
	// An idle buffer of another size makes room for a new size.
	p.put(a)
	big := p.tryGet(1 << 20)
	if big == nil {
		t.Fatal("a returned buffer was not reused")
	}
	p.put(big)
	p.put(b)
	two := p.tryGet(2 << 20)
	if two == nil {
		t.Fatal("idle 1 MiB buffers were not dropped to make room for a 2 MiB one")
	}
	if p.used > p.limit {
		t.Fatalf("live buffers %d over the limit %d", p.used, p.limit)
	}
	p.put(two)
	p.put(c)
}

func TestBufferPoolServesWaitersInArrivalOrder(t *testing.T) {
	p := newBufferPool(2<<20, 4)
	ctx := context.Background()
	held, err := p.get(ctx, 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 2)
	started := make(chan struct{}, 2)
	for _, name := range []string{"first", "second"} {
		go func() {
			started <- struct{}{}
			b, err := p.get(ctx, 2<<20)
			if err != nil {
				t.Error(err)
				return
			}
			order <- name
			p.put(b)
		}()
		<-started
		waitFor(t, func() bool { _, n := p.stats(); return n >= 1 && name == "first" || n >= 2 })
	}
	if b := p.tryGet(1 << 20); b != nil {
		t.Fatal("tryGet passed uploads that wait")
	}
	p.put(held)
	if got := <-order; got != "first" {
		t.Fatalf("%s got the buffer first, want first", got)
	}
	if got := <-order; got != "second" {
		t.Fatalf("then %s, want second", got)
	}
}

func TestBufferPoolWaitEndsWithTheContext(t *testing.T) {
	p := newBufferPool(1<<20, 4)
	held := p.tryGet(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := p.get(ctx, 1<<20)
		done <- err
	}()
	waitFor(t, func() bool { _, n := p.stats(); return n == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("get after cancel: %v", err)
	}
	if _, n := p.stats(); n != 0 {
		t.Fatalf("%d waiters left after the cancel", n)
	}
	p.put(held)
	if b := p.tryGet(1 << 20); b == nil {
		t.Fatal("the buffer was lost with the cancelled waiter")
	}
}

func TestPartSizesStayWithinS3LimitsAndTheLargestPart(t *testing.T) {
	for _, ps := range []int64{5 << 20, 16 << 20, 64 << 20} {
		t.Run(fmt.Sprintf("with %d MiB parts", ps>>20), func(t *testing.T) { checkPartSizes(t, New(Config{PartSize: ps})) })
	}
}

func checkPartSizes(t *testing.T, in *Ingest) {
	largest := in.LargestPart()
	if largest > 128<<20 {
		t.Fatalf("largest part %d MiB for a 1 TiB limit; want at most 128 MiB", largest>>20)
	}
	for _, size := range []int64{1, 16 << 20, 160 << 30, 500 << 30, in.MaxFileSize()} {
		ps := in.nextPartSize(size, 0)
		if ps > largest {
			t.Errorf("part of %d MiB for %d bytes is over the largest part %d MiB", ps>>20, size, largest>>20)
		}
		if (size+ps-1)/ps > 10000 {
			t.Errorf("%d bytes in parts of %d need more than 10,000 parts", size, ps)
		}
	}
	// Unknown size: what 10,000 parts reach covers what is allowed, and
	// nearly the largest file.
	var reach int64
	for n := range 10000 - 10 {
		ps := in.nextPartSize(-1, n)
		if ps > largest {
			t.Fatalf("part %d of an upload of unknown size is %d MiB, over the largest part", n, ps>>20)
		}
		reach += ps
	}
	if reach < in.maxUnknownSize() || in.maxUnknownSize() < in.MaxFileSize()*98/100 {
		t.Fatalf("an upload of unknown size reaches %d bytes in 10,000 parts and may have %d; the largest file is %d", reach, in.maxUnknownSize(), in.MaxFileSize())
	}
}

// waitFor waits for cond with a deadline, without sleeping blind.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		runtime.Gosched()
	}
}
