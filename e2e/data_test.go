package e2e

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blockSize is the unit of generated data. Each block is computed from its
// index alone, so a stream can start at any offset (a resume) without
// producing the bytes before it.
const blockSize = 1 << 20

// pattern is deterministic, incompressible test data of any length: a
// random 1 MiB base, mixed per block with a key of the block's index, so
// that no two blocks are alike and producing 1 MiB costs one pass of
// multiplies and XORs (several GB/s), far below hashing or TLS.
type pattern struct {
	seed uint64
	base [blockSize / 8]uint64
}

func newPattern(seed uint64) *pattern {
	p := &pattern{seed: seed}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	for i := range p.base {
		p.base[i] = r.Uint64()
	}
	return p
}

// block writes block i into dst, which is blockSize bytes long.
func (p *pattern) block(i int64, dst []byte) {
	k := splitmix64(p.seed ^ uint64(i)*0xbf58476d1ce4e5b9)
	for j, w := range p.base {
		binary.LittleEndian.PutUint64(dst[j*8:], w^(k*uint64(2*j+1)))
	}
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// stream returns the bytes [from, to) of the pattern as a reader.
func (p *pattern) stream(from, to int64) *stream {
	return &stream{p: p, off: from, end: to, buf: make([]byte, blockSize), bufBlock: -1, eof: make(chan struct{})}
}

// writeFile writes the first size bytes of the pattern to path and returns
// their hex SHA-256.
func (p *pattern) writeFile(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), p.stream(0, size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// stream is a range of a pattern as an io.Reader. An HTTP transport reads
// it in its own goroutine: what the test reads back goes through sent
// (atomic) and, once eof is closed, the hash.
type stream struct {
	p        *pattern
	off, end int64
	buf      []byte
	bufBlock int64

	// hash, if set, is written every byte Read returns.
	hash hash.Hash
	// hook, if set, runs once inside Read, in the reader's goroutine, when
	// the bytes up to offset at have all been returned and more are asked
	// for: the transport has passed them on by then.
	at   int64
	hook func()

	sent    atomic.Int64 // bytes returned so far
	eof     chan struct{}
	eofOnce sync.Once
}

func (s *stream) Read(b []byte) (int, error) {
	if s.hook != nil && s.off >= s.at {
		hook := s.hook
		s.hook = nil
		hook()
	}
	if s.off >= s.end {
		s.eofOnce.Do(func() { close(s.eof) })
		return 0, io.EOF
	}
	i := s.off / blockSize
	if i != s.bufBlock {
		s.p.block(i, s.buf)
		s.bufBlock = i
	}
	in := s.off % blockSize
	limit := min(int64(blockSize), in+s.end-s.off)
	if s.hook != nil && s.off < s.at {
		limit = min(limit, in+s.at-s.off)
	}
	n := copy(b, s.buf[in:limit])
	if s.hash != nil {
		s.hash.Write(b[:n])
	}
	s.off += int64(n)
	s.sent.Add(int64(n))
	return n, nil
}

// waitEOF waits until the stream has been read to its end, so that its
// hash is complete and no longer written.
func (s *stream) waitEOF(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-s.eof:
	case <-time.After(timeout):
		t.Fatalf("the upload body was not read to its end within %v (%d bytes read)", timeout, s.sent.Load())
	}
}

// TestPatternIsDeterministicSeekableAndNotRepetitive guards the generator
// the other tests rely on: a stream started mid-way gives the same bytes,
// and blocks differ from each other.
func TestPatternIsDeterministicSeekableAndNotRepetitive(t *testing.T) {
	p := newPattern(1)
	whole, err := io.ReadAll(p.stream(0, 3*blockSize))
	if err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(p.stream(blockSize+12345, 3*blockSize))
	if err != nil {
		t.Fatal(err)
	}
	if string(whole[blockSize+12345:]) != string(tail) {
		t.Fatal("a stream started at an offset differs from the same range of a stream started at 0")
	}
	if string(whole[:blockSize]) == string(whole[blockSize:2*blockSize]) {
		t.Fatal("two blocks are identical")
	}
	if again, _ := io.ReadAll(newPattern(1).stream(0, 3*blockSize)); string(again) != string(whole) {
		t.Fatal("the same seed gave different bytes")
	}
}
