package upload

import (
	"context"
	"fmt"
	"sync"
)

// writerSlots counts the uploads each credential is writing, both doors
// together, so that one credential cannot hold every buffer of the
// process or open uploads without end.
type writerSlots struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newWriterSlots(max int) *writerSlots {
	return &writerSlots{max: max, n: make(map[string]int)}
}

// acquire takes a slot for who, or fails with ErrTooManyWriters.
func (w *writerSlots) acquire(who string) (release func(), err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n[who] >= w.max {
		return nil, fmt.Errorf("%w (at most %d): wait for one to finish", ErrTooManyWriters, w.max)
	}
	w.n[who]++
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.n[who]--; w.n[who] <= 0 {
				delete(w.n, who)
			}
		})
	}, nil
}

// writer names who writes upload s, for the per-credential count.
func (s *state) writer() string {
	if s.Actor.CredentialID != "" {
		return s.Actor.CredentialID
	}
	return "user:" + s.UploadedBy
}

// ReserveWriter takes one of credential's writer slots until release is
// called. A write whose context says so (WithReservedWriter) then takes
// none of its own. The SFTP door reserves when a file is opened, so that a
// client over the limit is refused at the open, not at its first write.
func (in *Ingest) ReserveWriter(credential string) (release func(), err error) {
	return in.writers.acquire(credential)
}

type reservedKey struct{}

// WithReservedWriter marks ctx as carrying a writer slot the door holds
// (ReserveWriter) for the writes made with it.
func WithReservedWriter(ctx context.Context) context.Context {
	return context.WithValue(ctx, reservedKey{}, true)
}
