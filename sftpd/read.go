package sftpd

import (
	"fmt"
	"io"
	"sync"

	"github.com/casedrop/casedrop/storage"
)

// Read window sizes. Clients read in order with many requests in flight
// (OpenSSH and rclone 64 of 32 KiB, 2 MiB), which pkg/sftp's workers serve
// out of order: a request may come after others up to 2 MiB further on.
const (
	// readWindow is how many bytes just read are kept, to serve requests
	// that arrive behind the stream.
	readWindow = 4 << 20
	// readSkip is how far ahead of the stream a request may start and still
	// be served by reading on rather than by seeking.
	readSkip = 4 << 20
)

// readHandle serves ReadAt from one sequential stream of the stored object:
// an object store answers each ranged read with a new request, so reading
// 32 KiB at a time through the object's ReadAt would be slow. Memory per
// handle is the window.
type readHandle struct {
	sess *session
	name string
	size int64
	slot func() // gives back the credential's read slot

	mu   sync.Mutex
	obj  storage.Object
	buf  []byte // the bytes just before pos: [pos-len(buf), pos)
	pos  int64  // offset of the next byte the stream gives
	fail error  // a stream error: later reads fail alike
}

func newReadHandle(sess *session, name string, obj storage.Object, size int64, slot func()) *readHandle {
	return &readHandle{sess: sess, name: name, obj: obj, size: size, slot: slot}
}

// errTooManyReads refuses an open for reading over the credential's cap.
func errTooManyReads(n int) error {
	return failure(fmt.Sprintf("too many files open for reading with this credential (at most %d): close one and try again", n))
}

// readSlot takes one of the credential's read slots, or fails.
func (s *Server) readSlot(credential string) (release func(), err error) {
	release, ok := s.reads.Acquire(credential)
	if !ok {
		return nil, errTooManyReads(s.reads.Max())
	}
	return release, nil
}

// ReadAt reads up to len(p) bytes at off; fewer at the end of the file,
// with io.EOF.
func (h *readHandle) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, failure("negative offset")
	}
	if off >= h.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), h.size-off, readWindow/2)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail != nil {
		return 0, h.fail
	}
	if off < h.pos-int64(len(h.buf)) || off > h.pos+readSkip {
		if _, err := h.obj.Seek(off, io.SeekStart); err != nil {
			h.fail = h.sess.status("read", h.name, err)
			return 0, h.fail
		}
		h.pos, h.buf = off, h.buf[:0]
	}
	if err := h.fill(off + want); err != nil {
		h.fail = h.sess.status("read", h.name, err)
		return 0, h.fail
	}
	n := copy(p[:want], h.buf[int64(len(h.buf))-(h.pos-off):])
	h.sess.bytesOut.Add(int64(n))
	if off+int64(n) == h.size {
		return n, io.EOF
	}
	return n, nil
}

// fill reads the stream on until pos reaches end, sliding the window.
// h.mu is held.
func (h *readHandle) fill(end int64) error {
	if h.buf == nil {
		h.buf = make([]byte, 0, min(h.size, readWindow))
	}
	for h.pos < end {
		if len(h.buf) == cap(h.buf) {
			keep := cap(h.buf) / 2
			h.buf = h.buf[:copy(h.buf, h.buf[len(h.buf)-keep:])]
		}
		m, err := h.obj.Read(h.buf[len(h.buf):cap(h.buf)])
		h.buf = h.buf[:len(h.buf)+m]
		h.pos += int64(m)
		if err == io.EOF && h.pos < end {
			return io.ErrUnexpectedEOF // the object is shorter than its catalog entry
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// Close closes the stored object.
func (h *readHandle) Close() error {
	h.slot()
	return h.obj.Close()
}
