package upload

import (
	"context"
	"errors"
	"path"
	"strings"

	"github.com/casedrop/casedrop/cases"
)

// Partial returns the unfinished upload of the case named name, so that a
// client that lost its link can continue it (SFTP clients resume by name).
// It fails with ErrNotFound when there is none, also when the file is
// complete.
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
	if err != nil {
		return nil, err
	}
	if u.s.Committed || u.s.Name != name {
		return nil, ErrNotFound
	}
	return u, nil
}

// StoredSize is how many bytes of f are stored: its size when complete,
// the stored offset of its upload while uploading.
func (in *Ingest) StoredSize(ctx context.Context, caseID string, f cases.File) (int64, error) {
	if f.State != cases.FileUploading {
		return f.Size, nil
	}
	u, err := in.Resume(ctx, caseID, f.Object)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return u.s.Offset, nil
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
	s.Name = to
	if err := in.saveState(ctx, s); err != nil {
		return f, err
	}
	// The upload may have committed under the old name meanwhile.
	if s.Committed {
		return in.catalog.File(ctx, caseID, to)
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
