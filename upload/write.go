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

func (u *Upload) write(ctx context.Context, offset int64, r io.Reader, check *Checksum) (int64, error) {
	if u.s.Committed || u.s.Stored {
		return 0, ErrCommitted
	}
	if offset != u.s.Offset {
		return 0, fmt.Errorf("%w: at %d, stored %d", ErrOffset, offset, u.s.Offset)
	}
	stored, err := u.writeAuthorized(ctx, r, check)
	if err != nil && !errors.Is(err, ErrLockLost) && !u.in.holds(u.s.Case, u.s.ID) {
		// A write that ended for any reason after its lease ran out, or
		// was taken over (which interrupts the request), was taken over:
		// that is what its client is told.
		return stored, fmt.Errorf("%w: upload %s (the write ended with: %v)", ErrLockLost, u.s.ID, err)
	}
	if err != nil {
		// Last, after a checked write's restore: the store may have lost
		// the upload's parts.
		err = u.lost(ctx, err)
	}
	return stored, err
}

// writeAuthorized writes r for an uploader still allowed to, holding a
// writer slot of its credential, counted in the metrics.
func (u *Upload) writeAuthorized(ctx context.Context, r io.Reader, check *Checksum) (int64, error) {
	s := u.s
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
	u.in.metrics.Writing(s.Via, +1)
	defer u.in.metrics.Writing(s.Via, -1)
	stored, err := u.writeRequest(ctx, r, h, check)
	u.in.metrics.Received(s.Via, max(stored, 0))
	return stored, err
}

// writeRequest runs one request's bytes through a pipeline. A checked
// write keeps nothing unless all of r arrived and matched: until the check
// passes its parts are committed in memory only, and a failed or
// mismatched request leaves the upload as it was.
func (u *Upload) writeRequest(ctx context.Context, r io.Reader, h hash.Hash, check *Checksum) (int64, error) {
	if check == nil {
		return u.pipe(ctx, r, h, nil, nil)
	}
	sum, err := check.newHash()
	if err != nil {
		return 0, err
	}
	saved := *u.s
	saved.Parts = slices.Clone(u.s.Parts)
	stored, err := u.pipe(ctx, io.TeeReader(r, sum), h, check, sum)
	if err != nil {
		*u.s = saved
		return 0, err
	}
	return stored, nil
}

// pipe stores r at the upload's offset through a pipeline, which it closes
// however the write ended, and reports how many bytes of r are stored.
func (u *Upload) pipe(ctx context.Context, r io.Reader, h hash.Hash, check *Checksum, sum hash.Hash) (int64, error) {
	pl := u.newPipeline(ctx, r, h, check, sum)
	defer pl.close()
	err := pl.run()
	return pl.stored(), err
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
	return u.commitPartSized(ctx, part, hashState, save, u.s.Size)
}

// commitPartSized is commitPart recording size as the upload's size.
func (u *Upload) commitPartSized(ctx context.Context, part storage.Part, hashState []byte, save bool, size int64) error {
	s := *u.s
	s.Size = size
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
	return u.storePartSized(ctx, buf, hashState, u.s.Size)
}

// storePartSized is storePart recording size as the upload's size.
func (u *Upload) storePartSized(ctx context.Context, buf, hashState []byte, size int64) error {
	if err := u.ensureMultipart(ctx); err != nil {
		return err
	}
	job := u.newJob(buf, len(u.s.Parts)+1)
	u.sendPart(ctx, job)
	if job.err != nil {
		return job.err
	}
	return u.commitPartSized(ctx, job.part, hashState, true, size)
}

func (u *Upload) storeTail(ctx context.Context, buf, hashState []byte) error {
	return u.storeTailSized(ctx, buf, hashState, u.s.Size)
}

// storeTailSized is storeTail recording size as the upload's size.
func (u *Upload) storeTailSized(ctx context.Context, buf, hashState []byte, size int64) error {
	s := *u.s
	s.Size = size
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
	if u.in.fenced {
		if err := u.declareLast(ctx, buf, hashState); err != nil {
			return err
		}
		buf = u.s.tail
	}
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
		// The object is replaced unconditionally: with fenced states, the
		// state names these bytes already (declareLast). Without, this
		// process's lock is exact.
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

// declareLast saves, with fenced states, a state that names every byte of
// the object about to be made and the upload's size, before the store
// makes it: the last bytes as the tail when they are all the file has and
// fewer than a part, else as the last part. A writer paused past its lease
// may still reach the store after another took the upload over; it can
// then only make the object the saved state names, which is the one the
// new holder makes too, and a write past that size is refused. The state
// in memory is the declared one: the caller stores u.s.tail, or completes
// the parts.
func (u *Upload) declareLast(ctx context.Context, buf, hashState []byte) error {
	size := u.s.partsSize() + int64(len(buf))
	if len(buf) >= storage.MinPartSize || len(buf) > 0 && len(u.s.Parts) > 0 {
		return u.storePartSized(ctx, buf, hashState, size)
	}
	return u.storeTailSized(ctx, buf, hashState, size)
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
	if mismatch == nil && u.in.scanning {
		// Queued first: a file is never left scanning with no scan to come.
		f.State = cases.FileScanning
		if err := u.in.catalog.QueueScan(ctx, s.Case, f); err != nil {
			return f, err
		}
	}
	if err := u.in.catalog.UpdateFile(ctx, s.Case, f); err != nil {
		return f, err
	}
	s.Committed = true
	if err := u.in.saveState(ctx, s); err != nil {
		u.in.log.WarnContext(ctx, "save committed upload state", "case", s.Case, "upload", s.ID, "err", err)
	}
	if f.State == cases.FileScanning && u.in.scanQueued != nil {
		u.in.scanQueued()
	}
	if mismatch != nil {
		u.in.log.WarnContext(ctx, "upload rejected", "case", s.Case, "upload", s.ID, "file", s.Name, "size", s.Size, "sha256", digest, "declared_sha256", s.Declared)
		u.in.audit(ctx, s, cases.EventUploadRejected, s.Size, digest)
		u.in.metrics.Finished(s.Via, "rejected")
		return f, mismatch
	}
	u.in.log.InfoContext(ctx, "upload complete", "case", s.Case, "upload", s.ID, "file", s.Name, "size", s.Size, "sha256", digest)
	u.in.audit(ctx, s, cases.EventUploadFinished, s.Size, digest)
	u.in.metrics.Finished(s.Via, "complete")
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
