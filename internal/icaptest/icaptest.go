// Package icaptest runs a real ICAP server, c-icap with its virus_scan
// service, on 127.0.0.1 for tests. virus_scan's clamd_mod engine asks the
// clamd of internal/clamdtest (its own signature database; nothing is
// downloaded) over TCP: c-icap spools each body into a file of the test's
// folder and has clamd scan that path, which works because both run as
// the test's user on this machine. The binaries come from Debian's c-icap
// and libc-icap-mod-virus-scan packages (`make test-deps` installs them).
package icaptest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/clamdtest"
	"github.com/casedrop/casedrop/internal/loopback"
)

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	// modulesDir is where Debian puts c-icap's modules and services.
	modulesDir = "/usr/lib/x86_64-linux-gnu/c_icap"
)

// Service is the name of c-icap's antivirus service.
const Service = "virus_scan"

// Options says how to run c-icap.
type Options struct {
	// Clamd is the clamd virus_scan asks.
	Clamd *clamdtest.Server
	// MaxObjectSize is virus_scan.MaxObjectSize ("5M"); empty means 1M.
	// c-icap lets larger files pass unscanned, with a 204 on the preview.
	MaxObjectSize string
}

// Server is a running c-icap.
type Server struct {
	// URL is icap://127.0.0.1:port/virus_scan, as --scan-icap takes it.
	URL string

	dir, logPath, bin string
	hostPort          string
	cmd               *exec.Cmd
	exited            chan struct{}
}

// Start writes c-icap.conf into a temporary folder, starts c-icap in the
// foreground and returns once its service answers OPTIONS. c-icap is
// stopped when the test ends; if the test failed, its log is printed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("c-icap")
	if err != nil {
		t.Fatalf("icaptest: c-icap is not installed (%v): run `make test-deps` (Debian's c-icap and libc-icap-mod-virus-scan)", err)
	}
	if _, err := os.Stat(filepath.Join(modulesDir, "virus_scan.so")); err != nil {
		t.Fatalf("icaptest: c-icap's virus_scan service is not installed (%v): run `make test-deps`", err)
	}
	if opts.MaxObjectSize == "" {
		opts.MaxObjectSize = "1M"
	}
	s := &Server{dir: t.TempDir(), bin: bin}
	s.logPath = filepath.Join(s.dir, "server.log")
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			data, _ := os.ReadFile(s.logPath)
			out, _ := os.ReadFile(filepath.Join(s.dir, "stdout.log"))
			t.Logf("icaptest: c-icap's log is %s:\n%s\n%s", s.logPath, tail(string(data), 40), tail(string(out), 20))
		}
	})
	// A probed port may be taken before c-icap binds it: a c-icap that
	// exits before it is ready gets a new port, twice at most.
	for attempt := 1; attempt <= 3; attempt++ {
		ports, perr := loopback.FreePorts(1)
		if perr != nil {
			t.Fatalf("icaptest: %v", perr)
		}
		s.hostPort = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		s.URL = "icap://" + s.hostPort + "/" + Service
		if err = os.WriteFile(s.configPath(), []byte(s.config(ports[0], opts)), 0o600); err != nil {
			t.Fatalf("icaptest: %v", err)
		}
		if err = s.start(); !errors.Is(err, errExited) {
			break
		}
	}
	if err != nil {
		t.Fatalf("icaptest: %v", err)
	}
	return s
}

// Restart starts c-icap again on the same port after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("icaptest: restart: %v", err)
	}
}

// Stop ends c-icap and its child processes (it runs in a process group
// of its own) and waits for it; harmless when it is not running.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	pgid := -s.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-s.exited
	}
	// Children that outlived their parent go with the group.
	_ = syscall.Kill(pgid, syscall.SIGKILL)
}

func (s *Server) configPath() string { return filepath.Join(s.dir, "c-icap.conf") }

// config is c-icap.conf: on 127.0.0.1:port only, everything in the test's
// folder, one small process, and virus_scan with clamd_mod asking the
// test's clamd. ScanFileTypes names every group of c-icap.magic: a type
// left out is passed unscanned.
func (s *Server) config(port int, opts Options) string {
	lines := []string{
		"PidFile " + filepath.Join(s.dir, "c-icap.pid"),
		"CommandsSocket " + filepath.Join(s.dir, "c-icap.ctl"),
		"Port 127.0.0.1:" + strconv.Itoa(port),
		"TmpDir " + s.dir,
		"ServerLog " + s.logPath,
		"AccessLog " + filepath.Join(s.dir, "access.log"),
		"ModulesDir " + modulesDir,
		"ServicesDir " + modulesDir,
		"TemplateDir /usr/share/c_icap/templates/",
		"LoadMagicFile /etc/c-icap/c-icap.magic",
		"DebugLevel 1",
		"StartServers 1",
		"MaxServers 1",
		"ThreadsPerChild 4",
		"MinSpareThreads 1",
		"MaxSpareThreads 4",
		"Module common clamd_mod.so",
		"clamd_mod.ClamdHost 127.0.0.1",
		"clamd_mod.ClamdPort " + portOf(opts.Clamd.HostPort),
		"Service " + Service + " virus_scan.so",
		"virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GRAPHICS STREAM DOCUMENT",
		"virus_scan.MaxObjectSize " + opts.MaxObjectSize,
		"virus_scan.DefaultEngine clamd",
		"",
	}
	return strings.Join(lines, "\n")
}

func portOf(hostPort string) string {
	_, port, _ := net.SplitHostPort(hostPort)
	return port
}

var errExited = errors.New("c-icap exited before it was ready")

func (s *Server) start() error {
	out, err := os.OpenFile(filepath.Join(s.dir, "stdout.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own descriptor
	cmd := exec.Command(s.bin, "-N", "-f", s.configPath())
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that Stop reaches its children; the
	// kernel kills it when the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	return s.waitReady()
}

// waitReady asks OPTIONS until the service answers 200.
func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = s.options(); last == nil {
			return nil
		}
		select {
		case <-s.exited:
			data, _ := os.ReadFile(s.logPath)
			return fmt.Errorf("%w; last lines of %s:\n%s", errExited, s.logPath, tail(string(data), 20))
		case <-ctx.Done():
			s.Stop()
			return fmt.Errorf("c-icap not ready within %v: %v", readyTimeout, last)
		case <-tick.C:
		}
	}
}

// options sends OPTIONS for the service and wants 200.
func (s *Server) options() error {
	conn, err := net.DialTimeout("tcp", s.hostPort, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	req := "OPTIONS " + s.URL + " ICAP/1.0\r\nHost: " + s.hostPort + "\r\nEncapsulated: null-body=0\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "ICAP/1.0 200") {
		return fmt.Errorf("OPTIONS answered %q", strings.TrimSpace(line))
	}
	return nil
}

func tail(text string, lines int) string {
	all := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
