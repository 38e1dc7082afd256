package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/loopback"
	"github.com/casedrop/casedrop/internal/miniotest"
)

// The image runs casedrop as distroless's nonroot (uid and gid 65532) on a
// /data it owns, under a / it cannot write. These tests run the built
// binary so, as that user: tests run as root here, and switch to it.
const imageUID, imageGID = 65532, 65532

// unprivileged is the built binary and a directory laid out like the
// image's: dir (root's, 0755) holds bin/casedrop and the data directory.
type unprivileged struct {
	dir, bin string
}

// newUnprivileged builds casedrop where the image's user can run it. It
// skips unless the test runs as root, which alone can switch users.
func newUnprivileged(t *testing.T) *unprivileged {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("runs casedrop as uid 65532, which needs the test to run as root (it does in CI)")
	}
	dir, err := os.MkdirTemp("", "casedrop-nonroot-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// MkdirTemp makes 0700 directories: the image's user could not
	// reach the binary or the data.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	u := &unprivileged{dir: dir, bin: filepath.Join(dir, "bin", "casedrop")}
	out, err := exec.Command("go", "build", "-o", u.bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Chmod(filepath.Dir(u.bin), 0o755); err != nil {
		t.Fatal(err)
	}
	return u
}

// dataDir makes a data directory named name, owned by uid like the
// image's /data (0700), or by root as a fresh volume would be.
func (u *unprivileged) dataDir(t *testing.T, name string, uid int) string {
	t.Helper()
	d := filepath.Join(u.dir, name)
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if uid == 0 {
		return d
	}
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, uid, imageGID); err != nil {
		t.Fatal(err)
	}
	return d
}

// command is casedrop args as the image's user, with only env for its
// environment and a HOME that does not exist: nothing may depend on one.
func (u *unprivileged) command(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(u.bin, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: imageUID, Gid: imageGID}}
	return cmd
}

// serve starts `casedrop serve` as the image's user on data and returns
// its HTTPS address and a channel closed when it exits, with its output.
func (u *unprivileged) serve(t *testing.T, data string, env []string) (httpsAddr string, exited <-chan struct{}, output *lockedBuffer) {
	t.Helper()
	ports, err := loopback.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	httpsAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	cmd := u.command(env, "serve", "--data-dir", data, "--https-addr", httpsAddr, "--sftp-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]))
	output = &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done
	})
	return httpsAddr, done, output
}

// waitReady waits until the server answers /readyz 200 with the
// certificate it wrote into data, or fails if it exits first.
func waitReady(t *testing.T, httpsAddr, data string, exited <-chan struct{}, output *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("serve exited as uid %d:\n%s", imageUID, output)
		case <-tick.C:
		}
		client, err := loopback.Client(filepath.Join(data, "tls.crt"))
		if err != nil {
			last = err
			continue
		}
		resp, err := client.Get("https://" + httpsAddr + "/readyz")
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		last = errors.New(resp.Status)
	}
	t.Fatalf("serve as uid %d not ready within 30s (%v):\n%s", imageUID, last, output)
}

// lockedBuffer is a process's output, read while it may still write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServeRunsAsTheImageUserOnADataDirItOwns(t *testing.T) {
	u := newUnprivileged(t)
	token := strings.Repeat("k", 40)
	modes := []struct {
		name    string
		env     func(t *testing.T) []string
		written []string // files serve writes into the data directory
	}{
		{"on local disk", func(*testing.T) []string { return nil },
			[]string{"admin-token", "tls.crt", "tls.key"}},
		{"with CASEDROP_ADMIN_TOKEN set", func(*testing.T) []string { return []string{envAdminToken + "=" + token} },
			[]string{"tls.crt", "tls.key"}},
		{"on S3", func(t *testing.T) []string {
			m, err := miniotest.Start()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(m.Stop)
			return []string{"CASEDROP_S3_ENDPOINT=" + m.Endpoint, "CASEDROP_S3_BUCKET=nonroot", "CASEDROP_S3_ACCESS_KEY=" + m.AccessKey,
				"CASEDROP_S3_SECRET_KEY=" + m.SecretKey, "CASEDROP_S3_INSECURE=true"}
		}, []string{"admin-token", "tls.crt", "tls.key"}},
	}
	for i, m := range modes {
		t.Run(m.name+", it writes its files, answers /readyz and the healthcheck says so", func(t *testing.T) {
			data := u.dataDir(t, fmt.Sprintf("data-%d", i), imageUID)
			env := m.env(t)
			addr, exited, output := u.serve(t, data, env)
			waitReady(t, addr, data, exited, output)
			for _, f := range m.written {
				fi, err := os.Stat(filepath.Join(data, f))
				if err != nil {
					t.Fatalf("serve did not write %s: %v", f, err)
				}
				if st := fi.Sys().(*syscall.Stat_t); st.Uid != imageUID {
					t.Errorf("%s belongs to uid %d, want %d", f, st.Uid, imageUID)
				}
			}
			hc := u.command(env, "healthcheck", "--data-dir", data, "--https-addr", addr)
			if out, err := hc.CombinedOutput(); err != nil {
				t.Fatalf("casedrop healthcheck as uid %d on a ready server: %v\n%s", imageUID, err, out)
			}
			if err := u.command(env, "healthcheck", "--data-dir", data, "--https-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t))).Run(); exitCode(err) != 1 {
				t.Errorf("casedrop healthcheck where nothing listens: %v, want exit status 1", err)
			}
			out, err := u.command(env, "admin-token", "--data-dir", data).CombinedOutput()
			if err != nil {
				t.Fatalf("casedrop admin-token as uid %d: %v\n%s", imageUID, err, out)
			}
			want, _ := os.ReadFile(filepath.Join(data, "admin-token"))
			if len(want) == 0 {
				want = []byte(token + "\n")
			}
			if string(out) != string(want) {
				t.Errorf("casedrop admin-token printed %q, want the server's token %q", out, want)
			}
		})
	}
}

func TestServeAsTheImageUserOnARootOwnedDataDirFailsNamingThePath(t *testing.T) {
	u := newUnprivileged(t)
	for _, withToken := range []bool{false, true} {
		t.Run(fmt.Sprintf("CASEDROP_ADMIN_TOKEN set: %v", withToken), func(t *testing.T) {
			data := u.dataDir(t, fmt.Sprintf("root-owned-%v", withToken), 0)
			if err := os.Chmod(data, 0o755); err != nil { // as a fresh volume is
				t.Fatal(err)
			}
			var env []string
			if withToken {
				env = []string{envAdminToken + "=" + strings.Repeat("k", 40)}
			}
			_, exited, output := u.serve(t, data, env)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				t.Fatalf("serve as uid %d on a root-owned data dir still runs after 30s:\n%s", imageUID, output)
			}
			if !strings.Contains(output.String(), data) || !strings.Contains(output.String(), "permission denied") {
				t.Errorf("serve's error does not name the data directory %s and say permission denied:\n%s", data, output)
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ports, err := loopback.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// exitCode is the exit status in err from exec, 0 for none.
func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
