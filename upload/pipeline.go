package upload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	"github.com/casedrop/casedrop/storage"
)

// partJob is a full part on its way to the store, with the hash state
// after its last byte, so that the state saved with it is exact.
type partJob struct {
	caseID string
	id     string // the upload's
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

// recheckEvery is how often a long write checks again that its writer may
// still write (the case open, the credential neither revoked nor expired):
// before a part is stored once this much time has passed since the last
// check, by the ingest's clock. A write checks when it starts too.
const recheckEvery = time.Second

// pipeline is one write's way from the client to the store: it fills a
// part buffer from the client, sends each full part while the next one
// fills, and commits the parts to the saved state strictly in order, each
// as soon as it is stored.
//
// Buffers come from the process's pool under one rule: the pipeline waits
// for a buffer only while it holds none (nextBuffer), so uploads never
// wait on each other's buffers. close gives back everything it holds.
type pipeline struct {
	u     *Upload
	ctx   context.Context
	start int64 // the stored offset the write began at

	// check is the request's checksum (WriteChecked), sum the hash of the
	// request's bytes it is compared with; nil for an unchecked write.
	check *Checksum
	sum   hash.Hash

	p       *pump
	yield   func() bool // nil: the client is waited for as long as it takes
	checked time.Time   // when the writer's authorization was last checked
	h       hash.Hash   // the file's SHA-256, up to buf[:fill]

	queue   []*partJob // parts in flight, oldest first
	buf     []byte     // the part being filled
	pooled  bool       // buf is the pool's, to give back
	fill    int        // bytes in buf
	pos     int64      // where buf starts in the file
	parts   int        // parts sent
	readErr error      // why the client stopped filling buf, once it has
}

// newPipeline starts reading r for a write of u at its stored offset.
// The client is read by a pump, so that filling a part can give up on a
// client gone quiet while others wait for a buffer.
func (u *Upload) newPipeline(ctx context.Context, r io.Reader, h hash.Hash, check *Checksum, sum hash.Hash) *pipeline {
	pl := &pipeline{u: u, ctx: ctx, start: u.s.Offset, check: check, sum: sum, h: h,
		pos: u.s.partsSize(), parts: len(u.s.Parts), checked: u.in.now()}
	if check == nil { // checked writes keep their bytes to the end
		pl.yield = u.in.buffers.waiting
	}
	pl.p = newPump(r)
	return pl
}

// stored is how many bytes of this write are stored.
func (pl *pipeline) stored() int64 { return pl.u.s.Offset - pl.start }

// run reads the client to its end and stores what it sent.
func (pl *pipeline) run() error {
	for {
		if err := pl.startPart(); err != nil {
			return err
		}
		if err := pl.fillParts(); err != nil {
			return err
		}
		if err := pl.commitParts(true); err != nil {
			return err
		}
		if pl.readErr != errYield {
			return pl.finish()
		}
		if err := pl.yieldBuffer(); err != nil {
			return err
		}
	}
}

// startPart waits for the client's next byte and takes a buffer for the
// part it begins, holding the saved tail first. No buffer is taken before
// the client sends a byte: a stalled client holds none, and a request
// without bytes needs none.
func (pl *pipeline) startPart() error {
	s := pl.u.s
	more, err := pl.p.wait(pl.ctx)
	if err != nil {
		return err
	}
	if !more {
		pl.buf, pl.readErr = slices.Clone(s.tail), clientEnd(pl.p.ended)
	} else {
		buf, err := pl.u.in.buffers.get(pl.ctx, pl.u.in.nextPartSize(s.Size, pl.parts))
		if err != nil {
			return err
		}
		pl.buf, pl.pooled = buf, true
	}
	pl.fill = copy(pl.buf, s.tail)
	return nil
}

// fillParts reads the client until it stops (readErr), sending each part
// that fills.
func (pl *pipeline) fillParts() error {
	for pl.readErr == nil {
		if err := pl.read(); err != nil {
			return err
		}
		if pl.fill < len(pl.buf) {
			continue
		}
		if err := pl.send(); err != nil {
			return err
		}
	}
	return nil
}

// read reads the client into buf until it is full, the client stops, or
// the oldest part in flight is stored: that one is recorded at once, so
// that a crash while this part fills does not send it again.
func (pl *pipeline) read() error {
	in := pl.u.in
	n, err := pl.p.readFull(pl.ctx, pl.buf[pl.fill:], in.idleYield, pl.yield, pl.oldestDone())
	if err := pl.fits(pl.pos + int64(pl.fill+n)); err != nil {
		return err
	}
	pl.h.Write(pl.buf[pl.fill : pl.fill+n])
	pl.fill += n
	pl.readErr = clientEnd(err)
	if pl.readErr == errPartStored {
		pl.readErr = nil
		return pl.commitParts(false)
	}
	return nil
}

// fits checks that a file of size bytes is one the upload may become.
func (pl *pipeline) fits(size int64) error {
	s, in := pl.u.s, pl.u.in
	if s.Size >= 0 && size > s.Size {
		return ErrTooLong
	}
	if s.Size < 0 && size > in.maxUnknownSize() {
		return in.tooLarge(size)
	}
	return nil
}

// send sends the full buf to the store as the next part and takes the
// buffer for the part after it.
func (pl *pipeline) send() error {
	u := pl.u
	// A case closed, or a credential revoked or expired, while a long
	// request streams stops it here: checked again once a second has
	// passed since the last check (three small reads of the store per
	// part would otherwise cost the store more than the part).
	if now := u.in.now(); now.Sub(pl.checked) >= recheckEvery {
		if err := u.authorized(pl.ctx); err != nil {
			return err
		}
		pl.checked = now
	}
	if err := u.ensureMultipart(pl.ctx); err != nil {
		return err
	}
	pl.parts++
	job := u.newJob(pl.buf, pl.parts)
	job.hash = marshalHash(pl.h)
	pl.queue = append(pl.queue, job)
	go u.sendPart(pl.ctx, job)
	pl.pos += int64(len(pl.buf))
	pl.buf, pl.pooled, pl.fill = nil, false, 0
	buf, err := pl.nextBuffer(u.in.nextPartSize(u.s.Size, pl.parts))
	if err != nil {
		return err
	}
	pl.buf, pl.pooled = buf, true
	return nil
}

// nextBuffer returns the buffer for the next part: a new one while the
// budget has room and nobody waits (parts then travel while the next is
// read), else the buffer of the oldest part in flight once stored. It
// blocks on the budget only when this write holds no buffer.
func (pl *pipeline) nextBuffer(size int64) ([]byte, error) {
	buffers := pl.u.in.buffers
	for {
		if len(pl.queue) < partsInFlight {
			if b := buffers.tryGet(size); b != nil {
				return b, nil
			}
		}
		if len(pl.queue) == 0 {
			return buffers.get(pl.ctx, size)
		}
		b, err := pl.commitOldest()
		if err != nil {
			buffers.put(b)
			return nil, err
		}
		if int64(cap(b)) == size && !buffers.waiting() {
			return b[:size], nil
		}
		buffers.put(b) // someone waits: take turns
	}
}

// oldestDone is closed once the oldest part in flight is stored; nil
// when none is in flight.
func (pl *pipeline) oldestDone() <-chan struct{} {
	if len(pl.queue) == 0 {
		return nil
	}
	return pl.queue[0].done
}

// commitParts commits the parts in flight, in order, and gives back their
// buffers: with wait, all of them, waiting for each; else those already
// stored.
func (pl *pipeline) commitParts(wait bool) error {
	for len(pl.queue) > 0 && (wait || isClosed(pl.queue[0].done)) {
		b, err := pl.commitOldest()
		pl.u.in.buffers.put(b)
		if err != nil {
			return err
		}
	}
	return nil
}

// commitOldest waits for the oldest part in flight, saves the state that
// includes it (a checked write only keeps it in memory until the check)
// and hands back its buffer, nil when the part failed.
func (pl *pipeline) commitOldest() ([]byte, error) {
	job := pl.queue[0]
	pl.queue = pl.queue[1:]
	<-job.done
	if job.err != nil {
		pl.u.in.buffers.put(job.buf)
		return nil, job.err
	}
	return job.buf, pl.u.commitPart(pl.ctx, job.part, job.hash, pl.check == nil)
}

// yieldBuffer gives the buffer back when the client went quiet and others
// wait: what arrived is stored, as at the end of a request, and the
// client is waited for bufferless.
func (pl *pipeline) yieldBuffer() error {
	u := pl.u
	if err := u.storeSome(pl.ctx, pl.buf[:pl.fill], marshalHash(pl.h)); err != nil {
		return err
	}
	u.in.buffers.put(pl.buf)
	pl.buf, pl.pooled, pl.readErr = nil, false, nil
	pl.pos, pl.parts = u.s.partsSize(), len(u.s.Parts)
	return nil
}

// finish stores what is left in buf once the client stopped, every part
// before it committed.
func (pl *pipeline) finish() error {
	if pl.readErr != io.EOF {
		return pl.endEarly()
	}
	if pl.check != nil && !bytes.Equal(pl.sum.Sum(nil), pl.check.Sum) {
		return fmt.Errorf("%w: %s of the %d bytes received differs from Upload-Checksum", ErrChecksumMismatch, pl.check.Algorithm, pl.pos+int64(pl.fill)-pl.start)
	}
	// Everything read is hashed; store what is in buf: as the last bytes
	// of the file, as one more part, or as the tail kept with the state.
	u, s, hs := pl.u, pl.u.s, marshalHash(pl.h)
	switch {
	case s.Size >= 0 && pl.pos+int64(pl.fill) == s.Size:
		return u.storeLast(pl.ctx, pl.buf[:pl.fill], hs)
	case pl.check != nil && pl.fill <= len(s.tail) && s.Offset > pl.start:
		return u.in.saveState(pl.ctx, s) // parts committed in memory only
	}
	return u.storeSome(pl.ctx, pl.buf[:pl.fill], hs)
}

// endEarly ends a request that stopped before its end (its connection
// dropped): what arrived is kept, as at a normal end, unless it came with
// a checksum it did not complete or the server is stopping.
func (pl *pipeline) endEarly() error {
	if pl.check == nil && pl.ctx.Err() == nil {
		if err := pl.u.storeSome(pl.ctx, pl.buf[:pl.fill], marshalHash(pl.h)); err != nil {
			return errors.Join(pl.readErr, err)
		}
	}
	return pl.readErr
}

// close gives back what the pipeline holds, however it ended, in this
// order: the buffer being filled; the pump; the parts still in flight,
// waited for (their buffers are in use) but not committed: after an early
// return, a resume sends them again.
func (pl *pipeline) close() {
	if pl.pooled {
		pl.u.in.buffers.put(pl.buf)
	}
	pl.p.stop()
	for _, job := range pl.queue {
		<-job.done
		pl.u.in.buffers.put(job.buf)
	}
	pl.queue = nil
}

// clientEnd is why reading the client stopped, with a reader's
// io.ErrUnexpectedEOF taken as the client's end, io.EOF.
func clientEnd(err error) error {
	if err == io.ErrUnexpectedEOF {
		return io.EOF
	}
	return err
}

// newJob prepares part number of the upload; the job carries everything
// sendPart needs, as sendPart runs while the state changes.
func (u *Upload) newJob(buf []byte, number int) *partJob {
	return &partJob{caseID: u.s.Case, id: u.s.ID, key: objectKey(u.s.Case, u.s.ID), upload: u.s.Multipart, buf: buf, number: number, done: make(chan struct{})}
}

func (u *Upload) sendPart(ctx context.Context, job *partJob) {
	defer close(job.done)
	if !u.in.holds(job.caseID, job.id) {
		job.err = fmt.Errorf("%w: upload %s: the lease ran out before part %d was sent", ErrLockLost, job.id, job.number)
		return
	}
	job.part, job.err = u.in.store.PutPart(ctx, job.key, job.upload, job.number, bytes.NewReader(job.buf), int64(len(job.buf)))
}
