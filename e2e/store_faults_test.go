package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testserver"
)

// The store taken away and brought back, and filled up and freed, under an
// upload in flight on each door: the clients are told to come back later
// (503 or 507 with Retry-After and a code; an SFTP failure saying so),
// /readyz says so within about a second, the log and the audit trail tell
// the outage once, and once the store is back both uploads continue from
// their stored bytes to the right digests.

const (
	faultPartMiB = 5
	tusSize      = 24 * mib // 2 parts and a tail stored before the fault
	tusBefore    = 12 * mib
	sftpSize     = 12 * mib
	sftpBefore   = 3 * mib // in the part buffer, not stored, at the fault
)

// Log lines of the outage tracker, as JSON.
const (
	logUnavailable = `"msg":"storage unavailable: requests that need it fail until it is back"`
	logAvailable   = `"msg":"storage available again"`
	logFull        = `"msg":"storage full: uploads fail until space is freed"`
	logSpace       = `"msg":"storage has space again"`
)

// inFlight is an upload on each door, begun before a fault.
type inFlight struct {
	srv    *testserver.Server
	caseID string
	token  string
	data   *pattern
	tusURL string
	client *sftp.Client
	file   *sftp.File // open, sftpBefore bytes written
}

// beginUploads opens caseID and starts an upload on each door.
func beginUploads(t *testing.T, srv *testserver.Server, caseID string) *inFlight {
	t.Helper()
	srv.OpenCase(t, caseID)
	cred := srv.Credential(t, caseID, "customer")
	u := &inFlight{srv: srv, caseID: caseID, token: cred.Token, data: newPattern(42)}
	u.tusURL = srv.Create(t, u.token, "via-tus.bin", tusSize, "")
	if n, _, err := srv.Patch(t.Context(), u.token, u.tusURL, 0, u.data.stream(0, tusBefore), tusBefore); err != nil || n != tusBefore {
		t.Fatalf("PATCH before the fault: offset %d, %v", n, err)
	}
	u.client = goSFTP(t, loginOf(srv, cred))
	f, err := u.client.OpenFile("via-sftp.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFrom(u.data.stream(0, sftpBefore)); err != nil {
		t.Fatalf("SFTP write before the fault: %v", err)
	}
	u.file = f
	return u
}

// tusCall sends a tus PATCH (with body from offset) or HEAD and returns
// the answer, its body read.
func (u *inFlight) tusCall(t *testing.T, method string, offset, n int64) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if n > 0 {
		body = u.data.stream(offset, offset+n)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u.tusURL, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = n
	req.Header.Set("Authorization", "Bearer "+u.token)
	req.Header.Set("Tus-Resumable", "1.0.0")
	if method == http.MethodPatch {
		req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
		req.Header.Set("Content-Type", "application/offset+octet-stream")
	}
	resp, err := u.srv.Client.Do(req)
	if err != nil {
		t.Fatalf("tus %s: %v", method, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp, b
}

// checkRetryLater fails the test unless the answer is status with code and
// Retry-After.
func checkRetryLater(t *testing.T, what string, resp *http.Response, body []byte, status int, code, retryAfter string) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Retry-After") != retryAfter {
		t.Errorf("%s: %s with Retry-After %q; want %d with Retry-After %s (%s)", what, resp.Status, resp.Header.Get("Retry-After"), status, retryAfter, body)
	}
	if resp.Request.Method == http.MethodHead {
		return
	}
	var e struct{ Error, Code string }
	if err := json.Unmarshal(body, &e); err != nil || e.Code != code || !strings.Contains(e.Error, "try again later") {
		t.Errorf("%s: body %s; want code %s and a message saying to try again later", what, body, code)
	}
}

// refusedOverSFTP writes the rest of the SFTP upload and closes it, and
// fails the test unless the close fails with a message holding says. The
// writes may succeed: the server takes a part's bytes before it stores
// them, and the close is where every client hears how the upload ended.
func (u *inFlight) refusedOverSFTP(t *testing.T, says string) {
	t.Helper()
	if _, err := u.file.ReadFrom(u.data.stream(sftpBefore, sftpSize)); err != nil && !strings.Contains(err.Error(), says) {
		t.Errorf("SFTP write with the store in trouble: %v; want success or a failure saying %q", err, says)
	}
	if err := u.file.Close(); err == nil || !strings.Contains(err.Error(), says) {
		t.Errorf("SFTP close with the store in trouble: %v; want a failure saying %q", err, says)
	}
}

// finish continues both uploads from their stored bytes to the end and
// checks that the files are complete with the right digests.
func (u *inFlight) finish(t *testing.T) {
	t.Helper()
	offset := u.srv.Head(t, u.token, u.tusURL)
	if offset < tusBefore || offset > tusSize {
		t.Fatalf("the tus upload resumes at %d; want at least the %d stored before the fault", offset, tusBefore)
	}
	if n, _, err := u.srv.Patch(t.Context(), u.token, u.tusURL, offset, u.data.stream(offset, tusSize), tusSize-offset); err != nil || n != tusSize {
		t.Fatalf("finishing the tus upload from %d: offset %d, %v", offset, n, err)
	}

	fi, err := u.client.Stat("via-sftp.bin")
	if err != nil {
		t.Fatal(err)
	}
	stored := fi.Size()
	f, err := u.client.OpenFile("via-sftp.bin", os.O_WRONLY)
	if err != nil {
		t.Fatalf("open via-sftp.bin to resume it: %v", err)
	}
	if _, err := f.Seek(stored, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFrom(u.data.stream(stored, sftpSize)); err != nil {
		t.Fatalf("resuming via-sftp.bin at %d: %v", stored, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("closing via-sftp.bin: %v", err)
	}

	files := u.srv.Files(t, u.caseID)
	checkComplete(t, fileNamed(t, files, "via-tus.bin"), tusSize, patternSHA256(t, u.data, tusSize))
	checkComplete(t, fileNamed(t, files, "via-sftp.bin"), sftpSize, patternSHA256(t, u.data, sftpSize))
	if n, sum := downloadSHA256(t, u.srv, u.caseID, "via-tus.bin"); n != tusSize || sum != patternSHA256(t, u.data, tusSize) {
		t.Errorf("download of via-tus.bin: %d bytes, sha256 %s", n, sum)
	}
}

func patternSHA256(t *testing.T, p *pattern, size int64) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, p.stream(0, size)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// readyz returns the status and error code /readyz answers.
func readyz(t *testing.T, srv *testserver.Server) (int, string) {
	t.Helper()
	resp, err := srv.Client.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	var e struct{ Code string }
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Code
}

// waitReadyz polls /readyz until it answers status (with code, if not
// empty), failing the test after within; it returns how long that took.
func waitReadyz(t *testing.T, srv *testserver.Server, status int, code string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var got int
	var gotCode string
	err := waitFor(within, func() bool {
		got, gotCode = readyz(t, srv)
		return got == status && (code == "" || gotCode == code)
	})
	if err != nil {
		t.Fatalf("/readyz answered %d %s, not %d %s, for %v", got, gotCode, status, code, within)
	}
	return time.Since(start)
}

// checkToldOnce fails the test unless the server logged each of lines
// exactly once and the server-wide audit trail has one event of typ.
func checkToldOnce(t *testing.T, srv *testserver.Server, typ string, lines ...string) {
	t.Helper()
	log := srv.Log()
	for _, l := range lines {
		if n := strings.Count(log, l); n != 1 {
			t.Errorf("the log has %s %d times, want once", l, n)
		}
	}
	var events []map[string]any
	err := waitFor(10*time.Second, func() bool {
		events = events[:0]
		for _, ev := range serverTrail(t, srv) {
			if ev["type"] == typ {
				events = append(events, ev)
			}
		}
		return len(events) > 0
	})
	if err != nil || len(events) != 1 || !strings.Contains(fmt.Sprint(events[0]["detail"]), "operations failed") {
		t.Errorf("the server-wide audit trail has %v of type %s; want one saying how many operations failed", events, typ)
	}
}

func TestMinIOStoppedAndStartedMidUploadOnBothDoors(t *testing.T) {
	minio, err := miniotest.Start() // the test's own: it kills and restarts it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(minio.Stop)
	srv := testserver.Start(t, testserver.Options{S3: minio, Bucket: minio.NewBucket(t), PartSizeMiB: faultPartMiB})
	u := beginUploads(t, srv, "outage")

	minio.Kill()
	if took := waitReadyz(t, srv, http.StatusServiceUnavailable, "storage_unavailable", 2*time.Second); took > 1200*time.Millisecond {
		t.Errorf("/readyz took %v to say the store is unavailable, want about a second at most", took)
	}
	resp, body := u.tusCall(t, http.MethodPatch, tusBefore, mib)
	checkRetryLater(t, "tus PATCH", resp, body, http.StatusServiceUnavailable, "storage_unavailable", "5")
	resp, body = u.tusCall(t, http.MethodHead, 0, 0)
	checkRetryLater(t, "tus HEAD", resp, body, http.StatusServiceUnavailable, "storage_unavailable", "5")
	u.refusedOverSFTP(t, "the server's storage is unavailable: try again later")

	if err := minio.Restart(); err != nil {
		t.Fatal(err)
	}
	if took := waitReadyz(t, srv, http.StatusOK, "", 3*time.Second); took > 1200*time.Millisecond {
		t.Errorf("/readyz took %v to say ready after MinIO was back, want about a second at most", took)
	}
	u.finish(t)
	checkToldOnce(t, srv, "storage.unavailable", logUnavailable, logAvailable)
}

// smallFileSystem mounts a tmpfs of sizeMiB in a new directory and
// unmounts it when the test ends (after what the test starts later has
// stopped). Mounting needs root: as another user it goes through sudo
// without a password, as make test-deps's apt does, and fails the test
// saying so when that is not possible.
func smallFileSystem(t *testing.T, sizeMiB int) string {
	t.Helper()
	asRoot := func(args ...string) *exec.Cmd {
		if os.Geteuid() == 0 {
			return exec.Command(args[0], args[1:]...)
		}
		return exec.Command("sudo", append([]string{"-n"}, args...)...)
	}
	dir := t.TempDir()
	opts := fmt.Sprintf("size=%dm,mode=0700,uid=%d,gid=%d", sizeMiB, os.Getuid(), os.Getgid())
	if out, err := asRoot("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs of %d MiB needs root or passwordless sudo: %v\n%s", sizeMiB, err, out)
	}
	t.Cleanup(func() {
		if out, err := asRoot("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// fill allocates a file in dir that leaves about leave bytes free on its
// file system, and returns its path.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	path := filepath.Join(dir, "filler")
	if out, err := exec.Command("fallocate", "-l", strconv.FormatInt(free-leave, 10), path).CombinedOutput(); err != nil {
		t.Fatalf("fallocate: %v\n%s", err, out)
	}
	return path
}

// fillAndFree fills the file system of dir to leave bytes free under the
// uploads in flight, checks what clients are told and that nothing of
// theirs is lost or half written (whileFull checks more), frees the space
// and checks that the uploads finish and the outage is told once.
func (u *inFlight) fillAndFree(t *testing.T, dir string, leave int64, whileFull func()) {
	t.Helper()
	filler := fill(t, dir, leave)
	// MinIO looks at its drives' free space at most once a second.
	waitReadyz(t, u.srv, http.StatusServiceUnavailable, "insufficient_storage", 3*time.Second)
	resp, body := u.tusCall(t, http.MethodPatch, tusBefore, 6*mib)
	checkRetryLater(t, "tus PATCH", resp, body, http.StatusInsufficientStorage, "insufficient_storage", "60")
	if offset := u.srv.Head(t, u.token, u.tusURL); offset != tusBefore {
		t.Errorf("with the store full the upload is at %d, want the %d stored before", offset, tusBefore)
	}
	u.refusedOverSFTP(t, "the server's storage is full: try again later")
	whileFull()

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if took := waitReadyz(t, u.srv, http.StatusOK, "", 3*time.Second); took > 1200*time.Millisecond {
		t.Errorf("/readyz took %v to say ready after space was freed, want about a second at most", took)
	}
	u.finish(t)
	checkToldOnce(t, u.srv, "storage.full", logFull, logSpace)
}

func TestAFullDiskAnswers507AndUploadsResumeOnceSpaceIsFreed(t *testing.T) {
	needTools(t, "mount", "umount", "fallocate")
	dir := smallFileSystem(t, 96)
	srv := testserver.Start(t, testserver.Options{DataDir: filepath.Join(dir, "data"), PartSizeMiB: faultPartMiB})
	u := beginUploads(t, srv, "full-disk")
	u.fillAndFree(t, dir, mib, func() {
		if left, _ := os.ReadDir(filepath.Join(dir, "data", "store", ".tmp")); len(left) > 0 {
			t.Errorf("the failed writes left temporary files: %v", left)
		}
	})
}

func TestAFullMinIOAnswers507AndUploadsResumeOnceSpaceIsFreed(t *testing.T) {
	needTools(t, "mount", "umount", "fallocate")
	dir := smallFileSystem(t, 256)
	data := filepath.Join(dir, "minio")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	minio, err := miniotest.StartIn(data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(minio.Stop)
	srv := testserver.Start(t, testserver.Options{S3: minio, Bucket: minio.NewBucket(t), PartSizeMiB: faultPartMiB})
	u := beginUploads(t, srv, "full-minio")
	// MinIO takes no write at all under 1% free (2.5 MiB here).
	u.fillAndFree(t, dir, mib, func() {})
}
