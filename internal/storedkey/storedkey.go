// Package storedkey keeps a key (a small secret object: a signing key, a
// host key) in the object store, where every instance sharing the store
// finds the same one. The first instance to need it creates it with a
// conditional write; of instances starting together exactly one wins and
// all read the winner's back.
package storedkey

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/casedrop/casedrop/storage"
)

// Store is the part of storage.Store a key object needs.
type Store interface {
	Open(ctx context.Context, key string) (storage.Object, error)
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error
}

// maxSize bounds what is read of one key object; a PEM key with its
// headers is a few hundred bytes.
const maxSize = 16 << 10

// Read returns the bytes of the key object; an error wrapping
// storage.ErrNotFound when the store has none.
func Read(ctx context.Context, store Store, object string) ([]byte, error) {
	obj, err := store.Open(ctx, object)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", object, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, maxSize))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", object, err)
	}
	return data, nil
}

// Create stores data as the key object unless the store holds one
// already; another instance having written it first is no error.
func Create(ctx context.Context, store Store, object string, data []byte) error {
	err := store.PutIfAbsent(ctx, object, bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("storing %s: %w", object, err)
	}
	return nil
}

// Load returns the bytes of the key object, creating it first with the
// bytes generate makes if the store has none. Whoever won the race to
// create it, the stored key is the one returned.
func Load(ctx context.Context, store Store, object string, generate func() ([]byte, error)) ([]byte, error) {
	data, err := Read(ctx, store, object)
	if !errors.Is(err, storage.ErrNotFound) {
		return data, err
	}
	if data, err = generate(); err != nil {
		return nil, fmt.Errorf("generating %s: %w", object, err)
	}
	if err := Create(ctx, store, object, data); err != nil {
		return nil, err
	}
	return Read(ctx, store, object)
}
