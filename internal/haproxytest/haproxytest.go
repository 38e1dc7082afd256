// Package haproxytest runs a real HAProxy on 127.0.0.1 in front of test
// servers, as operators put a load balancer in front of several casedrop
// instances: an HTTPS frontend that terminates TLS and sends every request
// to the next server in turn (round robin, also on a kept-alive client
// connection), re-encrypted to the server's own HTTPS port; and a TCP
// frontend that sends every connection to the next server's SFTP port,
// announcing the client with the PROXY protocol (v2). Health checks take a
// dead server out within a second, and a refused connection is retried on
// another server. The haproxy binary comes from PATH (Debian's package;
// `make test-deps` installs it).
package haproxytest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/loopback"
)

const (
	// readyTimeout bounds how long Start waits for the frontends to listen
	// and every server to pass its first health check.
	readyTimeout = 20 * time.Second
	// httpsBackend and sftpBackend name the two backends.
	httpsBackend = "https"
	sftpBackend  = "sftp"
)

// Server is one instance behind the balancer.
type Server struct {
	// Name names it in the configuration, the log and WaitStatus.
	Name string
	// HTTPS is host:port of its HTTPS listener (any certificate: the
	// balancer does not verify it), which answers 200 at HealthPath.
	HTTPS string
	// SFTP is host:port of its SFTP listener, which must accept a PROXY
	// protocol header from 127.0.0.1.
	SFTP string
}

// Options says what to balance.
type Options struct {
	Servers []Server
	// HealthPath is what the health checks GET on each server's HTTPS
	// port; "" means /healthz.
	HealthPath string
}

// Balancer is a running haproxy.
type Balancer struct {
	// URL is https://127.0.0.1:port of the HTTPS frontend.
	URL string
	// SFTPAddr is host:port of the SFTP frontend.
	SFTPAddr string
	// CertFile is the PEM certificate the HTTPS frontend presents, for
	// clients to trust (curl --cacert, NODE_EXTRA_CA_CERTS).
	CertFile string
	// Client trusts CertFile and speaks HTTP/2 to the frontend.
	Client *http.Client

	dir     string // configuration, certificate and log
	sockDir string // the stats socket: a short path, as unix sockets need
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error // set before exited closes
}

// Start starts haproxy in front of opts.Servers and returns once both
// frontends listen and every server has passed a health check. haproxy is
// stopped when the test ends; if the test failed, its log is printed.
func Start(t testing.TB, opts Options) *Balancer {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxytest: haproxy is not installed (%v): run `make test-deps` (Debian's haproxy package)", err)
	}
	if len(opts.Servers) == 0 {
		t.Fatal("haproxytest: no servers to balance")
	}
	if opts.HealthPath == "" {
		opts.HealthPath = "/healthz"
	}
	b := &Balancer{dir: t.TempDir()}
	b.logPath = filepath.Join(b.dir, "haproxy.log")
	// Unix socket paths are limited to 108 bytes; a test's TempDir, named
	// after the test, may be longer.
	if b.sockDir, err = os.MkdirTemp("", "haproxytest-"); err != nil {
		t.Fatalf("haproxytest: %v", err)
	}
	t.Cleanup(func() {
		b.stop()
		_ = os.RemoveAll(b.sockDir)
		if t.Failed() {
			t.Logf("haproxytest: haproxy's log is %s; its last lines:\n%s", b.logPath, b.logTail(60))
		}
	})
	pem, err := writeCertificate(b.dir)
	if err != nil {
		t.Fatalf("haproxytest: %v", err)
	}
	b.CertFile = pem.cert
	if b.Client, err = loopback.Client(pem.cert); err != nil {
		t.Fatalf("haproxytest: %v", err)
	}
	// A probed port may be taken before haproxy binds it: a run that
	// exits before it is ready gets new ports, twice at most.
	for attempt := 1; attempt <= 3; attempt++ {
		ports, perr := loopback.FreePorts(2)
		if perr != nil {
			t.Fatalf("haproxytest: %v", perr)
		}
		b.URL = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		b.SFTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
		cfg := config{
			HTTPS: strings.TrimPrefix(b.URL, "https://"), SFTP: b.SFTPAddr,
			Bundle: pem.bundle, Socket: b.socketPath(), HealthPath: opts.HealthPath, Servers: opts.Servers,
		}
		if err = b.start(bin, cfg); !errors.Is(err, errExited) {
			break
		}
	}
	if err != nil {
		t.Fatalf("haproxytest: %v", err)
	}
	return b
}

var errExited = errors.New("haproxy exited before it was ready")

// start writes the configuration, has haproxy check it (-c), runs it in
// the foreground (-db) and waits until it is ready.
func (b *Balancer) start(bin string, cfg config) error {
	path := filepath.Join(b.dir, "haproxy.cfg")
	var text bytes.Buffer
	if err := configTemplate.Execute(&text, cfg); err != nil {
		return err
	}
	if err := os.WriteFile(path, text.Bytes(), 0o600); err != nil {
		return err
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		return fmt.Errorf("haproxy -c -f %s: %v\n%s\nthe configuration:\n%s", path, err, out, text.String())
	}
	logFile, err := os.OpenFile(b.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	fmt.Fprintf(logFile, "=== haproxytest: %s -db -f %s (HTTPS %s, SFTP %s)\n", bin, path, b.URL, b.SFTPAddr)
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The kernel kills haproxy when the test binary dies, even by a panic
	// or a signal that skips the cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	b.cmd, b.exited = cmd, make(chan struct{})
	go func() {
		b.waitErr = cmd.Wait()
		close(b.exited)
	}()
	if err := b.waitReady(cfg.Servers); err != nil {
		b.stop()
		return fmt.Errorf("%w\nlast lines of %s:\n%s", err, b.logPath, b.logTail(30))
	}
	return nil
}

// waitReady polls until every server is up in both backends with a
// health check passed.
func (b *Balancer) waitReady(servers []Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = b.ready(servers); last == nil {
			return nil
		}
		select {
		case <-b.exited:
			return fmt.Errorf("%w (%v)", errExited, b.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("haproxy not ready within %v: %v", readyTimeout, last)
		case <-tick.C:
		}
	}
}

// ready asks the stats socket, a listener haproxy binds with the
// frontends' before it serves any: once it answers, they listen.
func (b *Balancer) ready(servers []Server) error {
	states, err := b.states()
	if err != nil {
		return err
	}
	for _, s := range servers {
		for _, backend := range []string{httpsBackend, sftpBackend} {
			st := states[backend+"/"+s.Name]
			if st.Status != "UP" || !strings.HasSuffix(st.Check, "OK") {
				return fmt.Errorf("%s/%s is %s, last check %q", backend, s.Name, st.Status, st.Check)
			}
		}
	}
	return nil
}

// stop kills haproxy and waits for it to exit; harmless when it is not
// running.
func (b *Balancer) stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.exited
}

// Log returns what haproxy has logged so far: its messages, one line per
// request (HTTPS) or connection (SFTP) naming the server that got it, and
// servers going down and up.
func (b *Balancer) Log() string {
	data, _ := os.ReadFile(b.logPath)
	return string(data)
}

func (b *Balancer) logTail(lines int) string {
	all := strings.Split(strings.TrimRight(b.Log(), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// serverState is what haproxy knows of one server in one backend.
type serverState struct {
	// Status is "UP", "DOWN", or a transition ("UP 1/2", "DOWN 1/1"...).
	Status string
	// Check is the result of the last health check: L4OK, L7OK,
	// L4CON (refused), L7STS (bad status)...
	Check string
}

// WaitStatus waits until server has status ("UP", "DOWN") in both
// backends, failing the test after timeout.
func (b *Balancer) WaitStatus(t testing.TB, server, status string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		states, err := b.states()
		if err == nil && states[httpsBackend+"/"+server].Status == status && states[sftpBackend+"/"+server].Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxytest: %s is not %s in both backends after %v: %+v (%v)", server, status, timeout, states, err)
		}
		<-tick.C
	}
}

func (b *Balancer) socketPath() string { return filepath.Join(b.sockDir, "admin.sock") }

// states asks the stats socket for `show stat` and reads its CSV into the
// state of each server in each backend, keyed "backend/server" ("https/a",
// "sftp/a").
func (b *Balancer) states() (map[string]serverState, error) {
	conn, err := net.DialTimeout("unix", b.socketPath(), time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("show stat\n")); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var columns map[string]int
	states := map[string]serverState{}
	for sc.Scan() {
		line := sc.Text()
		if header, ok := strings.CutPrefix(line, "# "); ok {
			columns = map[string]int{}
			for i, name := range strings.Split(header, ",") {
				columns[name] = i
			}
			continue
		}
		fields := strings.Split(line, ",")
		if columns == nil || len(fields) < len(columns) {
			continue
		}
		name := fields[columns["svname"]]
		if name == "FRONTEND" || name == "BACKEND" {
			continue
		}
		states[fields[columns["pxname"]]+"/"+name] = serverState{
			Status: fields[columns["status"]],
			Check:  fields[columns["check_status"]],
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if columns == nil {
		return nil, errors.New("show stat answered no CSV header")
	}
	return states, nil
}
