package sftpd_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/storage"
)

const sftpOnly = "casedrop speaks SFTP only: "

// ran is what a command run over an exec channel gave.
type ran struct {
	stdout, stderr string
	status         int
}

// run starts a session on c, lets start begin its program (an exec, a
// shell, a subsystem) and waits for it to end.
func run(t *testing.T, c *conn, start func(*ssh.Session) error) ran {
	t.Helper()
	s, err := c.ssh.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	stuck := time.AfterFunc(10*time.Second, func() { s.Close() })
	defer stuck.Stop()
	if err := start(s); err != nil {
		t.Fatalf("starting the program: %v", err)
	}
	err = s.Wait()
	var exit *ssh.ExitError
	r := ran{stdout: stdout.String(), stderr: stderr.String()}
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.status = exit.ExitStatus()
	default:
		t.Fatalf("the program did not end with a status: %v", err)
	}
	return r
}

// runSubsystem runs subsystem name on a channel of c. (x/crypto/ssh's
// Session waits only for what it started, and it does not start
// subsystems.)
func runSubsystem(t *testing.T, c *conn, name string) ran {
	t.Helper()
	ch, reqs, err := c.ssh.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	stuck := time.AfterFunc(10*time.Second, func() { ch.Close() })
	defer stuck.Stop()
	if ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{name})); !ok || err != nil {
		t.Fatalf("subsystem %s: %v, %v", name, ok, err)
	}
	var stderr []byte
	read := make(chan struct{})
	go func() {
		defer close(read)
		stderr, _ = io.ReadAll(ch.Stderr())
	}()
	stdout, _ := io.ReadAll(ch)
	<-read
	r := ran{stdout: string(stdout), stderr: string(stderr), status: -1}
	for req := range reqs {
		if req.Type == "exit-status" && len(req.Payload) == 4 {
			r.status = int(binary.BigEndian.Uint32(req.Payload))
		}
	}
	return r
}

// runCommand runs line over an exec channel of c.
func runCommand(t *testing.T, c *conn, line string) ran {
	t.Helper()
	return run(t, c, func(s *ssh.Session) error { return s.Start(line) })
}

// wantFailure checks that r failed with exactly one line on stderr,
// beginning with prefix, and nothing on stdout.
func wantFailure(t *testing.T, what string, r ran, prefix string) {
	t.Helper()
	if r.status == 0 || r.stdout != "" || !strings.HasPrefix(r.stderr, prefix) ||
		strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("%s: exit status %d, stdout %q, stderr %q; want a failure, nothing on stdout and one line beginning %q on stderr",
			what, r.status, r.stdout, r.stderr, prefix)
	}
}

func TestCommandsShellsAndOtherSubsystemsGetOneLineSayingSFTPOnlyAndFail(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	for _, line := range []string{
		"ls",
		"scp -t .",                               // scp -O file host:
		"rsync --server -logDtpre.iLsfxCIvu . .", // rsync file host:
		"echo ${ShellId}%ComSpec%",               // rclone's shell probe
		"sha256sum a; cat /etc/passwd",
		"sha256sum a | cat",
		"sha256sum a && ls",
		"sha256sum $(id)",
		"sha256sum a > b",
		"sha256sum *",
		"sha256sum 'a",
		"",
	} {
		wantFailure(t, "exec "+line, runCommand(t, c, line), sftpOnly)
	}
	wantFailure(t, "subsystem foo", runSubsystem(t, c, "foo"), sftpOnly)
	wantFailure(t, "shell", run(t, c, func(s *ssh.Session) error { return s.Shell() }), sftpOnly)

	t.Run("an interactive shell, as ssh host asks for it, gets its line ended for a terminal", func(t *testing.T) {
		r := run(t, c, func(s *ssh.Session) error {
			if err := s.Setenv("LANG", "C.UTF-8"); err != nil {
				return err
			}
			if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
				return err
			}
			return s.Shell()
		})
		if r.status == 0 || !strings.HasPrefix(r.stderr, sftpOnly) || !strings.HasSuffix(r.stderr, "\r\n") {
			t.Errorf("exit status %d, stderr %q", r.status, r.stderr)
		}
	})
	if _, err := c.ReadDir("/"); err != nil {
		t.Fatalf("SFTP on the same connection after the commands: %v", err)
	}
}

func TestSha256sumAnswersFromTheStoredDigestOfTheCasesCompleteFiles(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		e.openCase(t, "case-2")
		cr := e.issue(t, "case-1", 0)
		c := e.login(t, cr)
		report, odd := randomBytes(100_000, 1), randomBytes(10, 2)
		put(t, c, "report.txt", report)
		put(t, c, "it's a 'test' (1).log", odd)
		e.partial(t, cr, "partial.bin", randomBytes(70_000, 3))
		put(t, e.login(t, e.issue(t, "case-2", 0)), "other.txt", randomBytes(10, 4))

		for _, tc := range []struct{ line, stdout string }{
			{"sha256sum report.txt", sha(report) + "  report.txt\n"},
			{"sha256sum /report.txt", sha(report) + "  /report.txt\n"},
			{"sha256sum -- /report.txt", sha(report) + "  /report.txt\n"},
			{`sha256sum /it\'s\ a\ \'test\'\ \(1\).log report.txt`, sha(odd) + "  /it's a 'test' (1).log\n" + sha(report) + "  report.txt\n"},
			{`sha256sum 'it'\''s a '\''test'\'' (1).log'`, sha(odd) + "  it's a 'test' (1).log\n"},
			{`sha256sum "it's a 'test' (1).log"`, sha(odd) + "  it's a 'test' (1).log\n"},
		} {
			r := runCommand(t, c, tc.line)
			if r.status != 0 || r.stdout != tc.stdout || r.stderr != "" {
				t.Errorf("%s: exit status %d, stdout %q, stderr %q; want 0 and %q", tc.line, r.status, r.stdout, r.stderr, tc.stdout)
			}
		}

		for _, tc := range []struct{ line, stderr string }{
			{"sha256sum nope.txt", "sha256sum: nope.txt: No such file or directory\n"},
			{"sha256sum partial.bin", "sha256sum: partial.bin: No such file or directory\n"},
			{"sha256sum other.txt", "sha256sum: other.txt: No such file or directory\n"},
			{"sha256sum ../case-2/other.txt", "sha256sum: ../case-2/other.txt: No such file or directory\n"},
			{"sha256sum ../report.txt", "sha256sum: ../report.txt: No such file or directory\n"},
			{"sha256sum ./report.txt", "sha256sum: ./report.txt: No such file or directory\n"},
			{"sha256sum /", "sha256sum: /: Is a directory\n"},
			{"sha256sum 'no such.txt'", "sha256sum: 'no such.txt': No such file or directory\n"},
			{"sha256sum 'a\nb'", "sha256sum: \"a\\nb\": No such file or directory\n"},
		} {
			r := runCommand(t, c, tc.line)
			if r.status != 1 || r.stdout != "" || r.stderr != tc.stderr {
				t.Errorf("%s: exit status %d, stdout %q, stderr %q; want 1 and %q", tc.line, r.status, r.stdout, r.stderr, tc.stderr)
			}
		}

		t.Run("of a found file and a missing one, it prints the one, complains of the other and fails", func(t *testing.T) {
			r := runCommand(t, c, "sha256sum report.txt nope.txt")
			if r.status != 1 || r.stdout != sha(report)+"  report.txt\n" || r.stderr != "sha256sum: nope.txt: No such file or directory\n" {
				t.Errorf("exit status %d, stdout %q, stderr %q", r.status, r.stdout, r.stderr)
			}
		})
		for _, line := range []string{"sha256sum", "sha256sum -c report.txt", "sha256sum -", "sha256sum -- -", "sha256sum --tag report.txt", "sha256sum" + strings.Repeat(" report.txt", 1001)} {
			wantFailure(t, line, runCommand(t, c, line), `sha256sum: casedrop answers "sha256sum FILE..."`)
		}
		if !strings.Contains(e.logs.String(), `msg="sha256sum answered"`) {
			t.Error("no sha256sum logged")
		}
	})
}

func TestOtherDigestsAreRefusedSoThatRcloneFindsOnlySHA256(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	put(t, c, "report.txt", randomBytes(10, 1))
	// rclone probes each with empty input and takes a command whose output
	// is the digest of nothing; a failure means "not supported".
	for _, line := range []string{"md5sum", "sha1sum", "md5 -r", "sha1 -r", "md5sum report.txt", "sha512sum report.txt"} {
		name, _, _ := strings.Cut(line, " ")
		wantFailure(t, line, runCommand(t, c, line), name+": casedrop keeps SHA-256 digests only")
	}
	for _, line := range []string{"rclone md5sum", "rclone hashsum sha256"} {
		wantFailure(t, line, runCommand(t, c, line), sftpOnly)
	}
}
