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
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/clamdtest"
	"github.com/casedrop/casedrop/internal/testdaemon"
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

	dir, logPath string
	daemon       *testdaemon.Daemon
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
	s := &Server{dir: t.TempDir()}
	s.logPath = filepath.Join(s.dir, "server.log")
	stdout := filepath.Join(s.dir, "stdout.log")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("icaptest: c-icap's log is %s:\n%s\n%s", s.logPath, testdaemon.Tail(s.logPath, 40), testdaemon.Tail(stdout, 20))
		}
	})
	s.daemon, err = testdaemon.Start(t, testdaemon.Spec{
		Name: "c-icap",
		Args: []string{bin, "-N", "-f", s.configPath()},
		Configure: func(port int) error {
			return os.WriteFile(s.configPath(), []byte(s.config(port, opts)), 0o600)
		},
		Ready:        options,
		ReadyTimeout: readyTimeout,
		Output:       stdout,
		Log:          s.logPath,
		Group:        true, // c-icap forks its servers
		StopTimeout:  stopTimeout,
	})
	if err != nil {
		t.Fatalf("icaptest: %v", err)
	}
	s.URL = serviceURL(s.daemon.HostPort)
	return s
}

// Restart starts c-icap again on the same port after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.daemon.Restart(); err != nil {
		t.Fatalf("icaptest: restart: %v", err)
	}
}

// Stop ends c-icap and its child processes and waits for it; harmless
// when it is not running.
func (s *Server) Stop() { s.daemon.Stop() }

func serviceURL(hostPort string) string { return "icap://" + hostPort + "/" + Service }

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

// options sends OPTIONS for the service at hostPort and wants 200.
func options(hostPort string) error {
	conn, err := net.DialTimeout("tcp", hostPort, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	req := "OPTIONS " + serviceURL(hostPort) + " ICAP/1.0\r\nHost: " + hostPort + "\r\nEncapsulated: null-body=0\r\n\r\n"
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
