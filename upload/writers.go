package upload

import (
	"context"
	"fmt"
)

// tooManyWriters is ErrTooManyWriters with the cap.
func (in *Ingest) tooManyWriters() error {
	return fmt.Errorf("%w (at most %d): wait for one to finish", ErrTooManyWriters, in.writers.Max())
}

// acquireWriter takes one of credential's writer slots: one credential
// cannot hold every buffer of the process or write uploads without end.
func (in *Ingest) acquireWriter(credential string) (release func(), err error) {
	release, ok := in.writers.Acquire(credential)
	if !ok {
		return nil, in.tooManyWriters()
	}
	return release, nil
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
	return in.acquireWriter(credential)
}

type reservedKey struct{}

// WithReservedWriter marks ctx as carrying a writer slot the door holds
// (ReserveWriter) for the writes made with it.
func WithReservedWriter(ctx context.Context) context.Context {
	return context.WithValue(ctx, reservedKey{}, true)
}
