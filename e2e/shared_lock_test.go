package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testserver"
	miniogo "github.com/minio/minio-go/v7"
)

// Two instances with --shared-lock (the store probed, locks and fenced
// state saves in the store), on one MinIO bucket and on one data
// directory: one tus upload whose requests alternate between them ends
// whole with its digest, each instance seeing the other's progress.
// Mutual exclusion and fencing are the unit tests'
// (upload/storelock_test.go); the load balancer's, balancer_test.go.
func TestTwoInstancesWithASharedLockTakeTurnsOnOneUpload(t *testing.T) {
	t.Run("on one MinIO bucket", func(t *testing.T) {
		a, b, token, _, _ := sharedPair(t, "shared")
		takeTurns(t, a, b, token)
	})
	t.Run("on one data directory", func(t *testing.T) {
		dir := t.TempDir()
		opts := func(name string) testserver.Options {
			return testserver.Options{DataDir: dir, PartSizeMiB: sftpPartMiB, Args: []string{"--shared-lock", "--instance", name}}
		}
		a := testserver.Start(t, opts("a"))
		b := testserver.Start(t, opts("b"))
		a.OpenCase(t, "shared")
		takeTurns(t, a, b, a.Credential(t, "shared", "customer").Token)
	})
}

// takeTurns uploads one file with three PATCHes, to a, b and a again.
func takeTurns(t *testing.T, a, b *testserver.Server, token string) {
	const size = 23*mib + 11
	path, want := patternFile(t, t.TempDir(), "shared.bin", size, 80)
	locA := a.Create(t, token, "shared.bin", size, want)
	u, err := url.Parse(locA)
	if err != nil {
		t.Fatal(err)
	}
	locB := b.URL + u.Path
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Three requests: A, then B, then A again, each from where the last
	// one's instance says the upload is.
	servers := []*testserver.Server{a, b, a}
	locs := []string{locA, locB, locA}
	var off int64
	for i, srv := range servers {
		end := min(size, off+9*mib)
		if i == len(servers)-1 {
			end = size
		}
		got, _, err := srv.Patch(context.Background(), token, locs[i], off, strings.NewReader(string(must(readRange(src, off, end)))), end-off)
		if err != nil {
			t.Fatalf("PATCH %d (instance %s) at %d: %v", i+1, map[bool]string{true: "a", false: "b"}[i%2 == 0], off, err)
		}
		off = got
		if i+1 < len(servers) {
			if o := servers[i+1].Head(t, token, locs[i+1]); o != off {
				t.Fatalf("after PATCH %d the other instance says offset %d, want %d", i+1, o, off)
			}
		}
	}
	checkComplete(t, fileNamed(t, b.Files(t, "shared"), "shared.bin"), size, want)
}

func readRange(f *os.File, from, to int64) ([]byte, error) {
	buf := make([]byte, to-from)
	_, err := f.ReadAt(buf, from)
	return buf, err
}

// sharedPair starts two instances with --shared-lock on one MinIO bucket,
// opens case c and returns them with a customer credential's token.
func sharedPair(t *testing.T, c string) (a, b *testserver.Server, token string, minio *miniotest.Server, bucket string) {
	t.Helper()
	minio = miniotest.Shared(t)
	bucket = minio.NewBucket(t)
	opts := func(name string) testserver.Options {
		return testserver.Options{S3: minio, Bucket: bucket, PartSizeMiB: sftpPartMiB,
			Args: []string{"--shared-lock", "--instance", name}}
	}
	a = testserver.Start(t, opts("a"))
	b = testserver.Start(t, opts("b"))
	a.OpenCase(t, c)
	return a, b, a.Credential(t, c, "customer").Token, minio, bucket
}

// randomData is size bytes no other seed repeats.
func randomData(size int, seed uint64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// storedOffset reads the offset upload id's saved state records, from the
// bucket itself: a tus HEAD would take the upload's lock.
func storedOffset(t *testing.T, minio *miniotest.Server, bucket, caseID, id string) int64 {
	t.Helper()
	client, err := minio.Client()
	if err != nil {
		t.Fatal(err)
	}
	obj, err := client.GetObject(context.Background(), bucket, cases.Prefix(caseID)+"uploads/"+id+".state", miniogo.GetObjectOptions{})
	if err != nil {
		return -1
	}
	defer obj.Close()
	const magic = "casedrop-upload-state/1\n"
	head := make([]byte, len(magic)+4)
	if _, err := io.ReadFull(obj, head); err != nil {
		return -1
	}
	var s struct {
		Offset int64 `json:"offset"`
	}
	if err := json.NewDecoder(io.LimitReader(obj, int64(binary.BigEndian.Uint32(head[len(magic):])))).Decode(&s); err != nil {
		t.Fatalf("upload state: %v", err)
	}
	return s.Offset
}

// headOffset is a tus HEAD that reports instead of failing the test: it
// may run outside the test's goroutine.
func headOffset(ctx context.Context, srv *testserver.Server, token, uploadURL string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, uploadURL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Tus-Resumable", "1.0.0")
	resp, err := srv.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HEAD %s: %s", uploadURL, resp.Status)
	}
	return strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
}

// heldPatch is a PATCH at offset 0 whose body the test feeds: it holds the
// upload's lock on its instance while the test decides what comes next.
type heldPatch struct {
	w      *io.PipeWriter
	status chan int
}

func startHeldPatch(srv *testserver.Server, token, uploadURL string, size int64) *heldPatch {
	r, w := io.Pipe()
	p := &heldPatch{w: w, status: make(chan int, 1)}
	go func() {
		_, status, err := srv.PatchWith(context.Background(), srv.NewClient(), token, uploadURL, 0, r, size)
		r.CloseWithError(fmt.Errorf("the PATCH ended: %v", err))
		p.status <- status
	}()
	return p
}

// startHolding creates core.bin in case caseID on srv and starts a held
// PATCH of data on it, fed its first 12 MiB, once the saved state says 10
// MiB (two parts) are stored: the instance holds the upload's lock.
func startHolding(t *testing.T, srv *testserver.Server, token string, minio *miniotest.Server, bucket, caseID string, data []byte) (id string, held *heldPatch) {
	t.Helper()
	loc := srv.Create(t, token, "core.bin", int64(len(data)), "")
	id = path.Base(loc)
	held = startHeldPatch(srv, token, loc, int64(len(data)))
	held.feed(data[:12*mib])
	if err := waitFor(30*time.Second, func() bool { return storedOffset(t, minio, bucket, caseID, id) >= 10*mib }); err != nil {
		t.Fatal("the first writer's parts were never stored")
	}
	return id, held
}

// feed sends b on the held PATCH, in the background: the instance may
// stop reading.
func (p *heldPatch) feed(b []byte) {
	go func() { _, _ = p.w.Write(b) }()
}

// wait returns the held PATCH's status once it ended (0 for no answer).
func (p *heldPatch) wait(t *testing.T) int {
	t.Helper()
	select {
	case status := <-p.status:
		return status
	case <-time.After(30 * time.Second):
		t.Fatal("the held PATCH did not end within 30 s")
		return 0
	}
}

// Two writers on one upload at once, through two instances: the newer
// asks the holder on the other instance to let go, the older request is
// stopped with what it stored kept, and the newer continues from there.
// The file is the older writer's bytes up to that offset and the newer's
// after, its digest that of the stored bytes: never bytes of both at one
// offset, never a digest of other bytes.
func TestTwoWritersThroughTwoInstancesNeverMix(t *testing.T) {
	a, b, token, minio, bucket := sharedPair(t, "twowriters")
	const size = 30 * mib
	older, newer := randomData(size, 1), randomData(size, 2)
	id, held := startHolding(t, a, token, minio, bucket, "twowriters", older)

	locB := b.URL + "/files/" + id
	off, err := headOffset(t.Context(), b, token, locB)
	if err != nil {
		t.Fatalf("the newer writer's HEAD on the other instance: %v", err)
	}
	if off < 10*mib || off > 12*mib {
		t.Fatalf("the newer writer found offset %d, want what the older one stored (10 to 12 MiB)", off)
	}
	if status := held.wait(t); status == http.StatusNoContent {
		t.Fatal("the older writer's PATCH succeeded after the newer one took the upload over")
	}
	if _, _, err := b.Patch(t.Context(), token, locB, off, bytes.NewReader(newer[off:]), size-off); err != nil {
		t.Fatalf("the newer writer's PATCH: %v", err)
	}
	want := append(slices.Clone(older[:off]), newer[off:]...)
	f := fileNamed(t, a.Files(t, "twowriters"), "core.bin")
	checkComplete(t, f, size, hex.EncodeToString(must(sha256Of(want))))
	if got, _ := a.Download(t, "twowriters", "core.bin"); !bytes.Equal(got, want) {
		t.Fatal("the stored bytes are not the older writer's up to the takeover and the newer's after")
	}
}

// An instance stopped (SIGSTOP) past its lease while it holds an upload:
// another instance takes the upload over and continues it; when the
// stopped one wakes up (SIGCONT) its write stops before it stores anything
// more (423 upload_taken_over, or the request cut), and the file is the
// new writer's from where it took over.
func TestAStoppedHolderWakesUpToALostUpload(t *testing.T) {
	a, b, token, minio, bucket := sharedPair(t, "paused")
	const size = 30 * mib
	older, newer := randomData(size, 3), randomData(size, 4)
	id, held := startHolding(t, a, token, minio, bucket, "paused", older)
	if err := a.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	defer func() { _ = a.Signal(syscall.SIGCONT) }()

	// The lease (10 s) runs out; tusd waits 20 s for a lock.
	locB := b.URL + "/files/" + id
	off, err := headOffset(t.Context(), b, token, locB)
	if err != nil {
		t.Fatalf("HEAD on the other instance while the holder is stopped: %v", err)
	}
	t.Logf("taken over %.1f s after the holder stopped, at byte %d", time.Since(stopped).Seconds(), off)
	stored := storedOffset(t, minio, bucket, "paused", id)
	if off != stored {
		t.Fatalf("the other instance continues at %d, the saved state says %d", off, stored)
	}
	mid := off + 6*mib
	if _, _, err := b.Patch(t.Context(), token, locB, off, bytes.NewReader(newer[off:mid]), mid-off); err != nil {
		t.Fatalf("PATCH on the other instance: %v", err)
	}

	if err := a.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	held.feed(older[12*mib:])
	if status := held.wait(t); status == http.StatusNoContent {
		t.Fatal("the woken holder's PATCH succeeded on an upload another instance took over")
	}
	if got := storedOffset(t, minio, bucket, "paused", id); got != mid {
		t.Fatalf("after the woken holder's write the saved state says %d, want the new writer's %d", got, mid)
	}
	if _, _, err := b.Patch(t.Context(), token, locB, mid, bytes.NewReader(newer[mid:]), size-mid); err != nil {
		t.Fatalf("PATCH on the other instance after the holder woke: %v", err)
	}
	want := append(slices.Clone(older[:off]), newer[off:]...)
	f := fileNamed(t, b.Files(t, "paused"), "core.bin")
	checkComplete(t, f, size, hex.EncodeToString(must(sha256Of(want))))
	if got, _ := a.Download(t, "paused", "core.bin"); !bytes.Equal(got, want) {
		t.Fatal("the stored bytes are not the first writer's up to the takeover and the new writer's after")
	}
}

func sha256Of(b []byte) ([]byte, error) {
	s := sha256.Sum256(b)
	return s[:], nil
}
