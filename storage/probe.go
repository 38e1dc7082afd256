package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrNotConditional: the store replaces objects whatever the condition of
// a conditional write says (some S3-compatible stores ignore If-Match or
// If-None-Match), so nothing that relies on them may run on it.
var ErrNotConditional = errors.New("storage: the store ignores conditional writes")

// probeKey is where ProbeConditional writes; every instance may.
const probeKey = "system/conditional-probe"

// ProbeConditional checks that store honours conditional writes: a
// PutIfAbsent on an existing key fails with ErrExists, and a PutIfMatch
// with an ETag the object does not have fails with ErrChanged, storing
// nothing. It fails with ErrNotConditional when either is ignored, and
// with the store's error when it could not ask. It writes one small object
// (probeKey).
func ProbeConditional(ctx context.Context, store Store) error {
	fail := func(err error) error { return fmt.Errorf("conditional-write probe: %w", err) }
	body := func(s string) (io.Reader, int64) { return bytes.NewReader([]byte(s)), int64(len(s)) }
	r, n := body("probe")
	if err := store.Put(ctx, probeKey, r, n); err != nil {
		return fail(err)
	}
	info, err := store.Stat(ctx, probeKey)
	if err != nil {
		return fail(err)
	}
	r, n = body("absent?")
	switch err := store.PutIfAbsent(ctx, probeKey, r, n); {
	case err == nil:
		return fmt.Errorf("%w: PutIfAbsent (If-None-Match: *) replaced an existing object", ErrNotConditional)
	case !errors.Is(err, ErrExists):
		return fail(err)
	}
	wrong := "0123456789abcdef0123456789abcdef"
	if info.ETag == wrong {
		wrong = "fedcba9876543210fedcba9876543210"
	}
	r, n = body("match?")
	switch err := store.PutIfMatch(ctx, probeKey, wrong, r, n); {
	case err == nil:
		return fmt.Errorf("%w: PutIfMatch (If-Match) replaced an object whose ETag differs", ErrNotConditional)
	case !errors.Is(err, ErrChanged):
		return fail(err)
	}
	// A store that answers right but writes anyway is caught here.
	after, err := store.Stat(ctx, probeKey)
	if err != nil {
		return fail(err)
	}
	if after.ETag != info.ETag || after.Size != info.Size {
		return fmt.Errorf("%w: a refused conditional write replaced the object", ErrNotConditional)
	}
	return nil
}
