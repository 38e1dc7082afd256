package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
)

// state is everything needed to continue an upload after a restart. It is
// stored as one object, written atomically after every stored part and at
// the end of every write, together with the tail: the stored bytes not yet
// in a part (fewer than storage.MinPartSize, the smallest part S3 takes).
// The hash state always covers exactly parts + tail, so a resumed upload
// ends with the right SHA-256 without re-reading what was stored.
type state struct {
	ID         string            `json:"id"`
	Case       string            `json:"case"`
	Name       string            `json:"name"`
	Size       int64             `json:"size"` // -1 while unknown
	Offset     int64             `json:"offset"`
	Declared   string            `json:"declared_sha256,omitempty"`
	Via        string            `json:"via"`
	UploadedBy string            `json:"uploaded_by"`
	Actor      cases.Actor       `json:"actor"`
	Meta       map[string]string `json:"meta,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	Multipart  string            `json:"multipart,omitempty"`
	Parts      []storage.Part    `json:"parts,omitempty"`
	Hash       []byte            `json:"hash"`
	// Stored: every byte is in the object (multipart completed, or put
	// whole); only the digest check and the commit remain.
	Stored bool `json:"stored,omitempty"`
	// Committed: the file is in the catalog (complete or rejected); the
	// state stays so that a client asking again learns it is done.
	Committed bool `json:"committed,omitempty"`
	// Base is how many bytes the file had when its uploader continued it
	// after it was complete (Reopen), and BaseHash the hash state after
	// them. The first CopyParts parts hold those bytes: they are not sent
	// again but copied, inside the store, from the object itself when the
	// upload completes; until then their ETag is empty.
	Base      int64  `json:"base,omitempty"`
	BaseHash  []byte `json:"base_hash,omitempty"`
	CopyParts int    `json:"copy_parts,omitempty"`
	// ClosedAt is the offset at which a client last closed the upload with
	// nothing missing (MarkClosed), nil once written again: what finishes
	// a WinSCP ".filepart" at its rename, also after a restart.
	ClosedAt *int64 `json:"closed_at,omitempty"`
	// Gone: the upload was terminated or its file removed, and what it
	// stored is being deleted. Saved first, with fenced states, so that a
	// terminating or removing writer that lost the upload to another stops
	// before it deletes anything; a state that says so is not found.
	Gone bool `json:"gone,omitempty"`
	// SavedBy names the process (Ingest) that saved the state last: one
	// that reads a state another saved may follow a crash between starting
	// a multipart upload and recording it.
	SavedBy string `json:"saved_by,omitempty"`
	// Save is new at every save, so that no two saves store the same
	// bytes: an S3 ETag is the content's MD5, and two writers storing
	// equal states would both pass the same If-Match.
	Save string `json:"save,omitempty"`

	tail []byte // not in JSON: stored after it
	// etag is the ETag of the saved state this one was read as or saved
	// as, "" before its first save: the next save replaces only that.
	etag string
}

const stateMagic = "casedrop-upload-state/1\n"

func stateKey(caseID, id string) string  { return cases.Prefix(caseID) + "uploads/" + id + ".state" }
func objectKey(caseID, id string) string { return cases.Prefix(caseID) + "objects/" + id }

func (s *state) partsSize() int64 {
	var n int64
	for _, p := range s.Parts {
		n += p.Size
	}
	return n
}

// hasher restores the SHA-256 state saved with the upload.
func (s *state) hasher() (hash.Hash, error) {
	h := sha256.New()
	if len(s.Hash) == 0 {
		return h, nil
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(s.Hash); err != nil {
		return nil, fmt.Errorf("upload %s: corrupt hash state: %w", s.ID, err)
	}
	return h, nil
}

func marshalHash(h hash.Hash) []byte {
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err) // crypto/sha256 always marshals
	}
	return b
}

func (s *state) encode() ([]byte, error) {
	meta, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(stateMagic) + 4 + len(meta) + len(s.tail))
	buf.WriteString(stateMagic)
	_ = binary.Write(&buf, binary.BigEndian, uint32(len(meta)))
	buf.Write(meta)
	buf.Write(s.tail)
	return buf.Bytes(), nil
}

// decodeState decodes a saved state: its head (readStateHead), then the
// tail after it.
func decodeState(data []byte) (*state, error) {
	r := bytes.NewReader(data)
	s, err := readStateHead(r)
	if err != nil {
		return nil, err
	}
	s.tail = data[len(data)-r.Len():]
	if want := s.Offset - s.partsSize(); !s.Stored && int64(len(s.tail)) != want {
		return nil, fmt.Errorf("upload state: tail of %d bytes, want %d", len(s.tail), want)
	}
	return s, nil
}

// readStateHead reads the head of a saved state from r: the magic, the
// length of the JSON and the JSON, leaving r at the tail. It is the one
// decoder of the head, for a whole state and for a look at its progress
// that skips the tail.
func readStateHead(r io.Reader) (*state, error) {
	head := make([]byte, len(stateMagic)+4)
	errNotState := errors.New("not an upload state")
	if err := readStatePart(r, head, errNotState); err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(head, []byte(stateMagic)) {
		return nil, errNotState
	}
	n := binary.BigEndian.Uint32(head[len(stateMagic):])
	if n > maxStateSize {
		return nil, fmt.Errorf("upload state: head of %d bytes", n)
	}
	meta := make([]byte, n)
	if err := readStatePart(r, meta, errors.New("truncated upload state")); err != nil {
		return nil, err
	}
	s := &state{}
	if err := json.Unmarshal(meta, s); err != nil {
		return nil, fmt.Errorf("upload state: %w", err)
	}
	return s, nil
}

// readStatePart fills p from r, or fails with short when r ends first.
func readStatePart(r io.Reader, p []byte, short error) error {
	_, err := io.ReadFull(r, p)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return short
	}
	return err
}

// saveState saves s. With fencing (Config.FenceStates, for instances that
// share the store) the first save is made only if no state is there
// (PutIfAbsent) and every later one only over the state s was read or
// last saved as (PutIfMatch): a save that finds another writer's state
// fails with ErrLockLost, as a lock cannot stop a paused holder and the
// state's ETag fences it off once another took the upload over. Without,
// a save replaces the state: one process, whose lock is exact.
func (in *Ingest) saveState(ctx context.Context, s *state) error {
	s.SavedBy = in.boot
	if !in.fenced {
		data, err := s.encode()
		if err != nil {
			return err
		}
		return in.store.Put(ctx, stateKey(s.Case, s.ID), bytes.NewReader(data), int64(len(data)))
	}
	s.Save = newID()
	data, err := s.encode()
	if err != nil {
		return err
	}
	key := stateKey(s.Case, s.ID)
	if s.etag == "" {
		err = in.store.PutIfAbsent(ctx, key, bytes.NewReader(data), int64(len(data)))
	} else {
		err = in.store.PutIfMatch(ctx, key, s.etag, bytes.NewReader(data), int64(len(data)))
	}
	if errors.Is(err, storage.ErrExists) || errors.Is(err, storage.ErrChanged) {
		return fmt.Errorf("%w: upload %s", ErrLockLost, s.ID)
	}
	if err != nil {
		return err
	}
	etag, err := in.savedETag(ctx, s)
	if err != nil {
		return err
	}
	s.etag = etag
	return nil
}

// savedETag reads back the head of the state just saved for its ETag:
// the conditional writes do not tell it. The head must be this save's
// (s.Save), else another writer saved after it.
func (in *Ingest) savedETag(ctx context.Context, s *state) (string, error) {
	obj, err := in.store.Open(ctx, stateKey(s.Case, s.ID))
	if errors.Is(err, storage.ErrNotFound) {
		return "", fmt.Errorf("%w: upload %s", ErrLockLost, s.ID)
	}
	if err != nil {
		return "", err
	}
	defer obj.Close()
	head, err := readStateHead(obj)
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", s.ID, err)
	}
	if head.Save != s.Save {
		return "", fmt.Errorf("%w: upload %s", ErrLockLost, s.ID)
	}
	return obj.Info().ETag, nil
}

// maxStateSize bounds what loadState reads: the JSON plus a tail that is
// always under one part.
const maxStateSize = storage.MinPartSize + 4<<20

func (in *Ingest) loadState(ctx context.Context, caseID, id string) (*state, error) {
	obj, err := in.store.Open(ctx, stateKey(caseID, id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, maxStateSize))
	if err != nil {
		return nil, err
	}
	s, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", id, err)
	}
	if s.Gone {
		return nil, ErrNotFound
	}
	s.etag = obj.Info().ETag
	return s, nil
}
