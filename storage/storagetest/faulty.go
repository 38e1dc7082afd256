package storagetest

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/casedrop/casedrop/storage"
)

// Faulty wraps a store so that a test can make it fail as a store in
// trouble does: every operation (Fail), or only those that store bytes
// (FailWrites, as a full disk does), fails with the error given, wrapped
// as the implementations wrap theirs. It is safe for concurrent use.
type Faulty struct {
	storage.Store

	mu     sync.Mutex
	all    error
	writes error
}

// NewFaulty returns s wrapped, failing nothing yet.
func NewFaulty(s storage.Store) *Faulty { return &Faulty{Store: s} }

// Fail makes every operation fail with err from now on; nil heals.
func (f *Faulty) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.all = err
}

// FailWrites makes the operations that store bytes fail with err from now
// on; nil heals.
func (f *Faulty) FailWrites(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = err
}

// fault is the error op fails with now, or nil.
func (f *Faulty) fault(op string, write bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.all
	if err == nil && write {
		err = f.writes
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("storagetest: %s: %w", op, err)
}

// Ping fails as a write does, else asks the store underneath.
func (f *Faulty) Ping(ctx context.Context) error {
	if err := f.fault("ping", true); err != nil {
		return err
	}
	return f.Store.Ping(ctx)
}

func (f *Faulty) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.fault("put", true); err != nil {
		return err
	}
	return f.Store.Put(ctx, key, r, size)
}

func (f *Faulty) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.fault("put", true); err != nil {
		return err
	}
	return f.Store.PutIfAbsent(ctx, key, r, size)
}

func (f *Faulty) PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) error {
	if err := f.fault("put", true); err != nil {
		return err
	}
	return f.Store.PutIfMatch(ctx, key, etag, r, size)
}

func (f *Faulty) Open(ctx context.Context, key string) (storage.Object, error) {
	if err := f.fault("open", false); err != nil {
		return nil, err
	}
	return f.Store.Open(ctx, key)
}

func (f *Faulty) Stat(ctx context.Context, key string) (storage.Info, error) {
	if err := f.fault("stat", false); err != nil {
		return storage.Info{}, err
	}
	return f.Store.Stat(ctx, key)
}

func (f *Faulty) Delete(ctx context.Context, key string) error {
	if err := f.fault("delete", false); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

func (f *Faulty) List(ctx context.Context, prefix string) ([]storage.Info, error) {
	if err := f.fault("list", false); err != nil {
		return nil, err
	}
	return f.Store.List(ctx, prefix)
}

func (f *Faulty) NewMultipart(ctx context.Context, key string) (string, error) {
	if err := f.fault("new multipart", true); err != nil {
		return "", err
	}
	return f.Store.NewMultipart(ctx, key)
}

func (f *Faulty) PutPart(ctx context.Context, key, uploadID string, number int, r io.Reader, size int64) (storage.Part, error) {
	if err := f.fault("put part", true); err != nil {
		return storage.Part{}, err
	}
	return f.Store.PutPart(ctx, key, uploadID, number, r, size)
}

func (f *Faulty) CopyPart(ctx context.Context, key, uploadID string, number int, srcKey string, offset, size int64) (storage.Part, error) {
	if err := f.fault("copy part", true); err != nil {
		return storage.Part{}, err
	}
	return f.Store.CopyPart(ctx, key, uploadID, number, srcKey, offset, size)
}

func (f *Faulty) CompleteMultipart(ctx context.Context, key, uploadID string, parts []storage.Part) (storage.Info, error) {
	if err := f.fault("complete", true); err != nil {
		return storage.Info{}, err
	}
	return f.Store.CompleteMultipart(ctx, key, uploadID, parts)
}

func (f *Faulty) AbortMultipart(ctx context.Context, key, uploadID string) error {
	if err := f.fault("abort", false); err != nil {
		return err
	}
	return f.Store.AbortMultipart(ctx, key, uploadID)
}

func (f *Faulty) ListMultiparts(ctx context.Context, prefix string) ([]storage.Multipart, error) {
	if err := f.fault("list multiparts", false); err != nil {
		return nil, err
	}
	return f.Store.ListMultiparts(ctx, prefix)
}
