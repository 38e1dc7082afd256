package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
)

// A client that closes a file cleanly has not always sent all of it: Ctrl-C
// in OpenSSH sftp or lftp, or a copy onto an sshfs mount stopped, closes the
// handle as an end would. An SFTP upload has no declared size, so its close
// commits the file; Reopen lets its uploader continue it from its end, and
// Remove lets the uploader take it back. The doors decide who may.

// maxCopyPart is the largest part S3 copies in one UploadPartCopy.
const maxCopyPart = 5 << 30

// Reopen continues the complete file name from its end, for more bytes: it
// becomes an unfinished upload again, holding the bytes it had, and its
// SHA-256 continues from the state saved with it. Finishing it commits the
// file again with its new size and digest. The stored bytes are not read
// or sent again: when the upload completes they are copied, inside the
// store, from the object itself, which stays as it was until then. A file
// already continued is returned as the unfinished upload it is.
func (in *Ingest) Reopen(ctx context.Context, caseID, name string, actor cases.Actor) (*Upload, error) {
	if _, err := in.catalog.RequireOpen(ctx, caseID); err != nil {
		return nil, err
	}
	f, err := in.catalog.File(ctx, caseID, name)
	if errors.Is(err, cases.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if f.State == cases.FileUploading {
		return in.Partial(ctx, caseID, f.Name)
	}
	if err := f.Servable(); err != nil {
		return nil, err // held by the scanner: continued once it is complete
	}
	if f.State != cases.FileComplete || !validID(f.Object) {
		return nil, ErrNotFound
	}
	old, err := in.loadState(ctx, caseID, f.Object)
	if err != nil {
		return nil, err
	}
	f.State, f.SHA256, f.UploadedAt = cases.FileUploading, "", nil
	if !old.Committed && !old.Stored && old.Base > 0 {
		// Continued before, and the catalog not told: mend it.
		return &Upload{in: in, s: old}, in.catalog.UpdateFile(ctx, caseID, f)
	}
	if !old.Committed || !old.Stored || old.Size != f.Size || len(old.Hash) == 0 {
		return nil, fmt.Errorf("%w: %s cannot be continued", ErrCommitted, f.Name)
	}
	s := *old
	actor.Username, actor.Door = s.UploadedBy, s.Via
	s.Name, s.Actor = f.Name, actor
	s.Size, s.Declared, s.Committed, s.Stored, s.ClosedAt = -1, "", false, false, nil
	s.Base, s.BaseHash, s.Multipart = old.Size, old.Hash, ""
	if err := in.startFromBase(ctx, &s); err != nil {
		return nil, err
	}
	// The state first: a file listed as uploading whose state says it is
	// committed could not be continued; the other way round, the next
	// Reopen finds the state continued and mends the catalog.
	if err := in.saveState(ctx, &s); err != nil {
		return nil, err
	}
	if err := in.catalog.UpdateFile(ctx, caseID, f); err != nil {
		return nil, err
	}
	was := hexSum(old)
	in.log.InfoContext(ctx, "upload continued after it was complete", "case", caseID, "upload", s.ID, "file", f.Name, "size", s.Base, "sha256", was)
	in.auditDetail(ctx, &s, cases.EventUploadReopened, s.Base, was,
		fmt.Sprintf("continued from byte %d, where it was complete", s.Base))
	return &Upload{in: in, s: &s}, nil
}

// hexSum is the SHA-256 of a stored upload, from its hash state.
func hexSum(s *state) string {
	h, err := s.hasher()
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// startFromBase sets s back to its first s.Base bytes, the file as it was
// complete before Reopen: as parts to copy from the object, or, under
// storage.MinPartSize (the smallest part), as the tail read from it. s has
// no multipart upload.
func (in *Ingest) startFromBase(ctx context.Context, s *state) error {
	s.Parts, s.CopyParts, s.tail = nil, 0, nil
	s.Offset, s.Hash = s.Base, s.BaseHash
	if s.Base == 0 {
		return nil
	}
	if s.Base < storage.MinPartSize {
		obj, err := in.store.Open(ctx, objectKey(s.Case, s.ID))
		if err != nil {
			return err
		}
		defer obj.Close()
		tail := make([]byte, s.Base)
		if _, err := io.ReadFull(obj, tail); err != nil {
			return fmt.Errorf("upload %s: reading the %d bytes it had: %w", s.ID, s.Base, err)
		}
		s.tail = tail
		return nil
	}
	n := (s.Base + maxCopyPart - 1) / maxCopyPart
	each := s.Base / n
	for i := range n {
		size := each
		if i == n-1 {
			size = s.Base - each*(n-1)
		}
		s.Parts = append(s.Parts, storage.Part{Number: int(i) + 1, Size: size})
	}
	s.Parts = slices.Clip(s.Parts)
	s.CopyParts = int(n)
	return nil
}

// MarkClosed records that a client closed the upload with every byte it
// sent stored, at the stored offset (Info().ClosedAt). A door that does not
// finish an upload at its close (WinSCP's "name.filepart", finished by its
// rename) asks later, also after a restart; writing again clears it.
func (u *Upload) MarkClosed(ctx context.Context) error {
	s := *u.s
	at := s.Offset
	s.ClosedAt = &at
	if err := u.in.saveState(ctx, &s); err != nil {
		return err
	}
	*u.s = s
	return nil
}

// Remove drops the complete file name of an open case with its stored
// bytes, audited (file.removed, which the case system hears). Unfinished
// uploads are dropped with Terminate. The door decides who may: in
// casedrop, the file's own uploader.
func (in *Ingest) Remove(ctx context.Context, caseID, name string, actor cases.Actor) (cases.File, error) {
	if _, err := in.catalog.RequireOpen(ctx, caseID); err != nil {
		return cases.File{}, err
	}
	f, err := in.catalog.File(ctx, caseID, name)
	if err != nil {
		return f, err
	}
	if err := f.Servable(); err != nil {
		return f, err
	}
	if f.State != cases.FileComplete {
		return f, fmt.Errorf("%w: %s is %s", ErrIncomplete, f.Name, f.State)
	}
	// The entry first: a file listed without its bytes would fail a
	// download; bytes without an entry go with the case's purge.
	if err := in.catalog.RemoveFile(ctx, caseID, f.Name); err != nil {
		return f, err
	}
	if validID(f.Object) {
		if err := in.store.Delete(ctx, objectKey(caseID, f.Object)); err != nil {
			in.log.WarnContext(ctx, "delete object of a removed file", "case", caseID, "file", f.Name, "err", err)
		}
		if err := in.store.Delete(ctx, stateKey(caseID, f.Object)); err != nil {
			in.log.WarnContext(ctx, "delete upload state of a removed file", "case", caseID, "file", f.Name, "err", err)
		}
	}
	in.log.InfoContext(ctx, "file removed by its uploader", "case", caseID, "file", f.Name, "size", f.Size, "sha256", f.SHA256)
	ev := cases.Event{Type: cases.EventFileRemoved, Case: caseID, Actor: actor, File: f.Name, Size: f.Size, SHA256: f.SHA256}
	if err := in.catalog.Audit(ctx, ev); err != nil {
		in.log.ErrorContext(ctx, "audit record lost", "type", ev.Type, "case", caseID, "file", f.Name, "err", err)
	}
	return f, nil
}
