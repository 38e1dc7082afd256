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
	"strconv"
	"strings"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/metrics"
	"github.com/casedrop/casedrop/storage"
)

// nextPartSize chooses the size of the next part: the configured size
// while that can still reach the file's size within S3's 10,000 parts,
// larger otherwise. Without a known size, parts grow after 2,000 (32 GiB
// at the default) to what reaches MaxFileSize, at most 128 MiB. No part is
// larger than LargestPart, as no file is larger than MaxFileSize.
func (in *Ingest) nextPartSize(size int64, parts int) int64 {
	if size > 0 {
		return max(in.partSize, partFor(size, storage.MaxParts-10))
	}
	if parts >= unknownSizeParts {
		return in.lateUnknownPart()
	}
	return in.partSize
}

// unknownSizeParts is how many parts of an upload of unknown size have the
// configured size before they grow.
const unknownSizeParts = 2000

// lateUnknownCap bounds the parts of uploads of unknown size: reaching
// MaxFileSize after small parts would take ever larger ones.
const lateUnknownCap = 128 << 20

// lateUnknownPart is the part size after unknownSizeParts: what reaches
// MaxFileSize in the parts left, at most lateUnknownCap.
func (in *Ingest) lateUnknownPart() int64 {
	rest := in.maxFileSize - unknownSizeParts*in.partSize
	return max(in.partSize, min(lateUnknownCap, partFor(rest, storage.MaxParts-10-unknownSizeParts)))
}

// maxUnknownSize is the largest upload of unknown size: MaxFileSize, or
// less where the parts of lateUnknownPart cannot reach it (with parts
// smaller than 16 MiB, about 1008 GiB of a 1 TiB limit).
func (in *Ingest) maxUnknownSize() int64 {
	return min(in.maxFileSize, unknownSizeParts*in.partSize+(storage.MaxParts-10-unknownSizeParts)*in.lateUnknownPart())
}

// LargestPart is the largest part (and so part buffer) any upload uses.
func (in *Ingest) LargestPart() int64 {
	return max(in.nextPartSize(in.maxFileSize, 0), in.lateUnknownPart())
}

// partFor is the size, rounded up to a MiB, that stores size bytes in
// parts parts.
func partFor(size int64, parts int64) int64 {
	need := (size + parts - 1) / parts
	return (need + 1<<20 - 1) &^ (1<<20 - 1)
}

// partJob is a full part on its way to the store, with the hash state
// after its last byte, so that the state saved with it is exact.
type partJob struct {
	key    string
	upload string // the multipart upload id
	buf    []byte
	hash   []byte
	number int
	part   storage.Part
	err    error
	done   chan struct{}
}

// partsInFlight is how many full parts of one upload may be on their way
// to the store at once, besides the one being filled: memory per transfer
// is at most partsInFlight+1 part buffers, fewer when the process's
// memory budget is short (then parts are sent one at a time).
const partsInFlight = 3

// Write stores the bytes of r at offset, which must be the upload's stored
// offset. It returns how many bytes of r are now stored, also when it stops
// early: the upload can always be resumed from Info().Offset. Reading
// stops at EOF; the doors turn a dropped connection into EOF.
//
// Full parts are sent to the store while the next one is read; they are
// committed to the saved state strictly in order.
func (u *Upload) Write(ctx context.Context, offset int64, r io.Reader) (int64, error) {
	return u.write(ctx, offset, r, nil)
}

// WriteChecked is Write for bytes that come with a checksum (tus's
// checksum extension): they are kept only if all of r arrives and matches
// it; otherwise nothing of r is kept and the offset does not move
// (ErrChecksumMismatch for a mismatch). Parts are still streamed to the
// store as they fill, so memory stays bounded; only the saved state waits
// for the check.
func (u *Upload) WriteChecked(ctx context.Context, offset int64, r io.Reader, c Checksum) (int64, error) {
	return u.write(ctx, offset, r, &c)
}

func (u *Upload) write(ctx context.Context, offset int64, r io.Reader, check *Checksum) (stored int64, err error) {
	s := u.s
	if s.Committed || s.Stored {
		return 0, ErrCommitted
	}
	if offset != s.Offset {
		return 0, fmt.Errorf("%w: at %d, stored %d", ErrOffset, offset, s.Offset)
	}
	// Registered first, so it runs last: after a checked write's restore.
	defer func() {
		if err != nil {
			err = u.lost(ctx, err)
		}
	}()
	if err := u.authorized(ctx); err != nil {
		return 0, err
	}
	// Written again: a close that was whole no longer says so (saved with
	// the next state).
	s.ClosedAt = nil
	if reserved, _ := ctx.Value(reservedKey{}).(bool); !reserved {
		release, err := u.in.acquireWriter(s.writer())
		if err != nil {
			return 0, err
		}
		defer release()
	}
	h, err := s.hasher()
	if err != nil {
		return 0, err
	}
	inFlight := metrics.UploadsInFlight.WithLabelValues(s.Via)
	inFlight.Inc()
	defer func() {
		inFlight.Dec()
		metrics.BytesReceived.WithLabelValues(s.Via).Add(float64(max(stored, 0)))
	}()
	var requestHash hash.Hash
	if check != nil {
		if requestHash, err = check.newHash(); err != nil {
			return 0, err
		}
		r = io.TeeReader(r, requestHash)
		// Until the check passes, parts are committed in memory only; a
		// failed or mismatched request leaves the upload as it was.
		saved := *s
		saved.Parts = slices.Clone(s.Parts)
		defer func() {
			if err != nil {
				*u.s, stored = saved, 0
			}
		}()
	}
	start := s.Offset
	// pos is where buf starts in the file; parts counts parts sent.
	pos, parts := s.partsSize(), len(s.Parts)
	var queue []*partJob
	// commit waits for the oldest part in flight, saves the state that
	// includes it and hands back its buffer.
	commit := func() ([]byte, error) {
		job := queue[0]
		queue = queue[1:]
		<-job.done
		if job.err != nil {
			u.in.buffers.put(job.buf)
			return nil, job.err
		}
		return job.buf, u.commitPart(ctx, job.part, job.hash, check == nil)
	}
	// nextBuffer returns the buffer for the next part: a new one while the
	// budget has room and nobody waits (parts then travel while the next
	// is read), else the buffer of the oldest part in flight once stored.
	// It blocks on the budget only when this upload holds no buffer, so
	// uploads never wait on each other's buffers.
	nextBuffer := func(size int64) ([]byte, error) {
		for {
			if len(queue) < partsInFlight {
				if b := u.in.buffers.tryGet(size); b != nil {
					return b, nil
				}
			}
			if len(queue) == 0 {
				return u.in.buffers.get(ctx, size)
			}
			b, err := commit()
			if err != nil {
				u.in.buffers.put(b)
				return nil, err
			}
			if int64(cap(b)) == size && !u.in.buffers.waiting() {
				return b[:size], nil
			}
			u.in.buffers.put(b) // someone waits: take turns
		}
	}
	// oldestDone is closed once the oldest part in flight is stored.
	oldestDone := func() <-chan struct{} {
		if len(queue) == 0 {
			return nil
		}
		return queue[0].done
	}
	// commitStored commits, in order, the parts already stored.
	commitStored := func() error {
		for len(queue) > 0 && isClosed(queue[0].done) {
			b, err := commit()
			u.in.buffers.put(b)
			if err != nil {
				return err
			}
		}
		return nil
	}
	// On an early return, parts still in flight are waited for (their
	// buffers are in use) but not committed: a resume sends them again.
	defer func() {
		for _, job := range queue {
			<-job.done
			u.in.buffers.put(job.buf)
		}
	}()

	// The client is read by a pump, so that filling a part can give up on
	// a client gone quiet while others wait for a buffer. No buffer is
	// taken before the client sends a byte: a stalled client holds none,
	// and a request without bytes needs none.
	p := newPump(r)
	defer p.stop()
	var yield func() bool // checked writes keep their bytes to the end
	if check == nil {
		yield = u.in.buffers.waiting
	}
	var (
		buf     []byte
		pooled  bool // buf is the pool's
		fill    int
		readErr error
	)
	defer func() {
		if pooled {
			u.in.buffers.put(buf)
		}
	}()
	for {
		more, err := p.wait(ctx)
		if err != nil {
			return s.Offset - start, err
		}
		if !more {
			buf, readErr = slices.Clone(s.tail), p.ended
			if readErr == io.ErrUnexpectedEOF {
				readErr = io.EOF
			}
		} else {
			if buf, err = u.in.buffers.get(ctx, u.in.nextPartSize(s.Size, parts)); err != nil {
				return s.Offset - start, err
			}
			pooled = true
		}
		fill = copy(buf, s.tail)
		for readErr == nil {
			var n int
			n, readErr = p.readFull(ctx, buf[fill:], u.in.idleYield, yield, oldestDone())
			if s.Size >= 0 && pos+int64(fill+n) > s.Size {
				return s.Offset - start, ErrTooLong
			}
			if s.Size < 0 && pos+int64(fill+n) > u.in.maxUnknownSize() {
				return s.Offset - start, u.in.tooLarge(pos + int64(fill+n))
			}
			h.Write(buf[fill : fill+n])
			fill += n
			if readErr == io.ErrUnexpectedEOF {
				readErr = io.EOF
			}
			if readErr == errPartStored {
				// A part reached the store: record it now, so that a
				// crash while this one fills does not send it again.
				if err := commitStored(); err != nil {
					return s.Offset - start, err
				}
				readErr = nil
			}
			if fill < len(buf) {
				continue
			}
			// A case closed, or a credential revoked or expired, while a
			// long request streams stops it here.
			if err := u.authorized(ctx); err != nil {
				return s.Offset - start, err
			}
			if err := u.ensureMultipart(ctx); err != nil {
				return s.Offset - start, err
			}
			parts++
			job := u.newJob(buf, parts)
			job.hash = marshalHash(h)
			queue = append(queue, job)
			go u.sendPart(ctx, job)
			pos += int64(len(buf))
			buf, pooled, fill = nil, false, 0
			if buf, err = nextBuffer(u.in.nextPartSize(s.Size, parts)); err != nil {
				return s.Offset - start, err
			}
			pooled = true
		}
		for len(queue) > 0 {
			b, err := commit()
			u.in.buffers.put(b)
			if err != nil {
				return s.Offset - start, err
			}
		}
		if readErr != errYield {
			break
		}
		// The client went quiet and others wait: store what arrived, as
		// at the end of a request, and wait for the client bufferless.
		if err := u.storeSome(ctx, buf[:fill], marshalHash(h)); err != nil {
			return s.Offset - start, err
		}
		u.in.buffers.put(buf)
		buf, pooled, readErr = nil, false, nil
		pos, parts = s.partsSize(), len(s.Parts)
	}
	if readErr != io.EOF {
		// The request ended early (its connection dropped): what arrived
		// is kept, as at a normal end, unless it came with a checksum it
		// did not complete or the server is stopping.
		if check == nil && ctx.Err() == nil {
			if err := u.storeSome(ctx, buf[:fill], marshalHash(h)); err != nil {
				return s.Offset - start, errors.Join(readErr, err)
			}
		}
		return s.Offset - start, readErr
	}
	if check != nil && !bytes.Equal(requestHash.Sum(nil), check.Sum) {
		return 0, fmt.Errorf("%w: %s of the %d bytes received differs from Upload-Checksum", ErrChecksumMismatch, check.Algorithm, pos+int64(fill)-start)
	}
	// Everything read is hashed; store what is in buf: as the last bytes of
	// the file, as one more part, or as the tail kept with the state.
	hs := marshalHash(h)
	switch {
	case s.Size >= 0 && pos+int64(fill) == s.Size:
		err = u.storeLast(ctx, buf[:fill], hs)
	case check != nil && fill <= len(s.tail) && s.Offset > start:
		err = u.in.saveState(ctx, s) // parts committed in memory only
	default:
		err = u.storeSome(ctx, buf[:fill], hs)
	}
	return s.Offset - start, err
}

// storeSome stores the bytes of a part not yet full, whose first bytes are
// the saved tail: as a part when S3 takes one that small, else as the
// tail kept with the state.
func (u *Upload) storeSome(ctx context.Context, buf, hashState []byte) error {
	switch {
	case len(buf) >= storage.MinPartSize:
		return u.storePart(ctx, buf, hashState)
	case len(buf) > len(u.s.tail):
		return u.storeTail(ctx, buf, hashState)
	}
	return nil
}

// authorized checks, before a write and between its parts, that the case
// is open and, where the door says how (WithAuthorization), that the
// credential writing is still valid: not revoked, not expired.
func (u *Upload) authorized(ctx context.Context) error {
	if _, err := u.in.catalog.RequireOpen(ctx, u.s.Case); err != nil {
		return err
	}
	if check, ok := ctx.Value(authorizationKey{}).(func(context.Context) error); ok {
		return check(ctx)
	}
	return nil
}

type authorizationKey struct{}

// WithAuthorization returns ctx carrying check, which a write calls before
// it starts and between its parts: an error from it (a revoked or expired
// credential) stops the write with what was stored so far kept.
func WithAuthorization(ctx context.Context, check func(context.Context) error) context.Context {
	return context.WithValue(ctx, authorizationKey{}, check)
}

// newJob prepares part number of the upload; the job carries everything
// sendPart needs, as sendPart runs while the state changes.
func (u *Upload) newJob(buf []byte, number int) *partJob {
	return &partJob{key: objectKey(u.s.Case, u.s.ID), upload: u.s.Multipart, buf: buf, number: number, done: make(chan struct{})}
}

func (u *Upload) sendPart(ctx context.Context, job *partJob) {
	defer close(job.done)
	job.part, job.err = u.in.store.PutPart(ctx, job.key, job.upload, job.number, bytes.NewReader(job.buf), int64(len(job.buf)))
}

// ensureMultipart starts the multipart upload of the object on the first
// full part and records it, so that it can be aborted after a crash. An
// upload read from its saved state may follow a process that died between
// starting one and recording it: those are aborted first.
func (u *Upload) ensureMultipart(ctx context.Context) error {
	if u.s.Multipart != "" {
		return nil
	}
	key := objectKey(u.s.Case, u.s.ID)
	if u.loaded {
		if err := u.in.abortUnrecorded(ctx, key); err != nil {
			return err
		}
		u.loaded = false
	}
	id, err := u.in.store.NewMultipart(ctx, key)
	if err != nil {
		return err
	}
	s := *u.s
	s.Multipart = id
	if err := u.in.saveState(ctx, &s); err != nil {
		if abortErr := u.in.store.AbortMultipart(ctx, key, id); abortErr != nil {
			u.in.log.WarnContext(ctx, "abort of an unrecorded multipart upload", "key", key, "err", abortErr)
		}
		return err
	}
	*u.s = s
	return nil
}

// abortUnrecorded aborts the multipart uploads of key that no saved state
// names: an upload's state names at most one, and its caller has none.
func (in *Ingest) abortUnrecorded(ctx context.Context, key string) error {
	mps, err := in.store.ListMultiparts(ctx, key)
	if err != nil {
		return err
	}
	for _, m := range mps {
		if m.Key != key {
			continue
		}
		if err := in.store.AbortMultipart(ctx, key, m.UploadID); err != nil {
			return err
		}
		in.log.InfoContext(ctx, "aborted a multipart upload started but never recorded", "key", key, "multipart", m.UploadID)
	}
	return nil
}

// commitPart records one more stored part and, with save, saves the
// state. The state in memory changes only once the saved state says so.
func (u *Upload) commitPart(ctx context.Context, part storage.Part, hashState []byte, save bool) error {
	s := *u.s
	s.Parts = append(slices.Clip(s.Parts), part)
	s.Offset = s.partsSize()
	s.Hash, s.tail = hashState, nil
	if save {
		if err := u.in.saveState(ctx, &s); err != nil {
			return err
		}
	}
	*u.s = s
	return nil
}

// storePart stores buf as the next part and saves the state.
func (u *Upload) storePart(ctx context.Context, buf, hashState []byte) error {
	if err := u.ensureMultipart(ctx); err != nil {
		return err
	}
	job := u.newJob(buf, len(u.s.Parts)+1)
	u.sendPart(ctx, job)
	if job.err != nil {
		return job.err
	}
	return u.commitPart(ctx, job.part, hashState, true)
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
	key := objectKey(u.s.Case, u.s.ID)
	if len(u.s.Parts) > 0 {
		// Parts copied from the object itself go into a multipart upload
		// too, even when nothing else did.
		if err := u.ensureMultipart(ctx); err != nil {
			return err
		}
	}
	s := *u.s
	size := s.Offset - int64(len(s.tail)) + int64(len(buf))
	if s.Multipart == "" {
		if err := u.in.store.Put(ctx, key, bytes.NewReader(buf), int64(len(buf))); err != nil {
			return err
		}
	} else {
		parts, err := u.completeMultipart(ctx, buf)
		if err != nil {
			// The answer may be what was lost, not the completion: an
			// earlier attempt, or this one, may have made the object.
			if !u.in.whole(ctx, key, size, len(parts)) {
				return err
			}
			u.in.log.WarnContext(ctx, "the store completed the upload although its answer was an error", "case", s.Case, "upload", s.ID, "size", size, "err", err)
		}
		s.Parts = parts
	}
	s.Offset, s.Size = size, size
	s.Hash, s.tail, s.Stored = hashState, nil, true
	if err := u.in.saveState(ctx, &s); err != nil {
		return err
	}
	*u.s = s
	return nil
}

// completeMultipart copies the parts kept from before a Reopen, stores buf
// as the last part and completes the upload's multipart upload. It returns
// the parts completed, also when it fails.
func (u *Upload) completeMultipart(ctx context.Context, buf []byte) ([]storage.Part, error) {
	key := objectKey(u.s.Case, u.s.ID)
	parts, err := u.copyParts(ctx)
	if err != nil {
		return u.s.Parts, err
	}
	if len(buf) > 0 {
		part, err := u.in.store.PutPart(ctx, key, u.s.Multipart, len(parts)+1, bytes.NewReader(buf), int64(len(buf)))
		if err != nil {
			return append(parts, storage.Part{Number: len(parts) + 1, Size: int64(len(buf))}), err
		}
		parts = append(parts, part)
	}
	_, err = u.in.store.CompleteMultipart(ctx, key, u.s.Multipart, parts)
	return parts, err
}

// whole reports whether the object key exists as the completion of an
// upload of size bytes in parts parts would have made it: a completion
// whose answer was lost, or one an earlier attempt made before the
// process died. The key is the upload's own: nothing else writes it. An
// S3 multipart ETag ends in "-<parts>"; other ETags are not checked.
func (in *Ingest) whole(ctx context.Context, key string, size int64, parts int) bool {
	info, err := in.store.Stat(ctx, key)
	if err != nil || info.Size != size {
		return false
	}
	etag := strings.Trim(info.ETag, `"`)
	if i := strings.LastIndexByte(etag, '-'); i >= 0 && parts > 0 {
		return etag[i+1:] == strconv.Itoa(parts)
	}
	return true
}

// copyParts copies the file's bytes from before a Reopen into their
// parts, from the object itself, which stays as it was until the upload
// completes. It returns the upload's parts with those ETags filled in.
func (u *Upload) copyParts(ctx context.Context) ([]storage.Part, error) {
	parts := slices.Clone(u.s.Parts)
	key := objectKey(u.s.Case, u.s.ID)
	var off int64
	for i := range u.s.CopyParts {
		p := parts[i]
		if p.ETag == "" {
			copied, err := u.in.store.CopyPart(ctx, key, u.s.Multipart, p.Number, key, off, p.Size)
			if err != nil {
				return nil, err
			}
			parts[i] = copied
		}
		off += p.Size
	}
	return parts, nil
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
			return cases.File{}, u.lost(ctx, err)
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
	// A modification time the client set while it uploaded stays.
	if cur, err := u.in.catalog.File(ctx, s.Case, s.Name); err == nil && cur.Object == s.ID {
		f.ModTime = cur.ModTime
	}
	var mismatch error
	if s.Declared != "" && s.Declared != digest {
		mismatch = fmt.Errorf("%w: declared %s, received %s", ErrDigestMismatch, s.Declared, digest)
		f.State, f.Reason = cases.FileRejected, mismatch.Error()
		u.in.abort(ctx, s)
	}
	if mismatch == nil {
		u.in.tagDigest(ctx, s, digest)
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
		u.in.audit(ctx, s, cases.EventUploadRejected, s.Size, digest)
		metrics.UploadsFinished.WithLabelValues(s.Via, "rejected").Inc()
		return f, mismatch
	}
	u.in.log.InfoContext(ctx, "upload complete", "case", s.Case, "upload", s.ID, "file", s.Name, "size", s.Size, "sha256", digest)
	u.in.audit(ctx, s, cases.EventUploadFinished, s.Size, digest)
	metrics.UploadsFinished.WithLabelValues(s.Via, "complete").Inc()
	return f, nil
}

// lost handles err from the store: a multipart upload the store no longer
// has (S3 and MinIO drop unfinished ones after a while; MinIO's default is
// 24 hours) takes the stored parts with it, so the upload starts again
// from byte 0 with a fresh hash, or, for a file continued after it was
// complete, from where it ended then: ErrRestarted. Other errors pass
// through.
func (u *Upload) lost(ctx context.Context, err error) error {
	if !errors.Is(err, storage.ErrNotFound) || u.s.Multipart == "" || u.s.Stored || u.s.Committed {
		return err
	}
	key := objectKey(u.s.Case, u.s.ID)
	// "Not found" is concluded only when neither the multipart upload nor
	// the object it completes to exists.
	mps, listErr := u.in.store.ListMultiparts(ctx, key)
	if listErr != nil {
		return errors.Join(err, listErr)
	}
	for _, m := range mps {
		if m.UploadID == u.s.Multipart {
			return err // the upload is there: something else was missing
		}
	}
	if u.in.whole(ctx, key, u.s.Offset, len(u.s.Parts)+min(len(u.s.tail), 1)) {
		// An earlier process completed it and died before it said so.
		s := *u.s
		s.Size, s.tail, s.Stored = s.Offset, nil, true
		if saveErr := u.in.saveState(ctx, &s); saveErr != nil {
			return errors.Join(err, saveErr)
		}
		*u.s = s
		u.in.log.WarnContext(ctx, "the store had completed this upload before a restart; it is whole", "case", s.Case, "upload", s.ID, "size", s.Size)
		return fmt.Errorf("%w: every byte was stored before", ErrCommitted)
	}
	s := *u.s
	stored := s.Offset
	s.Multipart = ""
	if baseErr := u.in.startFromBase(ctx, &s); baseErr != nil {
		return errors.Join(err, baseErr)
	}
	if saveErr := u.in.saveState(ctx, &s); saveErr != nil {
		return errors.Join(err, saveErr)
	}
	*u.s = s
	u.in.log.WarnContext(ctx, "the store lost this upload's parts; it starts again from an earlier byte",
		"case", s.Case, "upload", s.ID, "file", s.Name, "stored", stored, "restart_at", s.Offset, "err", err)
	return fmt.Errorf("%w: byte %d (%d bytes were stored)", ErrRestarted, s.Offset, stored)
}

// tagDigest keeps the digest on the stored object too, where the store can
// (storage.Digester): a store-side record that survives without the
// catalog. It is a convenience: a failure is logged, not fatal.
func (in *Ingest) tagDigest(ctx context.Context, s *state, digest string) {
	d, ok := in.store.(storage.Digester)
	if !ok {
		return
	}
	if err := d.SetDigest(ctx, objectKey(s.Case, s.ID), digest); err != nil {
		in.log.WarnContext(ctx, "could not tag the stored object with its digest", "case", s.Case, "file", s.Name, "err", err)
	}
}
