// Package bench measures casedrop against its peers in the same run, on the
// same MinIO and the same files. Run with `make bench`; figures are
// printed, not asserted.
package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testserver"

	"github.com/minio/minio-go/v7"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// rig is what every benchmark compares on: casedrop storing into a MinIO
// bucket, and `mc` talking to another bucket of the same MinIO.
type rig struct {
	minio     *miniotest.Server
	minioProc *proc
	cd        *testserver.Server
	cdBucket  string
	cdProc    *proc
	refBucket string
	mcEnv     []string // the environment that makes "bench/" name that MinIO for mc
	rounds    int      // BENCH_ROUNDS, default 3
}

func newRig(b *testing.B) *rig {
	r := &rig{rounds: envInt(b, "BENCH_ROUNDS", 3), minio: miniotest.Shared(b)}
	r.minioProc = minioProc(b, r.minio)
	r.cdBucket = r.minio.NewBucket(b)
	// BENCH_CASEDROP_BIN runs another build (say one with -tags pprof, whose
	// profiles BENCH_CASEDROP_PPROF, an address, serves).
	opts := testserver.Options{S3: r.minio, Bucket: r.cdBucket, Binary: os.Getenv("BENCH_CASEDROP_BIN")}
	if addr := os.Getenv("BENCH_CASEDROP_PPROF"); addr != "" {
		opts.Env = []string{"CASEDROP_PPROF=" + addr}
	}
	r.cd = testserver.Start(b, opts)
	r.cdProc = &proc{pid: r.cd.PID}
	r.refBucket = r.minio.NewBucket(b)
	r.mcEnv = append(os.Environ(),
		"MC_CONFIG_DIR="+b.TempDir(),
		fmt.Sprintf("MC_HOST_bench=http://%s:%s@%s", r.minio.AccessKey, r.minio.SecretKey, r.minio.Endpoint))
	return r
}

// startServer starts cmd, a peer the bench measures, with its output in a
// log file; returns once ready, given a channel closed when the process
// exits, says it serves; and stops it (SIGTERM, SIGKILL after 10 s) when
// the benchmark ends.
func startServer(b *testing.B, name string, cmd *exec.Cmd, ready func(exited <-chan struct{}) error) *proc {
	b.Helper()
	logPath := filepath.Join(b.TempDir(), name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = log, log
	// The kernel kills it when the benchmark binary dies, cleanups or not.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	if err := ready(exited); err != nil {
		text, _ := os.ReadFile(logPath)
		b.Fatalf("%s: %v\n%s", name, err, text)
	}
	return &proc{pid: cmd.Process.Pid}
}

// mc runs mc with the rig's environment.
func (r *rig) mc(b *testing.B, args ...string) {
	b.Helper()
	run(b, r.mcEnv, mcBin(b), args...)
}

// dropObjects deletes the objects under prefix in bucket: the bench frees
// the disk of what it has measured (a run stores tens of GiB otherwise).
func (r *rig) dropObjects(b *testing.B, bucket, prefix string) {
	b.Helper()
	c, err := r.minio.Client()
	if err != nil {
		b.Fatal(err)
	}
	objects := c.ListObjects(b.Context(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true})
	for e := range c.RemoveObjects(b.Context(), bucket, objects, minio.RemoveObjectsOptions{}) {
		b.Fatalf("removing %s/%s: %v", bucket, e.ObjectName, e.Err)
	}
}

// envInt returns the positive integer in the environment variable name, or
// def when it is unset.
func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

func mcBin(b *testing.B) string {
	if p, err := exec.LookPath("mc"); err == nil {
		return p
	}
	p := filepath.Join(goBin(b), "mc")
	if _, err := os.Stat(p); err != nil {
		b.Fatalf("mc not found: run `make test-deps`")
	}
	return p
}

// goBin is $(go env GOPATH)/bin, where the deps scripts install.
func goBin(b *testing.B) string {
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		b.Fatal(err)
	}
	return filepath.Join(strings.TrimSpace(string(gopath)), "bin")
}

// run runs a command (env nil: this process's) and fails with its output
// if it fails.
func run(b *testing.B, env []string, name string, args ...string) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// timed runs a command and returns its wall time in seconds.
func timed(b *testing.B, env []string, name string, args ...string) float64 {
	b.Helper()
	start := time.Now()
	run(b, env, name, args...)
	return time.Since(start).Seconds()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// randomFile writes size pseudo-random (incompressible) bytes to a file.
func randomFile(b *testing.B, size int) string {
	path := filepath.Join(b.TempDir(), "big.bin")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	for written := 0; written < size; written += len(buf) {
		for i := 0; i < len(buf); i += 8 {
			v := r.Uint64()
			for j := range 8 {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := f.Write(buf[:min(len(buf), size-written)]); err != nil {
			b.Fatal(err)
		}
	}
	return path
}

func fileSHA256(b *testing.B, path string) string {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
