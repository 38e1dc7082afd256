package sftpd

import (
	"context"
	"errors"
	"io"

	"github.com/pkg/sftp"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/upload"
)

// via is how uploads through this door are recorded.
const via = "sftp"

// errRace means the catalog changed under an open; it is tried again.
var errRace = errors.New("the file changed while it was opened")

// openAttempts bounds how often an open races with another session.
const openAttempts = 3

// Filewrite opens a file for upload.
func (s *session) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	h, err := s.openWrite(r)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// OpenFile opens a file for upload with read access asked too (pkg/sftp's
// client does so on Create); reads are refused.
func (s *session) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) {
	h, err := s.openWrite(r)
	if err != nil {
		return nil, err
	}
	return readWriteHandle{h}, nil
}

// openWrite opens name for upload:
//   - no such file: a new upload;
//   - one's own unfinished SFTP upload: continued from its stored bytes
//     (OpenSSH reput, lftp put -c, WinSCP and FileZilla resume), or dropped
//     and started again when the client truncates (FileZilla's fresh start);
//   - one's own complete SFTP upload: continued from its end at the first
//     write (the client closed it early: Ctrl-C closes cleanly), or
//     removed and uploaded again when the client truncates (a retry);
//   - anyone else's complete file: refused, it is never overwritten.
func (s *session) openWrite(r *sftp.Request) (*writeHandle, error) {
	name, err := targetName(r.Filepath)
	if err != nil {
		return nil, s.status("open", r.Filepath, err)
	}
	if _, err := s.srv.cfg.Catalog.RequireOpen(r.Context(), s.claims.Case); err != nil {
		return nil, s.status("open", name, err)
	}
	// The credential's writer slot is taken here, so that a client over
	// the limit is refused at the open; the handle gives it back.
	slot, err := s.srv.cfg.Ingest.ReserveWriter(s.claims.CredentialID)
	if err != nil {
		return nil, s.status("open", name, err)
	}
	for range openAttempts {
		h, err := s.tryOpenWrite(r.Context(), name, r.Pflags(), slot)
		if err == nil {
			return h, nil
		}
		if !errors.Is(err, errRace) {
			slot()
			return nil, s.status("open", name, err)
		}
	}
	slot()
	return nil, errBusy
}

func (s *session) tryOpenWrite(ctx context.Context, name string, flags sftp.FileOpenFlags, slot func()) (*writeHandle, error) {
	f, err := s.srv.cfg.Catalog.File(ctx, s.claims.Case, name)
	switch {
	case errors.Is(err, cases.ErrNotFound) || err == nil && !visible(f):
		if !flags.Creat {
			return nil, errNotFound
		}
		return s.create(ctx, name, slot)
	case err != nil:
		return nil, err
	case f.Servable() != nil:
		return nil, f.Servable() // held by the scanner: never continued or replaced
	case f.State == cases.FileComplete:
		return s.openComplete(ctx, f, flags, slot)
	case f.UploadedBy != s.claims.Username:
		return nil, errNotYours
	case f.Via != via:
		return nil, errOtherDoor
	case flags.Excl:
		return nil, errExists
	}
	name = f.Name // the client may spell it otherwise
	h := s.newWriteHandle(name, slot)
	unlock, err := s.srv.cfg.Ingest.Lock(ctx, s.claims.Case, f.Object, h.stop)
	if err != nil {
		return nil, err
	}
	up, err := s.srv.cfg.Ingest.Partial(ctx, s.claims.Case, name)
	if errors.Is(err, upload.ErrNotFound) || err == nil && up.Info().ID != f.Object {
		err = errRace // finished, removed or replaced meanwhile
	}
	if err != nil {
		unlock()
		return nil, err
	}
	if flags.Trunc {
		err := up.Terminate(ctx)
		unlock()
		if err != nil {
			return nil, err
		}
		return s.create(ctx, name, slot)
	}
	h.start(up, unlock)
	return h, nil
}

// openComplete opens the complete file f for upload: only its uploader
// may, and only a file uploaded over SFTP (a tus upload declares its size:
// complete means complete). Truncating removes it and starts again; else
// the handle continues it from its end at its first write.
func (s *session) openComplete(ctx context.Context, f cases.File, flags sftp.FileOpenFlags, slot func()) (*writeHandle, error) {
	switch {
	case f.UploadedBy != s.claims.Username || f.Via != via:
		return nil, errOverwrite
	case flags.Excl:
		return nil, errExists
	case flags.Trunc:
		if err := s.removeComplete(ctx, f); err != nil {
			return nil, err
		}
		return s.create(ctx, f.Name, slot)
	}
	h := s.newWriteHandle(f.Name, slot)
	h.grows = &f
	return h, nil
}

// create starts a new upload of name.
func (s *session) create(ctx context.Context, name string, slot func()) (*writeHandle, error) {
	up, err := s.srv.cfg.Ingest.Create(ctx, upload.NewFile{
		Case: s.claims.Case, Name: name, Size: -1, Via: via, UploadedBy: s.claims.Username, Actor: s.actor(),
	})
	if err != nil {
		return nil, err
	}
	if up.Info().Name != name {
		// Another upload took the name since we looked; the ingest numbered
		// this one "name (2)", which is not what the client asked for.
		if err := up.Terminate(ctx); err != nil {
			return nil, err
		}
		return nil, errRace
	}
	h := s.newWriteHandle(name, slot)
	unlock, err := s.srv.cfg.Ingest.Lock(ctx, s.claims.Case, up.Info().ID, h.stop)
	if err != nil {
		return nil, err
	}
	h.start(up, unlock)
	return h, nil
}

func (s *session) newWriteHandle(name string, slot func()) *writeHandle {
	// Storing runs on the server's context, marked as holding the writer
	// slot of the open, and checks between parts that the credential still
	// opens the case.
	ctx := upload.WithAuthorization(upload.WithReservedWriter(s.srv.ctx), s.stillValid)
	h := &writeHandle{sess: s, name: name, ctx: ctx, slot: slot}
	h.turn.L = &h.mu
	return h
}

// stillValid fails once the session's credential no longer opens its
// case: expired or revoked (closing the case revokes it too).
func (s *session) stillValid(ctx context.Context) error {
	if !s.srv.cfg.Now().Before(s.claims.ExpiresAt) {
		return auth.ErrExpired
	}
	revoked, err := s.srv.cfg.Catalog.Revoked(ctx, s.claims.Case, s.claims.CredentialID)
	if err != nil {
		return err
	}
	if revoked {
		return auth.ErrRevoked
	}
	return nil
}
