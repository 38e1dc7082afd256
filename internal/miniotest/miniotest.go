// Package miniotest starts a real MinIO server for tests: one per test
// binary (Shared, with Main in TestMain), with a fresh bucket per test
// (NewBucket); SharedErasure is one whose data is erasure-coded over four
// drives, as MinIO runs in production. The minio binary comes from PATH
// or $GOPATH/bin; `make test-deps` installs it.
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/loopback"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// installHint says how to get the binary; keep it in step with the Makefile.
const installHint = "run `make test-deps` (go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c)"

// readyTimeout bounds how long Start waits for the server to answer.
const readyTimeout = 60 * time.Second

// errNoBinary means neither PATH nor $GOPATH/bin has a minio binary.
var errNoBinary = errors.New("minio binary not found")

// Server is a running MinIO server on 127.0.0.1.
type Server struct {
	// Endpoint is host:port of the S3 API, plain HTTP.
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// Dir holds the server's data; Stop removes it if Start made it.
	Dir string

	console  string // host:port of the console, which MinIO insists on
	drives   int    // erasure-coded over this many drives under Dir; 0: Dir is the one drive
	ownsDir  bool
	bin      string
	cmd      *exec.Cmd     // the current run
	exited   chan struct{} // closed when the current run has exited
	output   *tailBuffer
	stopOnce sync.Once

	clientOnce sync.Once
	client     *minio.Client
	clientErr  error
}

// Start starts a MinIO server on free ports of 127.0.0.1 with a new data
// directory and random root credentials, and returns once it is ready.
func Start() (*Server, error) { return StartIn("") }

// StartIn is Start with the server's data in dir, which the caller made
// and keeps (a small file system, say): Stop leaves it. The empty dir
// means a new temporary directory, which Stop removes.
func StartIn(dir string) (*Server, error) { return startWith(dir, 0) }

// ErasureDrives is how many drives StartErasure gives MinIO: the smallest
// erasure set, with two of them parity (MinIO's default for four).
const ErasureDrives = 4

// StartErasure is Start with the data erasure-coded over ErasureDrives
// drives, directories drive1 to drive4 of the data directory, given as
// operators give them: `minio server DIR/drive{1...4}`.
func StartErasure() (*Server, error) { return startWith("", ErasureDrives) }

func startWith(dir string, drives int) (*Server, error) {
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	// A free port may be taken between probing and MinIO binding it; a
	// server that exits before it is ready is retried on new ports.
	for attempt := 1; ; attempt++ {
		s, err := start(bin, dir, drives)
		if err == nil || !errors.Is(err, errExited) || attempt == 3 {
			return s, err
		}
	}
}

var errExited = errors.New("minio exited before it was ready")

func start(bin, dir string, drives int) (*Server, error) {
	ports, err := loopback.FreePorts(2)
	if err != nil {
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	s := &Server{
		Endpoint:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		AccessKey: "test" + randomHex(8),
		SecretKey: randomHex(20),
		Dir:       dir,
		console:   net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		drives:    drives,
		bin:       bin,
		output:    &tailBuffer{max: 64 << 10},
	}
	if dir == "" {
		if s.Dir, err = os.MkdirTemp("", "miniotest-*"); err != nil {
			return nil, fmt.Errorf("miniotest: %w", err)
		}
		s.ownsDir = true
	}
	if err := s.run(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// run starts the process and waits until it is ready.
func (s *Server) run() error {
	data := s.Dir
	env := append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	if s.drives > 0 {
		// MinIO expands the ellipsis itself.
		data = filepath.Join(s.Dir, fmt.Sprintf("drive{1...%d}", s.drives))
		// MinIO refuses erasure drives on the root file system, where a
		// test's temporary directory is; its CI mode lets them be.
		env = append(env, "MINIO_CI_CD=1")
	}
	s.cmd = exec.Command(s.bin, "server", "--address", s.Endpoint, "--console-address", s.console, "--quiet", data)
	s.cmd.Env = env
	s.cmd.Stdout = s.output
	s.cmd.Stderr = s.output
	s.cmd.SysProcAttr = dieWithParent()
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("miniotest: start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	s.exited = exited
	go func(cmd *exec.Cmd) {
		_ = cmd.Wait()
		close(exited)
	}(s.cmd)
	if err := s.waitReady(readyTimeout); err != nil {
		return fmt.Errorf("miniotest: %w\nminio output:\n%s", err, s.output.String())
	}
	return nil
}

// Kill kills the server and waits for it to exit, keeping its data, as a
// crash or an outage would: clients get refused connections until
// Restart.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Restart starts the killed server again on the same address, with the
// same credentials and data, and returns once it is ready.
func (s *Server) Restart() error {
	select {
	case <-s.exited:
	default:
		return errors.New("miniotest: Restart of a server that runs")
	}
	return s.run()
}

// waitReady polls the readiness endpoint until it answers 200, the
// process exits, or the timeout passes.
func (s *Server) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	url := "http://" + s.Endpoint + "/minio/health/ready"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%w (%v)", errExited, s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %v", url, timeout)
		case <-tick.C:
		}
	}
}

// Stop kills the server, waits for it to exit and removes its data
// directory if Start made it. Stopping twice is harmless.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if s.ownsDir {
			_ = os.RemoveAll(s.Dir)
		}
	})
}

// NewBucket creates a bucket with a new unique name and returns the name;
// the bucket and its contents are removed when the test ends.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	c, err := s.Client()
	if err != nil {
		tb.Fatalf("miniotest: %v", err)
	}
	name := "test-" + randomHex(12)
	if err := c.MakeBucket(tb.Context(), name, minio.MakeBucketOptions{}); err != nil {
		tb.Fatalf("miniotest: make bucket %s: %v", name, err)
	}
	tb.Cleanup(func() {
		// ForceDelete is MinIO's way to drop a bucket with its objects.
		err := c.RemoveBucketWithOptions(context.Background(), name, minio.RemoveBucketOptions{ForceDelete: true})
		if err != nil {
			tb.Errorf("miniotest: remove bucket %s: %v", name, err)
		}
	})
	return name
}

// Client returns a minio-go client for the server with root credentials.
func (s *Server) Client() (*minio.Client, error) {
	s.clientOnce.Do(func() {
		s.client, s.clientErr = minio.New(s.Endpoint, &minio.Options{
			Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		})
	})
	return s.client, s.clientErr
}

// sharedServer is a server of the test binary, started on first use.
type sharedServer struct {
	once   sync.Once
	server *Server
	err    error
}

var shared, sharedErasure sharedServer

// get returns the server, starting it with start on first use, and fails
// tb, never skips it, when it cannot start: tests that need S3 run
// against a real one or not at all.
func (sh *sharedServer) get(tb testing.TB, start func() (*Server, error)) *Server {
	tb.Helper()
	sh.once.Do(func() { sh.server, sh.err = start() })
	if errors.Is(sh.err, errNoBinary) {
		tb.Fatalf("miniotest: %v: %s", sh.err, installHint)
	}
	if sh.err != nil {
		tb.Fatalf("%v", sh.err)
	}
	return sh.server
}

// Shared returns the test binary's MinIO server, starting it on first use.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	return shared.get(tb, Start)
}

// SharedErasure returns the test binary's erasure-coded MinIO server
// (StartErasure), starting it on first use.
func SharedErasure(tb testing.TB) *Server {
	tb.Helper()
	return sharedErasure.get(tb, StartErasure)
}

// Main runs the tests and exits, stopping the shared servers Shared and
// SharedErasure started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { miniotest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	for _, sh := range []*sharedServer{&shared, &sharedErasure} {
		if sh.server != nil {
			sh.server.Stop()
		}
	}
	os.Exit(code)
}

// findBinary looks for minio in PATH, then in each GOPATH's bin.
func findBinary() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var tried []string
	for _, gopath := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(gopath, "bin", "minio")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("%w in PATH or %v", errNoBinary, tried)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
