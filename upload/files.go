package upload

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
)

// Partial returns the unfinished upload of the case named name, so that a
// client that lost its link can continue it (SFTP clients resume by name).
// It fails with ErrNotFound when there is none, also when the file is
// complete. Any spelling of the name the catalog joins finds it.
func (in *Ingest) Partial(ctx context.Context, caseID, name string) (*Upload, error) {
	f, err := in.catalog.File(ctx, caseID, name)
	if errors.Is(err, cases.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if f.State != cases.FileUploading {
		return nil, ErrNotFound
	}
	u, err := in.Resume(ctx, caseID, f.Object)
	if errors.Is(err, ErrNotFound) && in.now().Sub(f.StartedAt) > staleEntry {
		// An entry without its state: an earlier release saved the state
		// after the entry and died in between; nothing was stored. The
		// entry would hold the name for ever.
		in.log.WarnContext(ctx, "dropped an upload's catalog entry that has no saved state", "case", caseID, "file", f.Name, "upload", f.Object)
		if err := in.catalog.RemoveFile(ctx, caseID, f.Name); err != nil {
			return nil, err
		}
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if u.s.Stored && !u.s.Committed && u.s.Name == f.Name {
		// Every byte is stored and the process died before the commit:
		// commit now. The file is complete, not a partial.
		if _, err := u.Finish(ctx); err != nil && !errors.Is(err, ErrDigestMismatch) {
			return nil, err
		}
		return nil, ErrNotFound
	}
	if u.s.Committed || u.s.Name != f.Name {
		return nil, ErrNotFound
	}
	return u, nil
}

// staleEntry is how old a catalog entry without a saved state must be to
// be dropped: a new upload's state is saved in the same moment.
const staleEntry = time.Minute

// StoredSize is how many bytes of f are stored: its size when complete,
// the stored offset of its upload while uploading. It reads only the JSON
// head of the upload's state, not the tail after it (up to 5 MiB), so
// listing a case with many partials stays cheap.
func (in *Ingest) StoredSize(ctx context.Context, caseID string, f cases.File) (int64, error) {
	if f.State != cases.FileUploading || !validID(f.Object) {
		return f.Size, nil
	}
	obj, err := in.store.Open(ctx, stateKey(caseID, f.Object))
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer obj.Close()
	s, err := readStateHead(obj)
	if err != nil {
		return 0, fmt.Errorf("upload %s: %w", f.Object, err)
	}
	return s.Offset, nil
}

// Rename gives the case's file from the free name to, with its bytes,
// digest and, for an unfinished upload, its progress: an SFTP client that
// uploads to "name.filepart" renames it to "name" when it is done.
func (in *Ingest) Rename(ctx context.Context, caseID, from, to string) (cases.File, error) {
	f, err := in.catalog.RenameFile(ctx, caseID, from, to)
	if err != nil || f.State != cases.FileUploading {
		return f, err
	}
	// The upload commits under the name its state holds.
	s, err := in.loadState(ctx, caseID, f.Object)
	if errors.Is(err, ErrNotFound) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	s.Name = f.Name
	if err := in.saveState(ctx, s); err != nil {
		return f, err
	}
	// The upload may have committed under the old name meanwhile.
	if s.Committed {
		return in.catalog.File(ctx, caseID, f.Name)
	}
	return f, nil
}

// AbortUploads aborts the store's multipart uploads of the case's
// unfinished uploads, as a purge does (the states themselves go with the
// rest of the case's objects). The ids come from the saved states, since
// not every store lists multipart uploads by prefix reliably; the store's
// own list is asked too, for uploads whose state was never saved.
func (in *Ingest) AbortUploads(ctx context.Context, caseID string) (int, error) {
	infos, err := in.store.List(ctx, cases.Prefix(caseID)+"uploads/")
	if err != nil {
		return 0, err
	}
	aborted := map[string]bool{}
	for _, info := range infos {
		if !strings.HasSuffix(info.Key, ".state") {
			continue // a lock record, or a request to let one go
		}
		id := strings.TrimSuffix(path.Base(info.Key), ".state")
		s, err := in.loadState(ctx, caseID, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return len(aborted), err
		}
		if s.Multipart != "" && !s.Stored {
			if err := in.store.AbortMultipart(ctx, objectKey(caseID, s.ID), s.Multipart); err != nil {
				return len(aborted), err
			}
			aborted[s.Multipart] = true
		}
	}
	listed, err := in.store.ListMultiparts(ctx, cases.Prefix(caseID)+"objects/")
	if err != nil {
		return len(aborted), err
	}
	for _, m := range listed {
		if err := in.store.AbortMultipart(ctx, m.Key, m.UploadID); err != nil {
			return len(aborted), err
		}
		aborted[m.UploadID] = true
	}
	return len(aborted), nil
}
