package web

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A download's TLS records leave in one write system call per chunk
// instead of one each. crypto/tls writes every record (16 KiB at most) with
// its own write, and Go's HTTP/2 server splits each 16 KiB DATA frame in two
// through its 4 KiB buffer, so a download cost one system call, and a
// wakeup of the client, per 8 to 16 KiB. While a download writes a chunk,
// its connection holds the records and writes them at once when the chunk
// is through (see copyStream).

const (
	// heldFlushAt is how many held bytes are written without waiting for
	// the chunk's end; a chunk is copyBufSize, so it is one write.
	heldFlushAt = 256 << 10
	// heldMax bounds how long bytes stay held. An HTTP/2 chunk may wait for
	// the client's flow-control window, which the client only opens for
	// bytes it has received: held bytes must not wait for that.
	heldMax = time.Millisecond
)

// heldConnListener hands out connections that can hold writes.
type heldConnListener struct{ net.Listener }

// Listener wraps the HTTPS server's TCP listener so that downloads write
// their TLS records in fewer system calls. Serve TLS on what it returns.
func Listener(l net.Listener) net.Listener { return heldConnListener{l} }

func (l heldConnListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newHeldConn(c, heldMax), nil
}

// heldConn is a connection whose writes can be held and joined: while a
// holder holds it, writes go into held, which goes out once the last holder
// lets go, when heldFlushAt bytes are held, or heldMax after the first of
// them, whichever comes first. With no holder it writes straight through.
//
// Holders never wait for the connection: a client that stops reading
// blocks the writers (an HTTP/1.1 one until the write deadline), but the
// handler holding an HTTP/2 connection goes on to see its stream end.
type heldConn struct {
	net.Conn
	maxHold time.Duration // heldMax
	holds   atomic.Int32
	timer   *time.Timer // writes what is held when it fires

	mu   sync.Mutex // held across the writes, which keeps them in order
	held []byte
	err  error // a failed write of held bytes, for the next Write
}

func newHeldConn(c net.Conn, maxHold time.Duration) *heldConn {
	hc := &heldConn{Conn: c, maxHold: maxHold}
	hc.timer = time.AfterFunc(time.Hour, hc.flushLate)
	hc.timer.Stop()
	return hc
}

var heldBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, heldFlushAt+32<<10)
	return &b
}}

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holds.Load() == 0 {
		if err := c.flush(); err != nil {
			return 0, err
		}
		return c.Conn.Write(p)
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.held == nil {
		c.held = (*heldBufs.Get().(*[]byte))[:0]
	}
	if len(c.held) == 0 {
		c.timer.Reset(c.maxHold)
	}
	c.held = append(c.held, p...)
	if len(c.held) >= heldFlushAt {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// hold holds the connection's writes until the returned function is
// called, which has what is held written at once.
func (c *heldConn) hold() (release func()) {
	c.holds.Add(1)
	return func() {
		if c.holds.Add(-1) == 0 {
			c.timer.Reset(0)
		}
	}
}

// flush writes the held bytes; c.mu is locked. The buffer goes back to
// the pool once no one holds the connection.
func (c *heldConn) flush() error {
	if c.err != nil {
		return c.err
	}
	if len(c.held) > 0 {
		c.timer.Stop()
		_, c.err = c.Conn.Write(c.held)
		c.held = c.held[:0]
	}
	if c.held != nil && c.holds.Load() == 0 {
		b := c.held
		heldBufs.Put(&b)
		c.held = nil
	}
	return c.err
}

// flushLate writes what is held once the last holder let go, or heldMax
// after it came; a failure reaches the next Write.
func (c *heldConn) flushLate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.flush()
}

// Close drops what is held: whoever closes a connection in the middle of
// a response has given up on it. It does not wait for c.mu, so that it
// ends a write stuck on a client that stopped reading.
func (c *heldConn) Close() error {
	c.timer.Stop()
	return c.Conn.Close()
}

type heldConnKey struct{}

// withHeldConn is the server's ConnContext: it puts the connection under
// TLS, if it can hold writes, into the context of its requests.
func withHeldConn(ctx context.Context, c net.Conn) context.Context {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		if hc, ok := nc.NetConn().(*heldConn); ok {
			return context.WithValue(ctx, heldConnKey{}, hc)
		}
	}
	return ctx
}

// holdWrites holds the writes of the request's connection, if it can hold
// them, until the returned function is called.
func holdWrites(ctx context.Context) (release func()) {
	if hc, ok := ctx.Value(heldConnKey{}).(*heldConn); ok {
		return hc.hold()
	}
	return func() {}
}
