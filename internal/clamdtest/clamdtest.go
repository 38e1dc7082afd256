// Package clamdtest runs a real ClamAV daemon, clamd, on 127.0.0.1 for
// tests, with a signature database of its own written into a temporary
// folder (no signature download happens): one signature for the EICAR test
// file and one for Pattern. The clamd binary comes from Debian's
// clamav-daemon package (`make test-deps` installs it).
package clamdtest

import (
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/testdaemon"
)

// readyTimeout bounds how long Start waits for clamd to answer PING.
const readyTimeout = 60 * time.Second

// EICAR is the anti-malware test file (https://www.eicar.org), in pieces
// so that this source file is not itself taken for it.
var EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*"

// Pattern is a test string of our own that the database also flags.
const Pattern = "casedrop-clamdtest-" + "malware-pattern"

// The names clamd reports for the two signatures (it marks signatures
// that do not come from ClamAV's own databases as .UNOFFICIAL).
const (
	EICARSignature   = "Casedrop.Test.EICAR.UNOFFICIAL"
	PatternSignature = "Casedrop.Test.Pattern.UNOFFICIAL"
)

// Options says how to run clamd.
type Options struct {
	// StreamMaxLength is clamd's limit on an INSTREAM scan, as clamd.conf
	// takes it ("1M", "64K"); empty means 1M, small enough for tests to
	// go over it.
	StreamMaxLength string
}

// Server is a running clamd.
type Server struct {
	// Address is tcp://127.0.0.1:port, as casedrop's --scan-clamd takes it.
	Address string
	// HostPort is 127.0.0.1:port.
	HostPort string

	daemon *testdaemon.Daemon
}

// Start writes the database and the configuration into a temporary folder,
// starts clamd in the foreground and returns once it answers PING. clamd
// is stopped when the test ends; if the test failed, its log is printed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("clamd")
	if err != nil {
		bin = "/usr/sbin/clamd" // off PATH for users outside the admin group
		if _, statErr := os.Stat(bin); statErr != nil {
			t.Fatalf("clamdtest: clamd is not installed (%v): run `make test-deps` (Debian's clamav-daemon package)", err)
		}
	}
	if opts.StreamMaxLength == "" {
		opts.StreamMaxLength = "1M"
	}
	dir := t.TempDir()
	logPath, confPath, dbDir := filepath.Join(dir, "clamd.log"), filepath.Join(dir, "clamd.conf"), filepath.Join(dir, "db")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("clamdtest: clamd's log is %s:\n%s", logPath, testdaemon.Tail(logPath, 40))
		}
	})
	if err := writeDatabase(dbDir); err != nil {
		t.Fatalf("clamdtest: %v", err)
	}
	d, err := testdaemon.Start(t, testdaemon.Spec{
		Name:         "clamd",
		Args:         []string{bin, "-c", confPath},
		Configure:    func(port int) error { return writeConfig(confPath, port, dbDir, opts) },
		Ready:        ping,
		ReadyTimeout: readyTimeout,
		Output:       logPath,
	})
	if err != nil {
		t.Fatalf("clamdtest: %v", err)
	}
	return &Server{Address: "tcp://" + d.HostPort, HostPort: d.HostPort, daemon: d}
}

// Restart starts clamd again on the same port after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.daemon.Restart(); err != nil {
		t.Fatalf("clamdtest: restart: %v", err)
	}
}

// Stop kills clamd and waits for it to exit; harmless when it is not
// running.
func (s *Server) Stop() { s.daemon.Stop() }

// ping asks clamd at hostPort for PONG.
func ping(hostPort string) error {
	conn, err := net.DialTimeout("tcp", hostPort, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("zPING\x00")); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, _ := conn.Read(buf)
	if got := strings.TrimRight(string(buf[:n]), "\x00\n"); got != "PONG" {
		return fmt.Errorf("PING answered %q", got)
	}
	return nil
}

// writeDatabase writes an extended signature file (.ndb: name, target
// type 0 = any file, offset * = anywhere, the bytes in hex) flagging
// EICAR and Pattern.
func writeDatabase(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	sig := func(name, text string) string {
		return strings.TrimSuffix(name, ".UNOFFICIAL") + ":0:*:" + hex.EncodeToString([]byte(text)) + "\n"
	}
	db := sig(EICARSignature, EICAR) + sig(PatternSignature, Pattern)
	return os.WriteFile(filepath.Join(dir, "casedrop-test.ndb"), []byte(db), 0o600)
}

// writeConfig writes clamd.conf: in the foreground, on 127.0.0.1:port
// only, with the test database and the stream limit of opts.
func writeConfig(path string, port int, dbDir string, opts Options) error {
	conf := strings.Join([]string{
		"Foreground yes",
		"TCPSocket " + strconv.Itoa(port),
		"TCPAddr 127.0.0.1",
		"DatabaseDirectory " + dbDir,
		"StreamMaxLength " + opts.StreamMaxLength,
		"TemporaryDirectory " + filepath.Dir(dbDir), // not /tmp: it goes with the test
		"LogVerbose yes",
		"SelfCheck 0", // no reloading of the database while tests run
		"",
	}, "\n")
	return os.WriteFile(path, []byte(conf), 0o600)
}
