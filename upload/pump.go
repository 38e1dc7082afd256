package upload

import (
	"context"
	"errors"
	"io"
	"time"
)

// errYield stops filling a part when the client has sent nothing for a
// while and other uploads wait for a buffer: the upload stores what it
// has, gives its buffer back and waits for its client without one.
var errYield = errors.New("upload: client idle while others wait for a buffer")

// errPartStored stops filling a part for a moment: a part sent earlier is
// now stored, and the upload records it before it goes on.
var errPartStored = errors.New("upload: a part in flight is stored")

// isClosed reports whether c is closed, without waiting.
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// pumpChunk is what one read of the client gave.
type pumpChunk struct {
	buf  []byte // the whole buffer, to reuse
	data []byte // what is left of what was read
	err  error
}

// pump reads the client in a goroutine of its own, a small chunk at a
// time, so that filling a part can stop waiting for a client that went
// quiet (a read of a request body or an SFTP pipe cannot be interrupted).
type pump struct {
	chunks  chan pumpChunk
	free    chan []byte
	done    chan struct{}
	pending pumpChunk // the rest of the chunk being copied out
	ended   error     // the read error once every byte before it is out
}

// Every upload waiting for a part buffer holds its chunks full, outside
// the memory budget: 128 KiB. A read of an HTTP/1.1 body gives at most a
// TLS record (16 KiB) and common SFTP clients write 32 KiB at a time, so
// larger chunks would mostly be part empty.
const (
	pumpChunkSize = 32 << 10
	pumpChunks    = 4
)

func newPump(r io.Reader) *pump {
	p := &pump{
		chunks: make(chan pumpChunk, pumpChunks),
		free:   make(chan []byte, pumpChunks),
		done:   make(chan struct{}),
	}
	for range pumpChunks {
		p.free <- make([]byte, pumpChunkSize)
	}
	go p.run(r)
	return p
}

func (p *pump) run(r io.Reader) {
	for {
		var b []byte
		select {
		case b = <-p.free:
		case <-p.done:
			return
		}
		n, err := r.Read(b)
		// chunks has room for every buffer: this never blocks.
		p.chunks <- pumpChunk{buf: b, data: b[:n], err: err}
		if err != nil {
			return
		}
	}
}

// stop lets the reading goroutine end; it does once its read returns
// (the door closes the request body or the pipe).
func (p *pump) stop() { close(p.done) }

// next waits for the next chunk: at most until idle has passed and
// yield says others wait (then errYield), stored is closed (then
// errPartStored), or ctx ends. A nil yield waits for the client as long as
// it takes; a nil stored never ends the wait.
func (p *pump) next(ctx context.Context, idle time.Duration, yield func() bool, stored <-chan struct{}) error {
	if len(p.pending.data) > 0 || p.pending.err != nil {
		return nil
	}
	select { // a chunk at hand needs no timer: the common case
	case c := <-p.chunks:
		p.pending = c
		return nil
	default:
	}
	var timer <-chan time.Time
	if yield != nil {
		t := time.NewTicker(idle) // an I/O timeout, not domain time
		defer t.Stop()
		timer = t.C
	}
	for {
		select {
		case c := <-p.chunks:
			p.pending = c
			return nil
		case <-timer:
			if yield() {
				return errYield
			}
		case <-stored:
			return errPartStored
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// readFull fills dst like io.ReadFull: it returns len(dst) and nil, or
// fewer bytes and io.EOF (the client's end), errYield, errPartStored (when
// stored is closed while it waits for the client), or the error.
func (p *pump) readFull(ctx context.Context, dst []byte, idle time.Duration, yield func() bool, stored <-chan struct{}) (int, error) {
	n := 0
	for n < len(dst) {
		if p.ended != nil {
			return n, p.ended
		}
		if err := p.next(ctx, idle, yield, stored); err != nil {
			return n, err
		}
		c := copy(dst[n:], p.pending.data)
		n += c
		p.pending.data = p.pending.data[c:]
		if len(p.pending.data) == 0 {
			if p.pending.err != nil {
				p.ended = p.pending.err
			} else {
				p.free <- p.pending.buf
			}
			p.pending = pumpChunk{}
		}
	}
	return n, nil
}

// wait waits for the client's next byte without taking it: it reports
// false when the client has ended (ended holds why), true when a byte is
// there.
func (p *pump) wait(ctx context.Context) (bool, error) {
	for p.ended == nil {
		if err := p.next(ctx, 0, nil, nil); err != nil {
			return false, err
		}
		if len(p.pending.data) > 0 {
			return true, nil
		}
		if p.pending.err != nil {
			p.ended, p.pending = p.pending.err, pumpChunk{}
		} else { // an empty read
			p.free <- p.pending.buf
			p.pending = pumpChunk{}
		}
	}
	return false, nil
}
