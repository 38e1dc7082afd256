// Package slots counts what each key (a credential) holds at once against
// a cap: the uploads it writes, the files it reads.
package slots

import "sync"

// PerKey caps how many slots each key holds at once. It is safe for
// concurrent use; keys that hold nothing take no memory.
type PerKey struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// New returns a PerKey allowing max slots per key.
func New(max int) *PerKey { return &PerKey{max: max, n: make(map[string]int)} }

// Max is the cap per key.
func (p *PerKey) Max() int { return p.max }

// Acquire takes a slot for key, or reports false when key holds max. The
// release function gives it back; calling it more than once is harmless.
func (p *PerKey) Acquire(key string) (release func(), ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[key] >= p.max {
		return nil, false
	}
	p.n[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.n[key]--; p.n[key] <= 0 {
				delete(p.n, key)
			}
		})
	}, true
}
