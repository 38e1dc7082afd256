package sftpd

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
)

// readSizes is a channel that serves data and records how much each read
// asked for; x/crypto/ssh answers each read with a window adjust.
type readSizes struct {
	ssh.Channel
	data  *bytes.Reader
	sizes []int
}

func (c *readSizes) Read(p []byte) (int, error) {
	c.sizes = append(c.sizes, len(p))
	return c.data.Read(p)
}

func TestTheSFTPServerReadsItsChannelInLargeReads(t *testing.T) {
	// Eight SFTP requests of 32 KiB, read as pkg/sftp does: the length,
	// then the rest.
	const n, size = 8, 32 << 10
	var stream bytes.Buffer
	for range n {
		stream.Write(binary.BigEndian.AppendUint32(nil, size))
		stream.Write(make([]byte, size))
	}
	ch := &readSizes{data: bytes.NewReader(stream.Bytes())}
	var seen atomic.Int64
	s := newSFTPStream(ch, &seen)
	for range n {
		var length [4]byte
		if _, err := io.ReadFull(s, length[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, make([]byte, binary.BigEndian.Uint32(length[:]))); err != nil {
			t.Fatal(err)
		}
	}
	if most := n*(4+size)/channelReadSize + 1; len(ch.sizes) > most {
		t.Fatalf("%d reads of the channel for %d requests (sizes %v), want at most %d", len(ch.sizes), n, ch.sizes, most)
	}
	if seen.Load() < 2*n {
		t.Errorf("%d reads counted for the idle timeout, want one for each of the server's %d", seen.Load(), 2*n)
	}
}
