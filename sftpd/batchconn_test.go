package sftpd

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// socket is the connection under a batchingConn: it records each write
// and, while held, keeps a write waiting until released.
type socket struct {
	net.Conn
	mu      sync.Mutex
	writes  [][]byte
	direct  []*byte // the first byte of each write as given
	closed  bool
	err     error
	held    bool
	release chan struct{}
	started chan struct{} // a write has begun
}

func newSocket(held bool) *socket {
	return &socket{held: held, release: make(chan struct{}, 16), started: make(chan struct{}, 16)}
}

func (s *socket) Write(p []byte) (int, error) {
	s.started <- struct{}{}
	if s.held {
		<-s.release
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	s.writes = append(s.writes, bytes.Clone(p))
	s.direct = append(s.direct, &p[0])
	return len(p), s.err
}

func (s *socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *socket) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, w := range s.writes {
		out = append(out, string(w))
	}
	return out
}

func waitStarted(t *testing.T, s *socket) {
	t.Helper()
	select {
	case <-s.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no write reached the socket")
	}
}

func write(t *testing.T, c *batchingConn, p string) {
	t.Helper()
	if n, err := c.Write([]byte(p)); n != len(p) || err != nil {
		t.Fatalf("Write(%q) = %d, %v", p, n, err)
	}
}

func TestSmallPacketsThatComeWhileTheSocketIsBusyGoInOneWrite(t *testing.T) {
	s := newSocket(true)
	c := newBatchingConn(s)
	write(t, c, "a")
	waitStarted(t, s)
	write(t, c, "b") // the socket still takes "a"
	write(t, c, "c")
	s.release <- struct{}{}
	s.release <- struct{}{}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.got(); len(got) != 2 || got[0] != "a" || got[1] != "bc" {
		t.Fatalf("the socket got %q, want [a bc]", got)
	}
}

func TestALargePacketIsWrittenAsItIsAfterThePacketsBeforeIt(t *testing.T) {
	s := newSocket(true)
	c := newBatchingConn(s)
	write(t, c, "a")
	waitStarted(t, s)
	large := bytes.Repeat([]byte("L"), directWrite)
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(large)
		done <- err
	}()
	s.release <- struct{}{}
	waitStarted(t, s)
	s.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.got(); len(got) != 2 || got[0] != "a" || got[1] != string(large) {
		t.Fatalf("the socket got %d writes, want a, then the large packet", len(got))
	}
	if s.direct[1] != &large[0] {
		t.Error("the large packet was copied")
	}
}

func TestCloseWritesThePacketsStillWaitingBeforeItClosesTheSocket(t *testing.T) {
	s := newSocket(true)
	c := newBatchingConn(s)
	write(t, c, "a")
	waitStarted(t, s)
	write(t, c, "refused: too many sessions")
	s.release <- struct{}{}
	s.release <- struct{}{}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.got(); len(got) != 2 || got[1] != "refused: too many sessions" {
		t.Fatalf("the socket got %q before it was closed", got)
	}
	if _, err := c.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
}

func TestAnErrorOfTheSocketComesWithALaterWrite(t *testing.T) {
	s := newSocket(false)
	s.err = errors.New("connection reset")
	c := newBatchingConn(s)
	t.Cleanup(func() { c.Close() })
	write(t, c, "a")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Write([]byte("b"))
		if err == s.err {
			return
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("Write: %v, want the socket's error", err)
		}
		time.Sleep(time.Millisecond)
	}
}
