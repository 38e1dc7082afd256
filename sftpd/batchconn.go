package sftpd

import (
	"net"
	"sync"
	"time"
)

const (
	// maxBatch is how many bytes of small packets may wait for the socket
	// before their writer waits too.
	maxBatch = 64 << 10
	// directWrite is the size from which a packet is not copied into the
	// batch but written by its writer, once the packets before it are out:
	// the data of a download.
	directWrite = 16 << 10
	// closeFlush bounds how long Close waits for the packets still waiting,
	// such as the reason a session is refused, to reach the socket.
	closeFlush = 5 * time.Second
)

// batchingConn is a client's connection as x/crypto/ssh writes to it. It
// writes and flushes each packet on its own: during an upload, a status
// for every 32 KiB write and a window adjust for every 64 KiB read, each
// a system call that wakes the client. Here small packets are gathered
// and written by a goroutine of their own, one system call taking every
// packet that came while the one before was under way: about a third as
// many in an upload.
type batchingConn struct {
	net.Conn
	mu sync.Mutex
	// changed is signalled when the batch is taken, a write to the socket
	// ends, or err or closed is set.
	changed sync.Cond
	batch   []byte // small packets waiting for the socket
	spare   []byte // the batch's other buffer, while one is written
	writing bool   // a write to the socket is under way
	err     error  // the socket's, returned by every later Write
	closed  bool
	kick    chan struct{} // the batch is no longer empty
	stopped chan struct{} // closed when the flusher has ended
}

func newBatchingConn(nc net.Conn) *batchingConn {
	c := &batchingConn{Conn: nc, kick: make(chan struct{}, 1), stopped: make(chan struct{})}
	c.changed.L = &c.mu
	go c.flush()
	return c
}

// Write takes p into the batch, or writes it to the socket itself once
// what came before has gone if it is large. An error of the socket comes
// with a later Write.
func (c *batchingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	direct := len(p) >= directWrite
	for c.err == nil && !c.closed && (len(c.batch) >= maxBatch || direct && (c.writing || len(c.batch) > 0)) {
		c.changed.Wait()
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closed:
		return 0, net.ErrClosed
	case direct:
		c.writing = true
		c.mu.Unlock()
		n, err := c.Conn.Write(p)
		c.mu.Lock()
		c.wrote(err)
		return n, err
	}
	c.batch = append(c.batch, p...)
	if len(c.batch) == len(p) {
		select {
		case c.kick <- struct{}{}:
		default: // the flusher has a kick waiting
		}
	}
	return len(p), nil
}

// wrote ends a write to the socket. c.mu is held.
func (c *batchingConn) wrote(err error) {
	c.writing = false
	if err != nil && c.err == nil {
		c.err = err
	}
	c.changed.Broadcast()
}

// flush writes the batch whenever it has packets, until Close.
func (c *batchingConn) flush() {
	defer close(c.stopped)
	for range c.kick {
		for c.flushBatch() {
		}
	}
}

// flushBatch writes what the batch holds; false when it held nothing or
// the socket failed.
func (c *batchingConn) flushBatch() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.writing && c.err == nil {
		c.changed.Wait()
	}
	out := c.batch
	if len(out) == 0 || c.err != nil {
		return false
	}
	c.batch, c.spare = c.spare[:0], nil
	c.writing = true
	c.changed.Broadcast() // room in the batch
	c.mu.Unlock()
	_, err := c.Conn.Write(out)
	c.mu.Lock()
	c.spare = out[:0]
	c.wrote(err)
	return err == nil
}

// Close writes the packets still waiting, for closeFlush at most, and
// closes the connection.
func (c *batchingConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.kick)
		c.changed.Broadcast()
	}
	c.mu.Unlock()
	select {
	case <-c.stopped:
	case <-time.After(closeFlush): // an I/O timeout, not domain time
	}
	return c.Conn.Close()
}
