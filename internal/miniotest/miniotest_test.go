package miniotest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewBucketGivesDistinctBuckets(t *testing.T) {
	srv := Shared(t)
	a, b := srv.NewBucket(t), srv.NewBucket(t)
	if a == b {
		t.Fatalf("NewBucket returned %q twice", a)
	}
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{a, b} {
		if ok, err := c.BucketExists(t.Context(), name); err != nil || !ok {
			t.Errorf("BucketExists(%q) = %v, %v", name, ok, err)
		}
	}
}

func TestStopKillsTheServerAndRemovesItsData(t *testing.T) {
	srv, err := Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Stop)
	if conn, err := net.Dial("tcp", srv.Endpoint); err != nil {
		t.Fatalf("server not listening after Start: %v", err)
	} else {
		conn.Close()
	}
	srv.Stop()
	if _, err := os.Stat(srv.Dir); !os.IsNotExist(err) {
		t.Errorf("data dir %s still there: %v", srv.Dir, err)
	}
	if conn, err := net.Dial("tcp", srv.Endpoint); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Stop", srv.Endpoint)
	}
	if srv.cmd.ProcessState == nil {
		t.Error("process not waited for")
	}
}

func TestRestartServesTheDataOfAKilledServerAtTheSameAddress(t *testing.T) {
	srv, err := Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Stop)
	bucket := srv.NewBucket(t)
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if conn, err := net.Dial("tcp", srv.Endpoint); err == nil {
		conn.Close()
		t.Fatalf("%s accepts connections after Kill", srv.Endpoint)
	}
	if err := srv.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if ok, err := c.BucketExists(t.Context(), bucket); err != nil || !ok {
		t.Errorf("after Restart, BucketExists(%q) = %v, %v", bucket, ok, err)
	}
}

func TestStartInLeavesTheCallersDirectory(t *testing.T) {
	dir := t.TempDir()
	srv, err := StartIn(dir)
	if err != nil {
		t.Fatalf("StartIn: %v", err)
	}
	srv.Stop()
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("Stop removed the caller's directory: %v", err)
	}
}

// The helper process starts a server and exits without stopping it, as a
// test binary that panics would.
func TestHelperProcessExitsWithoutStop(t *testing.T) {
	if os.Getenv("MINIOTEST_HELPER") != "1" {
		return
	}
	srv, err := Start()
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println(srv.cmd.Process.Pid, srv.Dir)
	os.Exit(1)
}

func TestServerDiesWithTheTestBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux kills children on parent death (Pdeathsig)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessExitsWithoutStop$")
	cmd.Env = append(os.Environ(), "MINIOTEST_HELPER=1")
	out, _ := cmd.Output()
	var (
		pid int
		dir string
	)
	if _, err := fmt.Sscan(string(out), &pid, &dir); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for alive(pid) {
		select {
		case <-deadline:
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("minio (pid %d) outlived the test binary that started it", pid)
		case <-tick.C:
		}
	}
}

// alive reports whether process pid runs (exists and is no zombie).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')') // the state follows the command name
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// StartErasure runs MinIO as operators do: erasure-coded over four drives,
// two of each object's shards parity, and an object written is spread
// over the four drives. A single-drive server, for contrast, has one.
func TestStartErasureCodesTheDataOverFourDrives(t *testing.T) {
	srv := SharedErasure(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	backend, err := srv.Backend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Backend{Type: "Erasure", OnlineDrives: ErasureDrives, StandardParity: 2}
	if backend != want {
		t.Fatalf("the erasure server's backend is %+v, want %+v", backend, want)
	}
	bucket := srv.NewBucket(t)
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("erasure"), 1<<16)
	if _, err := c.PutObject(t.Context(), bucket, "spread", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= ErasureDrives; i++ {
		meta := filepath.Join(srv.Dir, fmt.Sprintf("drive%d", i), bucket, "spread", "xl.meta")
		if _, err := os.Stat(meta); err != nil {
			t.Errorf("drive %d holds no shard of the object: %v", i, err)
		}
	}

	single, err := Shared(t).Backend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if single.OnlineDrives != 1 {
		t.Errorf("the single-drive server's backend is %+v, want one drive", single)
	}
}
