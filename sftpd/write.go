package sftpd

import (
	"cmp"
	"context"
	"io"
	"slices"
	"sync"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/upload"
)

// maxAhead bounds, per handle, how far beyond the next byte to store a
// write may reach, and so the memory held for writes that arrived early.
// Real clients stay far below it: OpenSSH keeps 64 requests of 32 KiB in
// flight (2 MiB), and pkg/sftp's server hands a handle's writes to 8
// workers, so writes arrive a few packets out of order.
const maxAhead = 16 << 20

// writeHandle is a file open for upload. One long upload.Write runs for the
// handle's life, reading from a pipe; WriteAt puts the client's writes into
// the pipe in file order. A write that continues the bytes already on their
// way (in the pipe, or in a WriteAt waiting for its turn) waits for its
// turn, holding no copy: that is every write of a client that sends in
// order, as pkg/sftp's workers take them a few at a time. A write beyond
// them is kept (pkg/sftp's own buffer, see keep) until the bytes before it
// have come. What ends
// the upload is the handle's close: with every byte in place the file is
// finished (upload.Finish, which gives it the server's SHA-256), or, for a
// name ending in ".filepart", marked in its saved state as closed whole
// for its rename to finish; after a dropped connection (TransferError) or
// with bytes missing it stays a partial that the client can resume. A
// clean close is no proof that the client sent everything (Ctrl-C in sftp
// and lftp closes cleanly too), so the uploader may continue a complete
// file from its end: a handle opened on it without truncating reopens it
// (upload.Reopen) at its first write.
type writeHandle struct {
	sess   *session
	name   string
	ctx    context.Context // the server's: storing outlives the request
	up     *upload.Upload
	unlock func() // lets go of the upload's lock
	slot   func() // gives back the credential's writer slot
	pw     *io.PipeWriter
	done   chan struct{} // closed when upload.Write has returned

	// grows is the complete file this handle continues from its end at its
	// first write (upload.Reopen), until then; a handle that never writes
	// leaves the file as it was.
	startMu sync.Mutex
	grows   *cases.File

	mu sync.Mutex
	// turn is signalled when next moves or broken is set: a WriteAt in
	// line waits on it for next to reach its offset.
	turn sync.Cond
	next int64 // file offset of the next byte the pipe takes
	// queued is where the bytes on their way end: those a WriteAt is
	// putting into the pipe and those of the WriteAts in line behind it;
	// next when there are none.
	queued      int64
	ahead       []segment // writes beyond queued, by offset
	aheadBytes  int64
	broken      error // once set, every later write fails with it
	interrupted bool  // connection lost or taken over: never finish
}

// segment is a write that arrived before the bytes preceding it.
type segment struct {
	off  int64
	data []byte
}

// start begins storing at the upload's stored offset.
// The handle holds the upload's lock (unlock lets go of it).
func (h *writeHandle) start(up *upload.Upload, unlock func()) {
	pr, pw := io.Pipe()
	h.mu.Lock()
	h.up, h.unlock, h.pw = up, unlock, pw
	h.next = up.Info().Offset
	h.queued = h.next
	h.done = make(chan struct{})
	stopped := h.interrupted // another session took over while this one opened
	h.mu.Unlock()
	h.sess.srv.writing.add(up.Info().ID, h)
	go func(offset int64) {
		_, err := up.Write(h.ctx, offset, pr)
		if err != nil {
			err = h.sess.status("write", h.name, err) // logged once, here
		}
		// A Write that stopped early must not leave a WriteAt blocked.
		pr.CloseWithError(errInterrupted)
		h.mu.Lock()
		if err != nil && h.broken == nil {
			h.broken = err
		}
		h.turn.Broadcast()
		h.mu.Unlock()
		close(h.done)
	}(h.next)
	if stopped {
		h.halt()
	}
}

// continueAt continues the complete file the handle was opened on, if it
// was, for a first write at off: from its end, never over its bytes.
func (h *writeHandle) continueAt(off int64) error {
	h.startMu.Lock()
	defer h.startMu.Unlock()
	f := h.grows
	if f == nil {
		return nil
	}
	h.grows = nil
	err := h.reopen(*f, off)
	if err != nil {
		h.mu.Lock()
		h.fail(err)
		h.mu.Unlock()
	}
	return err
}

func (h *writeHandle) reopen(f cases.File, off int64) error {
	if off < f.Size {
		return errOverwrite
	}
	unlock, err := h.sess.srv.cfg.Ingest.Lock(h.ctx, h.sess.claims.Case, f.Object, h.stop)
	if err != nil {
		return h.sess.status("open", h.name, err)
	}
	up, err := h.sess.srv.cfg.Ingest.Reopen(h.ctx, h.sess.claims.Case, f.Name, h.sess.actor())
	if err == nil && up.Info().ID != f.Object {
		err = errBusy // removed and uploaded again meanwhile
	}
	if err != nil {
		unlock()
		return h.sess.status("open", h.name, err)
	}
	h.sess.log.Info("sftp upload continues a complete file from its end", "file", h.name, "upload", f.Object, "size", f.Size)
	h.start(up, unlock)
	return nil
}

// WriteAt stores p at off. Bytes already stored or on their way are
// acknowledged and dropped: a resuming client may send again a little of
// what arrived.
func (h *writeHandle) WriteAt(p []byte, off int64) (int, error) {
	if err := h.continueAt(off); err != nil {
		return 0, err
	}
	n := len(p)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.broken != nil {
		return 0, h.broken
	}
	if off < 0 || off > h.next+maxAhead { // offsets arrive as uint64
		h.fail(errTooFarAhead)
		return 0, errTooFarAhead
	}
	if off < h.queued {
		skip := min(h.queued-off, int64(len(p)))
		p, off = p[skip:], off+skip
	}
	if len(p) == 0 {
		return n, nil
	}
	if off != h.queued {
		if err := h.keep(off, p); err != nil {
			return 0, err
		}
		return n, nil
	}
	// p continues the bytes on their way: wait in line for them to be in
	// the pipe, then put p there, and whatever was kept that follows it.
	h.queued = off + int64(len(p))
	for h.next != off && h.broken == nil {
		h.turn.Wait()
	}
	for p != nil && h.broken == nil {
		if err := h.feed(p); err != nil {
			return 0, err
		}
		if h.next != h.queued {
			return n, nil // the next in line takes over
		}
		p = h.popContiguous()
		h.queued = max(h.queued, h.next+int64(len(p)))
	}
	if h.broken != nil {
		return 0, h.broken
	}
	return n, nil
}

// feed puts p, the bytes at next, into the pipe. h.mu is held, and let go
// of while the pipe takes them.
func (h *writeHandle) feed(p []byte) error {
	h.mu.Unlock()
	m, err := h.pw.Write(p)
	h.sess.bytesIn.Add(int64(m))
	h.mu.Lock()
	h.next += int64(m)
	h.turn.Broadcast()
	if err == nil {
		return nil
	}
	// The upload stopped: wait for what stopped it.
	h.mu.Unlock()
	<-h.done
	h.mu.Lock()
	h.fail(errInterrupted)
	return h.broken
}

// fail makes every later write fail with err, unless one failed already.
// h.mu is held.
func (h *writeHandle) fail(err error) {
	if h.broken == nil {
		h.broken = err
	}
	h.turn.Broadcast()
}

// keep holds a write that arrived early, without copying it: pkg/sftp's
// request server (without sftp.WithRSAllocator, see serveSFTP) reads each
// request into a buffer of its own and never reuses it, and holds the
// request until its answer goes, after the answers to the writes before
// it. A copy held each early byte twice: 4 MiB instead of 2 for an
// OpenSSH client whose upload waits for a part buffer. h.mu is held.
func (h *writeHandle) keep(off int64, p []byte) error {
	if off+int64(len(p))-h.next > maxAhead || h.aheadBytes+int64(len(p)) > maxAhead {
		h.broken = errTooFarAhead
		return errTooFarAhead
	}
	i, _ := slices.BinarySearchFunc(h.ahead, off, func(s segment, off int64) int { return cmp.Compare(s.off, off) })
	h.ahead = slices.Insert(h.ahead, i, segment{off: off, data: p})
	h.aheadBytes += int64(len(p))
	return nil
}

// popContiguous takes the kept bytes that continue at h.next, or nil.
// h.mu is held.
func (h *writeHandle) popContiguous() []byte {
	for len(h.ahead) > 0 && h.ahead[0].off <= h.next {
		s := h.ahead[0]
		h.ahead = h.ahead[1:]
		h.aheadBytes -= int64(len(s.data))
		if end := s.off + int64(len(s.data)); end > h.next {
			return s.data[h.next-s.off:]
		}
	}
	if len(h.ahead) == 0 {
		h.ahead = nil // let the backing array go
	}
	return nil
}

// TransferError is how pkg/sftp says the connection dropped with the file
// open; Close follows. The upload keeps what arrived in order and is not
// finished, so that the client can resume it.
func (h *writeHandle) TransferError(error) {
	h.mu.Lock()
	h.interrupted = true
	pw := h.pw
	h.mu.Unlock()
	if pw != nil {
		_ = pw.Close()
	}
}

// written is how far the client's writes reach: the file's size as the
// client sees it, ahead of what is stored while parts fill.
func (h *writeHandle) written() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	end := h.next
	for _, seg := range h.ahead {
		end = max(end, seg.off+int64(len(seg.data)))
	}
	return end
}

// stop makes the handle let go of its upload for another session that
// continues it: it stores what arrived in order and fails later writes.
func (h *writeHandle) stop() {
	h.mu.Lock()
	h.interrupted = true
	h.fail(errTakenOver)
	started := h.pw != nil
	h.mu.Unlock()
	if started {
		h.halt()
	}
}

// halt ends the input and lets go of the lock once what arrived is stored.
func (h *writeHandle) halt() {
	_ = h.pw.Close()
	go func() {
		<-h.done
		h.letGo()
	}()
}

// letGo gives back the lock and the writer slot once storing has ended.
func (h *writeHandle) letGo() {
	h.sess.srv.writing.remove(h.up.Info().ID, h)
	h.unlock()
	h.slot()
}

// Close ends the upload: finished when every byte is in place (a
// .filepart is left for its rename to finish), otherwise kept as a
// resumable partial. A handle on a complete file that wrote nothing
// leaves it as it was.
func (h *writeHandle) Close() error {
	h.startMu.Lock()
	h.grows = nil
	h.startMu.Unlock()
	h.mu.Lock()
	started, broken := h.pw != nil, h.broken
	h.mu.Unlock()
	if !started {
		h.slot()
		return broken
	}
	_ = h.pw.Close() // end of input: Write stores what it has
	<-h.done
	defer h.letGo()
	h.mu.Lock()
	interrupted, broken, holes := h.interrupted, h.broken, len(h.ahead) > 0
	h.ahead, h.aheadBytes = nil, 0
	h.mu.Unlock()
	stored := h.up.Info().Offset
	log := h.sess.log.With("file", h.name, "upload", h.up.Info().ID, "stored", stored)
	switch {
	case interrupted:
		log.Info("sftp upload interrupted; it stays resumable")
		if broken != nil {
			return h.sess.status("close", h.name, broken)
		}
		return errInterrupted
	case broken != nil:
		log.Info("sftp upload failed; it stays resumable", "err", broken)
		return h.sess.status("close", h.name, broken)
	case holes:
		log.Info("sftp upload closed with gaps; it stays resumable")
		return errHoles(stored)
	case isFilepart(h.name):
		// WinSCP closes a cancelled upload cleanly too: only the rename
		// to the real name says it is done.
		if err := h.up.MarkClosed(h.ctx); err != nil {
			return h.sess.status("close", h.name, err)
		}
		log.Info("sftp .filepart closed; its rename to the real name finishes it")
		return nil
	}
	if _, err := h.up.Finish(h.ctx); err != nil {
		return h.sess.status("finish", h.name, err)
	}
	return nil
}

// readWriteHandle is a writeHandle opened with read access too, as
// pkg/sftp's own client does on Create; reading back is refused.
type readWriteHandle struct{ *writeHandle }

func (readWriteHandle) ReadAt([]byte, int64) (int, error) { return 0, errWriteOnly }
