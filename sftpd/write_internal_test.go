package sftpd

import "testing"

// The bytes of a write that arrives early are the request's own buffer,
// which pkg/sftp does not reuse: a copy would hold them twice while the
// upload waits for a part buffer.
func TestAWriteThatArrivesEarlyIsHeldWithoutACopy(t *testing.T) {
	h := &writeHandle{next: 0}
	p := make([]byte, 32<<10)
	if err := h.keep(64<<10, p); err != nil {
		t.Fatal(err)
	}
	if len(h.ahead) != 1 || &h.ahead[0].data[0] != &p[0] {
		t.Fatal("the early write was copied")
	}
	if h.aheadBytes != int64(len(p)) {
		t.Fatalf("aheadBytes = %d, want %d", h.aheadBytes, len(p))
	}
}
