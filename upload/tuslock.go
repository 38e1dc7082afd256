package upload

import (
	"context"
	"errors"

	"github.com/tus/tusd/v2/pkg/handler"
)

// tusLocker gives tusd the ingest's upload lock: a tus request holds the
// same lock as an SFTP handle, and a newer request asks the holder to let
// go the way tusd's own lockers do.
type tusLocker struct{ t *tusStore }

func (l tusLocker) NewLock(id string) (handler.Lock, error) {
	return &tusLock{t: l.t, id: id}, nil
}

// tusLock is one request's lock; tusd locks and unlocks it once.
type tusLock struct {
	t      *tusStore
	id     string
	unlock func()
}

// Lock takes the lock, asking its holder to let go. tusd's requestRelease
// cancels the holding request, whose write then stores what it has.
// The case comes from the request (WithUploader): tusd names a lock by
// the upload id alone.
func (l *tusLock) Lock(ctx context.Context, requestRelease func()) error {
	who, err := uploaderFrom(ctx)
	if err != nil {
		return err
	}
	unlock, err := l.t.in.Lock(ctx, who.Case, l.id, requestRelease)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Cause(ctx)) {
			return handler.ErrLockTimeout
		}
		return l.t.tusError(err)
	}
	l.unlock = unlock
	return nil
}

func (l *tusLock) Unlock() error {
	if l.unlock != nil {
		l.unlock()
	}
	return nil
}
