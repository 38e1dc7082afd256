// Package testserver runs the real casedrop binary for end-to-end tests:
// built once per test binary from this module's ./cmd/casedrop, started on
// free loopback ports with local disk or a MinIO bucket, and driven through
// its HTTPS API (helpers here) and its tus endpoint (tus.go).
package testserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/loopback"
	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/web"
)

const (
	// readyTimeout bounds how long Start waits for /healthz.
	readyTimeout = 30 * time.Second
	// stopTimeout bounds a graceful stop; the server promises 30 s.
	stopTimeout = 30 * time.Second
)

// Options says how to run the server.
type Options struct {
	// S3, with Bucket, stores in that MinIO bucket; nil keeps files on
	// local disk under the data directory.
	S3     *miniotest.Server
	Bucket string
	// DataDir is the server's data directory (certificate, keys, local
	// storage); empty means a new t.TempDir().
	DataDir string
	// PartSizeMiB sets --part-size-mib; 0 keeps the server's default.
	PartSizeMiB int
	// Args and Env are more flags and KEY=value settings of `serve`.
	Args []string
	Env  []string
	// Binary runs that build of casedrop instead of this module's (the
	// benchmarks compare with an earlier build this way).
	Binary string
	// AdminToken is the server's CASEDROP_ADMIN_TOKEN; empty means a new
	// random one. Instances sharing a bucket need the same.
	AdminToken string
	// ScanClamd sets --scan-clamd: every landed file is scanned by that
	// clamd (clamdtest.Server.Address) before it is served.
	ScanClamd string
	// ScanICAP sets --scan-icap: every landed file is scanned by that
	// ICAP service (icaptest.Server.URL) before it is served.
	ScanICAP string
}

// Server is a running casedrop process.
type Server struct {
	// URL is https://127.0.0.1:port, without a trailing slash.
	URL        string
	AdminToken string
	DataDir    string
	// PID is the current process's id; it changes with Restart.
	PID int
	// Client trusts the server's generated certificate and speaks HTTP/2.
	Client *http.Client

	opts      Options
	bin       string
	httpsAddr string
	sftpAddr  string
	logPath   string
	starts    int
	proc      *process
}

// process is one run of the binary.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait has returned
	err    error         // Wait's result, set before exited closes
}

func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Start starts casedrop serve with opts and returns once /healthz answers.
// The server is stopped when the test ends; if the test failed, the path
// and the last lines of the server's log are printed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := opts.Binary
	if bin == "" {
		bin = binary(t)
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.AdminToken == "" {
		opts.AdminToken = randomHex(32)
	}
	s := &Server{
		AdminToken: opts.AdminToken,
		DataDir:    opts.DataDir,
		opts:       opts,
		bin:        bin,
		logPath:    filepath.Join(t.TempDir(), "casedrop.log"),
	}
	t.Cleanup(func() {
		if s.proc != nil && s.proc.running() {
			if err := s.Stop(); err != nil {
				t.Errorf("testserver: stopping casedrop at the end of the test: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("testserver: casedrop's log is %s; its last lines:\n%s", s.logPath, logTail(s.logPath, 60))
		}
	})
	// A probed port may be taken before casedrop binds it: a server that
	// exits before it is ready gets new ports, twice at most.
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		ports := freePorts(t, 2)
		s.httpsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		s.sftpAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
		s.URL = "https://" + s.httpsAddr
		if err = s.start(); !errors.Is(err, errExited) {
			break
		}
	}
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	return s
}

// Restart starts the server again on the same data directory, bucket and
// ports, once the process has exited: after Kill or Stop, or a signal whose
// exit is still under way (it waits up to 10 s for that).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	select {
	case <-s.proc.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("testserver: Restart while pid %d is still running", s.PID)
	}
	s.Client.CloseIdleConnections()
	if err := s.start(); err != nil {
		t.Fatalf("testserver: restart: %v", err)
	}
}

var errExited = errors.New("casedrop exited before it was ready")

// start runs the binary and waits until it is healthy.
func (s *Server) start() error {
	args := []string{"serve", "--data-dir", s.DataDir, "--https-addr", s.httpsAddr, "--sftp-addr", s.sftpAddr}
	if s.opts.PartSizeMiB > 0 {
		args = append(args, "--part-size-mib", strconv.Itoa(s.opts.PartSizeMiB))
	}
	if s.opts.ScanClamd != "" {
		args = append(args, "--scan-clamd", s.opts.ScanClamd)
	}
	if s.opts.ScanICAP != "" {
		args = append(args, "--scan-icap", s.opts.ScanICAP)
	}
	args = append(args, s.opts.Args...)
	env := append([]string{"CASEDROP_ADMIN_TOKEN=" + s.AdminToken}, s.opts.Env...)
	if s.opts.S3 != nil {
		args = append(args, "--s3-endpoint", s.opts.S3.Endpoint, "--s3-bucket", s.opts.Bucket,
			"--s3-access-key", s.opts.S3.AccessKey, "--s3-insecure")
		// The secret goes through the environment, not the command line.
		env = append(env, "CASEDROP_S3_SECRET_KEY="+s.opts.S3.SecretKey)
	}
	logFile, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	s.starts++
	fmt.Fprintf(logFile, "=== testserver: start %d: %s %s\n", s.starts, s.bin, strings.Join(args, " "))

	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(inheritedEnv(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The kernel kills the server when the test binary dies, even by a
	// panic or a signal that skips the cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	s.proc, s.PID = p, cmd.Process.Pid
	if err := s.waitHealthy(p); err != nil {
		if p.running() {
			s.Kill()
		}
		return fmt.Errorf("%w\nlast lines of %s:\n%s", err, s.logPath, logTail(s.logPath, 30))
	}
	return nil
}

// inheritedEnv is the test's environment without CASEDROP_* settings, so
// that only Options configure the server.
func inheritedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CASEDROP_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitHealthy polls /healthz until it answers 200, the process exits or
// readyTimeout passes. The client is made once the certificate exists.
func (s *Server) waitHealthy(p *process) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.Client == nil {
			s.Client, _ = loopback.Client(filepath.Join(s.DataDir, "tls.crt")) // not written yet: try again
		}
		if s.Client != nil && s.healthy(ctx) {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%w (%v)", errExited, p.err)
		case <-ctx.Done():
			return fmt.Errorf("%s/healthz did not answer 200 within %v", s.URL, readyTimeout)
		case <-tick.C:
		}
	}
}

func (s *Server) healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Signal sends sig to the server process.
func (s *Server) Signal(sig os.Signal) error {
	return s.proc.cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for status 0). After the timeout it kills the process and
// says so.
func (s *Server) Wait(timeout time.Duration) error {
	p := s.proc
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		return p.err
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("pid %d did not exit within %v of being asked to; killed it", s.PID, timeout)
	}
}

// Kill kills the server with SIGKILL and waits until it is gone. Safe to
// call from any goroutine, and on a server that has already exited.
func (s *Server) Kill() {
	p := s.proc
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Stop sends SIGTERM and waits for the exit (at most 30 s, then SIGKILL);
// it returns the exit error, nil when the server exited with status 0.
func (s *Server) Stop() error {
	// An idle HTTP/2 connection holds a graceful shutdown for a second
	// (the server waits for the client to go after its GOAWAY).
	s.Client.CloseIdleConnections()
	if err := s.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	return s.Wait(stopTimeout)
}

// PeakRSS returns the peak resident set size of the running server in
// bytes (VmHWM). Read it before the process exits.
func (s *Server) PeakRSS() (int64, error) {
	kib, err := s.procField("status", "VmHWM:")
	return kib << 10, err
}

// BytesRead returns how many bytes the server has read through read
// system calls so far, sockets included (rchar in /proc/PID/io).
func (s *Server) BytesRead() (int64, error) {
	return s.procField("io", "rchar:")
}

// procField reads the first number after key in /proc/PID/name.
func (s *Server) procField(name, key string) (int64, error) {
	if !s.proc.running() {
		return 0, fmt.Errorf("pid %d has exited", s.PID)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", s.PID, name))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			return strconv.ParseInt(fields[0], 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/%s", key, s.PID, name)
}

// Credential is what the admin API returns when it issues a credential.
type Credential struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	// Password is the short SFTP password; Token the JWT.
	Password  string    `json:"password"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	// SSHKeyFingerprint is that of the SSH key attached, if any.
	SSHKeyFingerprint string `json:"ssh_key_fingerprint"`
	UploadURL         string `json:"upload_url"`
	TusURL            string `json:"tus_url"`
	SFTPHost          string `json:"sftp_host"`
	SFTPPort          int    `json:"sftp_port"`
}

// File is one entry of a case's file list.
type File = web.File

// OpenCase opens the case (idempotent).
func (s *Server) OpenCase(t testing.TB, id string) {
	t.Helper()
	s.call(t, http.MethodPut, "/api/v1/cases/"+url.PathEscape(id), s.AdminToken, nil, nil, http.StatusCreated, http.StatusOK)
}

// Credential issues a credential of the case with role ("customer",
// "staff", or "" for the server's default).
func (s *Server) Credential(t testing.TB, caseID, role string) Credential {
	t.Helper()
	var body any
	if role != "" {
		body = map[string]string{"role": role}
	}
	return s.issue(t, caseID, body)
}

// CredentialWithKey issues a customer credential of the case with the SSH
// public key (an authorized_keys line, the content of a .pub file)
// attached.
func (s *Server) CredentialWithKey(t testing.TB, caseID, publicKey string) Credential {
	t.Helper()
	c := s.issue(t, caseID, map[string]string{"ssh_public_key": publicKey})
	if c.SSHKeyFingerprint == "" {
		t.Fatalf("testserver: credential for case %s came without its key's fingerprint", caseID)
	}
	return c
}

func (s *Server) issue(t testing.TB, caseID string, body any) Credential {
	t.Helper()
	var c Credential
	s.call(t, http.MethodPost, "/api/v1/cases/"+url.PathEscape(caseID)+"/credentials", s.AdminToken, body, &c, http.StatusCreated)
	if c.Token == "" || c.Password == "" {
		t.Fatalf("testserver: credential for case %s came without a token or a password", caseID)
	}
	return c
}

// UploadLink issues an upload link of the case and returns its URL, the
// case page with the link's code in the fragment.
func (s *Server) UploadLink(t testing.TB, caseID string) string {
	t.Helper()
	var l web.Link
	s.call(t, http.MethodPost, "/api/v1/cases/"+url.PathEscape(caseID)+"/links", s.AdminToken, nil, &l, http.StatusCreated)
	return l.URL
}

// RevokeCredential revokes the credential with the admin API.
func (s *Server) RevokeCredential(t testing.TB, id string) {
	t.Helper()
	s.call(t, http.MethodDelete, "/api/v1/credentials/"+url.PathEscape(id), s.AdminToken, nil, nil, http.StatusOK)
}

// Alive reports whether the server process runs and answers /healthz.
func (s *Server) Alive() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.proc.running() && s.healthy(ctx)
}

// Log returns what the server has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// Files lists the case's files, as the admin sees them.
func (s *Server) Files(t testing.TB, caseID string) []File {
	t.Helper()
	var list web.FileList
	s.call(t, http.MethodGet, "/api/v1/cases/"+url.PathEscape(caseID)+"/files", s.AdminToken, nil, &list, http.StatusOK)
	return list.Files
}

// Download returns a file's bytes and its Repr-Digest header.
func (s *Server) Download(t testing.TB, caseID, name string) (body []byte, reprDigest string) {
	t.Helper()
	var buf bytes.Buffer
	_, reprDigest = s.DownloadTo(t, caseID, name, &buf)
	return buf.Bytes(), reprDigest
}

// DownloadTo streams a file into w and returns its length and its
// Repr-Digest header; for files too big to hold in memory.
func (s *Server) DownloadTo(t testing.TB, caseID, name string, w io.Writer) (n int64, reprDigest string) {
	t.Helper()
	req := s.request(t, http.MethodGet, "/api/v1/cases/"+url.PathEscape(caseID)+"/files/"+url.PathEscape(name), s.AdminToken, nil)
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("testserver: download %s/%s: %v", caseID, name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		t.Fatalf("testserver: download %s/%s: %s: %s", caseID, name, resp.Status, msg)
	}
	n, err = io.Copy(w, resp.Body)
	if err != nil {
		t.Fatalf("testserver: download %s/%s after %d bytes: %v", caseID, name, n, err)
	}
	return n, resp.Header.Get("Repr-Digest")
}

func (s *Server) request(t testing.TB, method, path, token string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, body)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// call sends a JSON API request and decodes the answer into out; a status
// not in want fails the test.
func (s *Server) call(t testing.TB, method, path, token string, in, out any, want ...int) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("testserver: %v", err)
		}
		body = bytes.NewReader(b)
	}
	req := s.request(t, method, path, token, body)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("testserver: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatalf("testserver: %s %s: reading the answer: %v", method, path, err)
	}
	if !containsStatus(want, resp.StatusCode) {
		t.Fatalf("testserver: %s %s: %s, want %v: %s", method, path, resp.Status, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("testserver: %s %s: decoding %q: %v", method, path, data, err)
		}
	}
}

func containsStatus(want []int, got int) bool {
	for _, w := range want {
		if w == got {
			return true
		}
	}
	return false
}

var built struct {
	once sync.Once
	path string
	err  error
}

// binary builds ./cmd/casedrop once per test binary and returns its path.
func binary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() { built.path, built.err = buildBinary() })
	if built.err != nil {
		t.Fatalf("testserver: building casedrop: %v", built.err)
	}
	return built.path
}

// buildBinary builds into a directory of the system's temp dir named after
// the module root, and renames the result into place: concurrent test
// binaries never see half a file, and each run replaces the last one's
// binary instead of leaving another behind.
func buildBinary() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("casedrop-testserver-%d-%s", os.Getuid(), hex.EncodeToString(sum[:6])))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp := filepath.Join(dir, "casedrop."+randomHex(6)+".tmp")
	cmd := exec.Command("go", "build", "-o", tmp, "./cmd/casedrop")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("go build ./cmd/casedrop in %s: %w\n%s", root, err, out)
	}
	bin := filepath.Join(dir, "casedrop")
	if err := os.Rename(tmp, bin); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return bin, nil
}

// ModuleRoot returns the directory holding go.mod, found by walking up from
// the working directory (a test's working directory is its package).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// freePorts returns n distinct ports that were free on 127.0.0.1.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := loopback.FreePorts(n)
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	return ports
}

// logTail returns the last lines of the file at path.
func logTail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}
