package e2e

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// cuttingProxy forwards TCP connections from 127.0.0.1 to target, counts
// the bytes clients send, and cuts the first connection whose client has
// sent cutAfter bytes: it forwards exactly cutAfter bytes of it, then
// closes both sides. It cuts once; later connections pass untouched.
type cuttingProxy struct {
	ln       net.Listener
	target   string
	cutAfter int64

	carried atomic.Int64 // client→server bytes forwarded, all connections
	cut     atomic.Bool  // the cut happened
	cutConn atomic.Int64 // client→server bytes of the cut connection

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

func startCuttingProxy(t *testing.T, target string, cutAfter int64) *cuttingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{ln: ln, target: target, cutAfter: cutAfter, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cuttingProxy) addr() string { return p.ln.Addr().String() }

func (p *cuttingProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

// track registers conns for close; false once the proxy is closing.
func (p *cuttingProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *cuttingProxy) forget(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.conns, c)
		_ = c.Close()
	}
}

func (p *cuttingProxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client, server) {
		_ = client.Close()
		_ = server.Close()
		return
	}
	defer p.forget(client, server)

	// Either direction ending ends the connection (HTTP clients do not
	// half-close).
	back := make(chan struct{})
	go func() {
		defer close(back)
		_, _ = io.Copy(client, server)
		_ = client.Close()
		_ = server.Close()
	}()
	p.forward(client, server)
	_ = client.Close()
	_ = server.Close()
	<-back
}

// forward copies client→server, counting, and cuts where it must.
func (p *cuttingProxy) forward(client, server net.Conn) {
	buf := make([]byte, 32<<10)
	var carried int64
	for {
		n, rerr := client.Read(buf)
		chunk, cutHere := buf[:n], false
		if n > 0 && carried+int64(n) >= p.cutAfter && !p.cut.Load() && p.cut.CompareAndSwap(false, true) {
			chunk, cutHere = chunk[:p.cutAfter-carried], true
		}
		w, werr := server.Write(chunk)
		carried += int64(w)
		p.carried.Add(int64(w))
		if cutHere {
			p.cutConn.Store(carried)
			return
		}
		if rerr != nil || werr != nil {
			return
		}
	}
}

func (p *cuttingProxy) close() {
	p.mu.Lock()
	p.done = true
	_ = p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
