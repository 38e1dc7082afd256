package clamd_test

import (
	"io"
	"net"
	"testing"
)

// listenSilent accepts connections on 127.0.0.1 and reads them without
// ever answering, until the test ends. It returns host:port.
func listenSilent(t *testing.T) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
	return l.Addr().String(), nil
}
