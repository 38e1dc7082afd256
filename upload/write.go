package upload

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
)

// partSize chooses the size of the next part: the configured size while
// that can still reach the file's size within S3's 10,000 parts, larger
// otherwise. Without a known size it grows after 2,000 parts (32 GiB at the
// default), so an SFTP upload of unknown length can reach about 1 TiB.
func (in *Ingest) nextPartSize(size int64, parts int) int64 {
	ps := in.partSize
	if size > 0 {
		need := (size + storage.MaxParts - 11) / (storage.MaxParts - 10)
		need = (need + 1<<20 - 1) &^ (1<<20 - 1)
		return max(ps, need)
	}
	if parts >= 2000 {
		return max(ps, 128<<20)
	}
	return ps
}

func (in *Ingest) buffer(size int64) []byte {
	if size == in.partSize {
		if b, ok := in.buffers.Get().(*[]byte); ok {
			return (*b)[:size]
		}
	}
	return make([]byte, size)
}

func (in *Ingest) release(b []byte) {
	if int64(cap(b)) == in.partSize {
		in.buffers.Put(&b)
	}
}

// partJob is a full part on its way to the store, with the hash state
// after its last byte, so that the state saved with it is exact.
type partJob struct {
	buf  []byte
	hash []byte
	done chan error
}

// Write stores the bytes of r at offset, which must be the upload's stored
// offset. It returns how many bytes of r are now stored, also when it stops
// early: the upload can always be resumed from Info().Offset. Reading
// stops at EOF; the doors turn a dropped connection into EOF.
func (u *Upload) Write(ctx context.Context, offset int64, r io.Reader) (int64, error) {
	s := u.s
	if s.Committed || s.Stored {
		return 0, ErrCommitted
	}
	if offset != s.Offset {
		return 0, fmt.Errorf("%w: at %d, stored %d", ErrOffset, offset, s.Offset)
	}
	if _, err := u.in.catalog.RequireOpen(ctx, s.Case); err != nil {
		return 0, err
	}
	h, err := s.hasher()
	if err != nil {
		return 0, err
	}
	// While a part is in flight its goroutine updates u.s: this loop works
	// on copies (size, pos: where buf starts in the file, parts).
	start, size, pos, parts := s.Offset, s.Size, s.partsSize(), len(s.Parts)
	buf := u.in.buffer(u.in.nextPartSize(size, parts))
	fill := copy(buf, s.tail)
	var inflight *partJob
	wait := func() error {
		if inflight == nil {
			return nil
		}
		err := <-inflight.done
		u.in.release(inflight.buf)
		inflight = nil
		return err
	}
	defer func() { _ = wait() }()

	var readErr error
	for readErr == nil {
		var n int
		n, readErr = io.ReadFull(r, buf[fill:])
		if size >= 0 && pos+int64(fill+n) > size {
			_ = wait()
			return u.s.Offset - start, ErrTooLong
		}
		h.Write(buf[fill : fill+n])
		fill += n
		if readErr == io.ErrUnexpectedEOF || readErr == io.EOF {
			readErr = io.EOF
		}
		if fill < len(buf) {
			continue
		}
		// A full part: store it while the next one is read.
		if err := wait(); err != nil {
			return u.s.Offset - start, err
		}
		inflight = &partJob{buf: buf, hash: marshalHash(h), done: make(chan error, 1)}
		go func(job *partJob) { job.done <- u.storePart(ctx, job.buf, job.hash) }(inflight)
		pos, parts = pos+int64(len(buf)), parts+1
		buf, fill = u.in.buffer(u.in.nextPartSize(size, parts)), 0
	}
	defer u.in.release(buf)
	if err := wait(); err != nil {
		return s.Offset - start, err
	}
	if readErr != io.EOF {
		return s.Offset - start, readErr
	}
	// Everything read is hashed; store what is in buf: as the last bytes of
	// the file, as one more part, or as the tail kept with the state.
	hs := marshalHash(h)
	switch {
	case size >= 0 && pos+int64(fill) == size:
		err = u.storeLast(ctx, buf[:fill], hs)
	case fill >= storage.MinPartSize:
		err = u.storePart(ctx, buf[:fill], hs)
	case fill > len(s.tail):
		err = u.storeTail(ctx, buf[:fill], hs)
	}
	return s.Offset - start, err
}

// storePart stores buf as the next part and saves the state. The state in
// memory changes only once the saved state says so.
func (u *Upload) storePart(ctx context.Context, buf, hashState []byte) error {
	s := *u.s
	key := objectKey(s.Case, s.ID)
	if s.Multipart == "" {
		id, err := u.in.store.NewMultipart(ctx, key)
		if err != nil {
			return err
		}
		s.Multipart = id
	}
	part, err := u.in.store.PutPart(ctx, key, s.Multipart, len(s.Parts)+1, bytes.NewReader(buf), int64(len(buf)))
	if err != nil {
		return err
	}
	s.Parts = append(slices.Clip(s.Parts), part)
	s.Offset = s.partsSize()
	s.Hash, s.tail = hashState, nil
	if err := u.in.saveState(ctx, &s); err != nil {
		return err
	}
	*u.s = s
	return nil
}

func (u *Upload) storeTail(ctx context.Context, buf, hashState []byte) error {
	s := *u.s
	s.tail = bytes.Clone(buf)
	s.Offset = s.partsSize() + int64(len(buf))
	s.Hash = hashState
	if err := u.in.saveState(ctx, &s); err != nil {
		return err
	}
	*u.s = s
	return nil
}

// storeLast stores the file's last bytes and makes the object whole.
func (u *Upload) storeLast(ctx context.Context, buf, hashState []byte) error {
	s := *u.s
	key := objectKey(s.Case, s.ID)
	if s.Multipart == "" {
		if err := u.in.store.Put(ctx, key, bytes.NewReader(buf), int64(len(buf))); err != nil {
			return err
		}
	} else {
		parts := slices.Clip(s.Parts)
		if len(buf) > 0 {
			part, err := u.in.store.PutPart(ctx, key, s.Multipart, len(parts)+1, bytes.NewReader(buf), int64(len(buf)))
			if err != nil {
				return err
			}
			parts = append(parts, part)
		}
		if _, err := u.in.store.CompleteMultipart(ctx, key, s.Multipart, parts); err != nil {
			return err
		}
		s.Parts = parts
	}
	s.Offset = s.Offset - int64(len(s.tail)) + int64(len(buf))
	s.Size = s.Offset
	s.Hash, s.tail, s.Stored = hashState, nil, true
	if err := u.in.saveState(ctx, &s); err != nil {
		return err
	}
	*u.s = s
	return nil
}

// Finish ends an upload whose bytes have all arrived (for an upload of
// unknown size, the size becomes what was written): it checks the declared
// digest and commits the file to the catalog as complete, or as rejected
// with its bytes dropped. Finishing a committed upload changes nothing.
func (u *Upload) Finish(ctx context.Context) (cases.File, error) {
	s := u.s
	if s.Committed {
		return u.in.catalog.File(ctx, s.Case, s.Name)
	}
	if !s.Stored {
		if s.Size >= 0 && s.Offset != s.Size {
			return cases.File{}, fmt.Errorf("%w: %d of %d bytes stored", ErrIncomplete, s.Offset, s.Size)
		}
		if err := u.storeLast(ctx, s.tail, s.Hash); err != nil {
			return cases.File{}, err
		}
	}
	h, err := s.hasher()
	if err != nil {
		return cases.File{}, err
	}
	return u.commit(ctx, h)
}

func (u *Upload) commit(ctx context.Context, h hash.Hash) (cases.File, error) {
	s := u.s
	now := u.in.now().UTC()
	digest := hex.EncodeToString(h.Sum(nil))
	f := cases.File{
		Name: s.Name, Object: s.ID, Size: s.Size, SHA256: digest, State: cases.FileComplete,
		Via: s.Via, UploadedBy: s.UploadedBy, StartedAt: s.CreatedAt, UploadedAt: &now,
	}
	var mismatch error
	if s.Declared != "" && s.Declared != digest {
		mismatch = fmt.Errorf("%w: declared %s, received %s", ErrDigestMismatch, s.Declared, digest)
		f.State, f.Reason = cases.FileRejected, mismatch.Error()
		u.in.abort(ctx, s)
	}
	if err := u.in.catalog.UpdateFile(ctx, s.Case, f); err != nil {
		return f, err
	}
	s.Committed = true
	if err := u.in.saveState(ctx, s); err != nil {
		u.in.log.WarnContext(ctx, "save committed upload state", "case", s.Case, "upload", s.ID, "err", err)
	}
	if mismatch != nil {
		u.in.log.WarnContext(ctx, "upload rejected", "case", s.Case, "upload", s.ID, "file", s.Name, "size", s.Size, "sha256", digest, "declared_sha256", s.Declared)
		return f, mismatch
	}
	u.in.log.InfoContext(ctx, "upload complete", "case", s.Case, "upload", s.ID, "file", s.Name, "size", s.Size, "sha256", digest)
	return f, nil
}

// IsClientError reports whether err is the client's fault (bad input)
// rather than the server's.
func IsClientError(err error) bool {
	for _, e := range []error{ErrDigestMismatch, ErrInvalidDigest, ErrOffset, ErrTooLong, ErrIncomplete, ErrCommitted, ErrNotFound} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
