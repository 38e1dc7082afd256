package storage_test

import (
	"context"
	"errors"
	"io"
	"testing"

	backendpkg "github.com/casedrop/casedrop/internal/backends"
	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/storage"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// ignoring is a store that ignores conditions, as some S3-compatible
// stores ignore If-Match or If-None-Match: it replaces whatever is there.
type ignoring struct {
	storage.Store
	absent, match bool
}

func (s ignoring) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	if s.absent {
		return s.Put(ctx, key, r, size)
	}
	return s.Store.PutIfAbsent(ctx, key, r, size)
}

func (s ignoring) PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) error {
	if s.match {
		return s.Put(ctx, key, r, size)
	}
	return s.Store.PutIfMatch(ctx, key, etag, r, size)
}

func TestTheProbeRefusesAStoreThatIgnoresConditionalWrites(t *testing.T) {
	backendpkg.Each(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		if err := storage.ProbeConditional(ctx, newStore()); err != nil {
			t.Fatalf("a store that honours conditional writes was refused: %v", err)
		}
		for name, store := range map[string]ignoring{
			"If-None-Match ignored": {Store: newStore(), absent: true},
			"If-Match ignored":      {Store: newStore(), match: true},
		} {
			if err := storage.ProbeConditional(ctx, store); !errors.Is(err, storage.ErrNotConditional) {
				t.Errorf("%s: probe err = %v, want ErrNotConditional", name, err)
			}
		}
	})
}
