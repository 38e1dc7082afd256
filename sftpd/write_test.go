package sftpd

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// newPipedHandle is a writeHandle whose pipe the test reads, with no
// upload behind it.
func newPipedHandle(t *testing.T) (*writeHandle, *io.PipeReader) {
	t.Helper()
	pr, pw := io.Pipe()
	h := &writeHandle{sess: &session{}, pw: pw, done: make(chan struct{})}
	h.turn.L = &h.mu
	t.Cleanup(func() { pr.Close() })
	return h, pr
}

// waitFor waits until cond, checked under h.mu, holds.
func waitFor(t *testing.T, h *writeHandle, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		ok := cond()
		h.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWritesInOrderWaitForThePipeInsteadOfBeingCopied(t *testing.T) {
	h, pr := newPipedHandle(t)
	const chunk, n = 32 << 10, 8
	data := make([]byte, chunk*n)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	type result struct {
		n   int
		err error
	}
	results := make(chan result, n)
	// As pkg/sftp's workers do: each write of the client in a goroutine of
	// its own, the next one started once the one before is in line.
	for i := range n {
		off := int64(i * chunk)
		go func() {
			n, err := h.WriteAt(data[off:off+chunk], off)
			results <- result{n, err}
		}()
		waitFor(t, h, fmt.Sprintf("the write at %d is in line", off), func() bool { return h.queued == off+chunk })
	}
	// Nothing has read the pipe: the first write waits for it, the others
	// in line behind it, none copied.
	select {
	case r := <-results:
		t.Fatalf("a write returned (%d, %v) before the pipe took its bytes", r.n, r.err)
	default:
	}
	h.mu.Lock()
	kept := h.aheadBytes
	h.mu.Unlock()
	if kept != 0 {
		t.Fatalf("%d bytes of writes in order were copied and kept", kept)
	}

	got := make([]byte, len(data))
	if _, err := io.ReadFull(pr, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the pipe got the bytes out of order")
	}
	for range n {
		if r := <-results; r.n != chunk || r.err != nil {
			t.Fatalf("a write returned (%d, %v), want (%d, nil)", r.n, r.err, chunk)
		}
	}
}

func TestWritesInLineFailWhenTheUploadStops(t *testing.T) {
	h, pr := newPipedHandle(t)
	errs := make(chan error, 2)
	for i := range 2 {
		off := int64(i * 10)
		go func() {
			_, err := h.WriteAt(make([]byte, 10), off)
			errs <- err
		}()
		waitFor(t, h, "the write is in line", func() bool { return h.queued == off+10 })
	}
	// The upload ends without reading: the write in the pipe fails, and
	// the one in line behind it with the same error.
	pr.CloseWithError(errInterrupted)
	close(h.done)
	for range 2 {
		if err := <-errs; err != errInterrupted {
			t.Fatalf("write returned %v, want %v", err, errInterrupted)
		}
	}
}
