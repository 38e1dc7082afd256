package upload

import (
	"context"
	"sync"
)

// bufferPool owns every part buffer of the process, on both doors: the
// bytes of all buffers alive (in use or idle for reuse) never exceed its
// limit. An upload that cannot get a buffer waits, in arrival order, and
// its client is slowed by TCP back-pressure; nothing allocates past the
// limit, whatever is declared or sent.
//
// Deadlock is avoided by one rule the writers follow: an upload blocks in
// get only while it holds no buffer. Buffers held while waiting on the
// store are released by the store's answer, not by another upload.
type bufferPool struct {
	limit   int64
	maxIdle int

	mu      sync.Mutex
	used    int64              // bytes of live buffers, idle ones included
	inUse   int64              // bytes handed out, for the metrics
	idle    map[int64][][]byte // by size, for reuse
	idleN   int
	waiters []*bufferWaiter // oldest first
}

// bufferWaiter is an upload waiting for a buffer of size bytes; granted
// is closed once the bytes are reserved for it (buf is set when an idle
// buffer of that size was handed over, else it allocates).
type bufferWaiter struct {
	size    int64
	granted chan struct{}
	buf     []byte
}

func newBufferPool(limit int64, maxIdle int) *bufferPool {
	return &bufferPool{limit: limit, maxIdle: maxIdle, idle: make(map[int64][][]byte)}
}

// get returns a buffer of size bytes, waiting while the pool is at its
// limit or others wait before it. size must not exceed the limit.
func (p *bufferPool) get(ctx context.Context, size int64) ([]byte, error) {
	p.mu.Lock()
	if len(p.waiters) == 0 {
		if b, ok := p.take(size); ok {
			p.mu.Unlock()
			return alloc(b, size), nil
		}
	}
	w := &bufferWaiter{size: size, granted: make(chan struct{})}
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	select {
	case <-w.granted:
		return alloc(w.buf, size), nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-w.granted: // granted meanwhile: give it back
		p.inUse -= size
		p.keep(w.buf, size)
		p.grant()
	default:
		for i, o := range p.waiters {
			if o == w {
				p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
				break
			}
		}
		p.grant() // a large waiter leaving may let smaller ones in
	}
	return nil, context.Cause(ctx)
}

// tryGet returns a buffer of size bytes if one can be had at once without
// passing anyone waiting, or nil. Uploads use it for the extra buffers
// that let parts travel to the store while the next one is read.
func (p *bufferPool) tryGet(size int64) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.waiters) > 0 {
		return nil
	}
	b, ok := p.take(size)
	if !ok {
		return nil
	}
	return alloc(b, size)
}

// put gives a buffer back; a waiter may get it at once.
func (p *bufferPool) put(b []byte) {
	if b == nil {
		return
	}
	size := int64(cap(b))
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inUse -= size
	p.keep(b[:cap(b)], size)
	p.grant()
}

// waiting reports whether an upload waits for a buffer.
func (p *bufferPool) waiting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiters) > 0
}

// stats reports the bytes handed out and the uploads waiting.
func (p *bufferPool) stats() (inUse int64, waiting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse, len(p.waiters)
}

// take reserves size bytes: an idle buffer of that size, or room under the
// limit, made by dropping idle buffers of other sizes if need be. The
// returned slice is nil when the caller is to allocate. p.mu is held.
func (p *bufferPool) take(size int64) ([]byte, bool) {
	if bufs := p.idle[size]; len(bufs) > 0 {
		b := bufs[len(bufs)-1]
		p.idle[size] = bufs[:len(bufs)-1]
		p.idleN--
		p.inUse += size
		return b, true
	}
	for p.used+size > p.limit && p.idleN > 0 {
		p.dropOneIdle()
	}
	if p.used+size > p.limit {
		return nil, false
	}
	p.used += size
	p.inUse += size
	return nil, true
}

// keep puts b back on the idle list, or drops it when the list is full.
// p.mu is held.
func (p *bufferPool) keep(b []byte, size int64) {
	if b == nil { // reserved but never allocated
		p.used -= size
		return
	}
	if p.idleN >= p.maxIdle {
		p.used -= size
		return
	}
	p.idle[size] = append(p.idle[size], b)
	p.idleN++
}

func (p *bufferPool) dropOneIdle() {
	for size, bufs := range p.idle {
		if len(bufs) == 0 {
			continue
		}
		p.idle[size] = bufs[:len(bufs)-1]
		p.idleN--
		p.used -= size
		return
	}
}

// grant serves waiters in arrival order while their buffers fit. p.mu is
// held.
func (p *bufferPool) grant() {
	for len(p.waiters) > 0 {
		w := p.waiters[0]
		b, ok := p.take(w.size)
		if !ok {
			return
		}
		w.buf = b
		p.waiters = p.waiters[1:]
		close(w.granted)
	}
}

// alloc returns b, or a new buffer of size bytes when b is nil.
func alloc(b []byte, size int64) []byte {
	if b == nil {
		return make([]byte, size)
	}
	return b[:size]
}
