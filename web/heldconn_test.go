package web

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// writesConn records the writes that reach the connection.
type writesConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *writesConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *writesConn) Close() error { return nil }

func (c *writesConn) written() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// waitWrites waits until n writes reached c.
func (c *writesConn) waitWrites(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(c.written()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes reached the connection in 5 s, want %d", len(c.written()), n)
		}
		time.Sleep(time.Millisecond)
	}
	return c.written()
}

func TestHeldConn(t *testing.T) {
	t.Run("writes while held leave in one write, in order, at the release", func(t *testing.T) {
		under := &writesConn{}
		c := newHeldConn(under, time.Hour)
		release := c.hold()
		for _, s := range []string{"one ", "two ", "three"} {
			if _, err := c.Write([]byte(s)); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(under.written()); n != 0 {
			t.Fatalf("%d writes reached the connection while held, want none", n)
		}
		release()
		if got := under.waitWrites(t, 1); len(got) != 1 || string(got[0]) != "one two three" {
			t.Fatalf("writes after the release: %q, want one write of %q", got, "one two three")
		}
	})
	t.Run("writes with no holder go straight through", func(t *testing.T) {
		under := &writesConn{}
		c := newHeldConn(under, time.Hour)
		c.Write([]byte("a"))
		c.Write([]byte("b"))
		if got := under.written(); len(got) != 2 {
			t.Fatalf("writes: %q, want two", got)
		}
	})
	t.Run("the connection is held until the last of two holders lets go", func(t *testing.T) {
		under := &writesConn{}
		c := newHeldConn(under, time.Hour)
		first, second := c.hold(), c.hold()
		c.Write([]byte("x"))
		first()
		c.Write([]byte("y"))
		second()
		if got := under.waitWrites(t, 1); len(got) != 1 || string(got[0]) != "xy" {
			t.Fatalf("writes: %q, want one write of %q", got, "xy")
		}
	})
	t.Run("a holder that never lets go does not keep bytes from the client", func(t *testing.T) {
		under := &writesConn{}
		c := newHeldConn(under, time.Millisecond)
		defer c.hold()()
		c.Write([]byte("window update, please"))
		under.waitWrites(t, 1)
	})
	t.Run("a full chunk is written without waiting for the release", func(t *testing.T) {
		under := &writesConn{}
		c := newHeldConn(under, time.Hour)
		defer c.hold()()
		c.Write(make([]byte, heldFlushAt))
		if got := under.written(); len(got) != 1 || len(got[0]) != heldFlushAt {
			t.Fatalf("%d writes, want one of %d bytes", len(got), heldFlushAt)
		}
	})
}

// An HTTP/2 client whose flow-control window is smaller than a chunk opens
// it only for bytes it has received: a download to it must not wait on
// bytes its connection holds.
func TestAHeldDownloadCompletesThroughASmallHTTP2Window(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), (3*copyBufSize+12345)/16)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Context().Value(heldConnKey{}).(*heldConn); !ok {
			t.Error("the request's connection cannot hold writes")
		}
		if _, err := copyStream(r.Context(), w, bytes.NewReader(body)); err != nil {
			t.Error(err)
		}
	})
	srv := httptest.NewUnstartedServer(handler)
	srv.Listener = Listener(srv.Listener)
	srv.Config.ConnContext = withHeldConn
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	client := srv.Client()
	tr := client.Transport.(*http.Transport)
	tr.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 10}
	tr.TLSClientConfig = tr.TLSClientConfig.Clone()
	tr.TLSClientConfig.NextProtos = []string{"h2"}
	tr.ForceAttemptHTTP2 = true
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("after %d bytes: %v", len(got), err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes, not the %d sent", len(got), len(body))
	}
}
