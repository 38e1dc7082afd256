package upload

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
)

// headReads is how often ListedSize reads a state that is being replaced.
const headReads = 3

// ListedSize is StoredSize for file listings: it reads only the JSON head
// of an unfinished upload's state, not the tail stored after it (up to
// 5 MiB), so listing a case with many partials stays cheap. Listings come
// while uploads run, so the state may be replaced under the read (on S3 the
// read then fails); it is read again.
func (in *Ingest) ListedSize(ctx context.Context, caseID string, f cases.File) (int64, error) {
	if f.State != cases.FileUploading {
		return f.Size, nil
	}
	if !validID(f.Object) {
		return 0, nil
	}
	var err error
	for range headReads {
		var offset int64
		offset, err = in.stateOffset(ctx, caseID, f.Object)
		if errors.Is(err, ErrNotFound) {
			return 0, nil
		}
		if !errors.Is(err, errStateChanged) {
			return offset, err
		}
	}
	return 0, err
}

var errStateChanged = errors.New("upload state replaced while read")

func (in *Ingest) stateOffset(ctx context.Context, caseID, id string) (int64, error) {
	obj, err := in.store.Open(ctx, stateKey(caseID, id))
	if errors.Is(err, storage.ErrNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	defer obj.Close()
	head := make([]byte, len(stateMagic)+4)
	if _, err := io.ReadFull(obj, head); err != nil {
		return 0, fmt.Errorf("upload %s: %w: %w", id, errStateChanged, err)
	}
	if !bytes.HasPrefix(head, []byte(stateMagic)) {
		return 0, fmt.Errorf("upload %s: not an upload state", id)
	}
	n := binary.BigEndian.Uint32(head[len(stateMagic):])
	if n > maxStateSize {
		return 0, fmt.Errorf("upload %s: state head of %d bytes", id, n)
	}
	meta := make([]byte, n)
	if _, err := io.ReadFull(obj, meta); err != nil {
		return 0, fmt.Errorf("upload %s: %w: %w", id, errStateChanged, err)
	}
	var s struct {
		Offset int64 `json:"offset"`
	}
	if err := json.Unmarshal(meta, &s); err != nil {
		return 0, fmt.Errorf("upload %s: state: %w", id, err)
	}
	return s.Offset, nil
}
