package upload_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/upload"
)

// errAnswerLost is what a client of the store sees when the store did the
// work but its answer never arrived.
var errAnswerLost = errors.New("connection reset by peer")

// lossyStore does what it is asked and, when told to, loses the answer:
// the operation took effect, the caller gets an error.
type lossyStore struct {
	storage.Store
	loseComplete atomic.Int32 // completions whose answer is lost
	losePart     atomic.Int32 // part uploads whose answer is lost
	failStat     atomic.Int32 // Stats that fail (the store unreachable a moment)
}

func (l *lossyStore) CompleteMultipart(ctx context.Context, key, id string, parts []storage.Part) (storage.Info, error) {
	info, err := l.Store.CompleteMultipart(ctx, key, id, parts)
	if err == nil && l.loseComplete.Add(-1) >= 0 {
		return storage.Info{}, errAnswerLost
	}
	return info, err
}

func (l *lossyStore) PutPart(ctx context.Context, key, id string, n int, r io.Reader, size int64) (storage.Part, error) {
	p, err := l.Store.PutPart(ctx, key, id, n, r, size)
	if err == nil && l.losePart.Add(-1) >= 0 {
		return storage.Part{}, errAnswerLost
	}
	return p, err
}

func (l *lossyStore) Stat(ctx context.Context, key string) (storage.Info, error) {
	if l.failStat.Add(-1) >= 0 {
		return storage.Info{}, errAnswerLost
	}
	return l.Store.Stat(ctx, key)
}

func lossyFixture(t *testing.T, newStore func() storage.Store) (*fixture, *lossyStore) {
	lossy := &lossyStore{}
	f := newFixture(t, func() storage.Store { lossy.Store = newStore(); return lossy })
	return f, lossy
}

// A completion whose answer is lost is found complete: the upload
// finishes with the right digest, and nothing starts again from byte 0.
func TestACompletionWhoseAnswerIsLostFinishesTheUpload(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		f, lossy := lossyFixture(t, newStore)
		data := randomBytes(3*storage.MinPartSize+77, 31)
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "lost-answer.bin", Size: int64(len(data)), Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		lossy.loseComplete.Store(1)
		if _, err := up.Write(ctx, 0, bytes.NewReader(data)); err != nil {
			t.Fatalf("write whose completion's answer was lost: %v", err)
		}
		file, err := up.Finish(ctx)
		if err != nil || file.SHA256 != sha(data) || file.Size != int64(len(data)) {
			t.Fatalf("finished %+v (%v), want sha256 %s", file, err, sha(data))
		}
		if !bytes.Equal(readFile(t, f, "lost-answer.bin"), data) {
			t.Fatal("stored bytes differ")
		}
	})
}

// The process dies between the store's completion and the saved state
// (here: the answer is lost and the store cannot be asked at once). After
// a restart the upload is found whole, not reset to byte 0.
func TestAnUploadCompletedJustBeforeACrashIsWholeAfterTheRestart(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		f, lossy := lossyFixture(t, newStore)
		data := randomBytes(2*storage.MinPartSize+4000, 32)
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "sftp.bin", Size: -1, Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(ctx, 0, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		lossy.loseComplete.Store(1)
		lossy.failStat.Store(1)
		if _, err := up.Finish(ctx); err == nil {
			t.Fatal("Finish succeeded although the completion's answer was lost and the store could not be asked")
		}
		f.restart()
		up, err = f.in.Resume(ctx, "case-1", up.Info().ID)
		if err != nil {
			t.Fatal(err)
		}
		if off := up.Info().Offset; off != int64(len(data)) {
			t.Fatalf("offset after the restart %d, want %d", off, len(data))
		}
		file, err := up.Finish(ctx)
		if err != nil || file.SHA256 != sha(data) {
			t.Fatalf("finished after the restart: %+v (%v), want sha256 %s", file, err, sha(data))
		}
		if !bytes.Equal(readFile(t, f, "sftp.bin"), data) {
			t.Fatal("stored bytes differ")
		}
	})
}

// A part whose answer is lost is sent again, from the offset recorded
// before it: nothing before it is lost.
func TestAPartWhoseAnswerIsLostIsSentAgainAndNothingBefore(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		f, lossy := lossyFixture(t, newStore)
		data := randomBytes(4*storage.MinPartSize+9, 33)
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "parts.bin", Size: int64(len(data)), SHA256: sha(data), Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		first := 2 * storage.MinPartSize
		if _, err := up.Write(ctx, 0, bytes.NewReader(data[:first])); err != nil {
			t.Fatal(err)
		}
		lossy.losePart.Store(1)
		if _, err := up.Write(ctx, int64(first), bytes.NewReader(data[first:])); err == nil {
			t.Fatal("a write whose part's answer was lost succeeded")
		}
		off := up.Info().Offset
		if off < int64(first) {
			t.Fatalf("after the lost answer the offset went back to %d, below the %d stored before", off, first)
		}
		if _, err := up.Write(ctx, off, bytes.NewReader(data[off:])); err != nil {
			t.Fatal(err)
		}
		if file, err := up.Finish(ctx); err != nil || file.SHA256 != sha(data) {
			t.Fatalf("finished %+v (%v)", file, err)
		}
	})
}

// blockingReader gives data, then waits until released, then fails as a
// dropped connection does.
type blockingReader struct {
	r       io.Reader
	release chan struct{}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		<-b.release
		return 0, errAnswerLost
	}
	return n, err
}

// Each part is in the saved state as soon as the store has it, while the
// request still runs; and what arrived before a request broke off is
// saved with it, so a crash costs at most the part being filled.
func TestPartsAreRecordedAsTheyAreStoredAndARequestCutOffKeepsItsBytes(t *testing.T) {
	ctx := context.Background()
	f := diskFixture(t, upload.Config{})
	data := randomBytes(2*storage.MinPartSize+12345, 34)
	up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "slow.bin", Size: -1, Via: "test"})
	if err != nil {
		t.Fatal(err)
	}
	id := up.Info().ID
	r := &blockingReader{r: bytes.NewReader(data), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := up.Write(ctx, 0, r)
		done <- err
	}()
	// Another process looks at the saved state while the request waits
	// for its client: both full parts are recorded.
	other := upload.New(upload.Config{Store: f.newStore(), Catalog: cases.New(f.newStore(), clock), Now: clock, PartSize: storage.MinPartSize})
	upload.WaitFor(t, func() bool {
		saved, err := other.Resume(ctx, "case-1", id)
		return err == nil && saved.Info().Offset == 2*storage.MinPartSize
	})
	close(r.release)
	if err := <-done; err == nil {
		t.Fatal("a write cut off reported success")
	}
	saved, err := other.Resume(ctx, "case-1", id)
	if err != nil {
		t.Fatal(err)
	}
	if off := saved.Info().Offset; off != int64(len(data)) {
		t.Fatalf("after the request broke off %d bytes are saved, want all %d that arrived", off, len(data))
	}
	file, err := saved.Finish(ctx)
	if err != nil || file.SHA256 != sha(data) {
		t.Fatalf("finished %+v (%v)", file, err)
	}
}

// A multipart upload an earlier process started and never recorded is
// aborted when the upload goes on, not left to cost storage.
func TestAMultipartUploadNeverRecordedIsAborted(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		f := newFixture(t, newStore)
		data := randomBytes(storage.MinPartSize+10, 35)
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "orphan.bin", Size: int64(len(data)), Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		key := cases.Prefix("case-1") + "objects/" + up.Info().ID
		store := newStore()
		if _, err := store.NewMultipart(ctx, key); err != nil { // the process died here
			t.Fatal(err)
		}
		f.restart()
		up, err = f.in.Resume(ctx, "case-1", up.Info().ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(ctx, 0, bytes.NewReader(data[:storage.MinPartSize+5])); err != nil {
			t.Fatal(err)
		}
		mps, err := store.ListMultiparts(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(mps) != 1 {
			t.Fatalf("multipart uploads of the object: %+v, want only the recorded one", mps)
		}
		if _, err := up.Write(ctx, up.Info().Offset, bytes.NewReader(data[up.Info().Offset:])); err != nil {
			t.Fatal(err)
		}
		if file, err := up.Finish(ctx); err != nil || file.SHA256 != sha(data) {
			t.Fatalf("finished %+v (%v)", file, err)
		}
	})
}

// failingCatalogWrites fails the writes of catalog entries while armed, as
// a crash right after the store took the last bytes would leave it.
type failingCatalogWrites struct {
	storage.Store
	fail atomic.Bool
}

func (f *failingCatalogWrites) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if f.fail.Load() && strings.Contains(key, "/files/") {
		return errAnswerLost
	}
	return f.Store.Put(ctx, key, r, size)
}

// Every byte stored but the commit lost (the process died between): the
// next client to look for the partial finds the file complete instead.
func TestAnUploadStoredButNotCommittedIsCommittedWhenLookedFor(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	failing := &failingCatalogWrites{}
	f := newFixture(t, func() storage.Store { failing.Store = must(diskstore.New(root)); return failing })
	data := randomBytes(storage.MinPartSize+321, 36)
	up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "closed.bin", Size: -1, Via: "sftp"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(ctx, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	failing.fail.Store(true)
	if _, err := up.Finish(ctx); err == nil {
		t.Fatal("Finish succeeded with the catalog unwritable")
	}
	failing.fail.Store(false)
	f.restart()
	if _, err := f.in.Partial(ctx, "case-1", "closed.bin"); !errors.Is(err, upload.ErrNotFound) {
		t.Fatalf("Partial of a stored upload: %v, want ErrNotFound (it is complete now)", err)
	}
	entry, err := f.catalog.File(ctx, "case-1", "closed.bin")
	if err != nil || entry.State != cases.FileComplete || entry.SHA256 != sha(data) {
		t.Fatalf("catalog entry %+v (%v), want complete with sha256 %s", entry, err, sha(data))
	}
}

// A catalog entry without a saved state (an earlier release saved the
// entry first and died) no longer holds its name for ever.
func TestAnUploadEntryWithoutStateIsDroppedOnceStale(t *testing.T) {
	ctx := context.Background()
	f := diskFixture(t, upload.Config{})
	for _, tc := range []struct {
		age  time.Duration
		kept bool
	}{{10 * time.Second, true}, {2 * time.Minute, false}} {
		name := fmt.Sprintf("zombie-%v.bin", tc.age)
		if _, err := f.catalog.AddFile(ctx, "case-1", cases.File{
			Name: name, Object: "0123456789abcdef0123456789abcdef", State: cases.FileUploading, StartedAt: clock().Add(-tc.age),
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.in.Partial(ctx, "case-1", name); !errors.Is(err, upload.ErrNotFound) {
			t.Fatalf("Partial of an entry without state: %v, want ErrNotFound", err)
		}
		_, err := f.catalog.File(ctx, "case-1", name)
		if kept := err == nil; kept != tc.kept {
			t.Errorf("an entry %v old without its state: kept %v, want %v", tc.age, kept, tc.kept)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// listCounting counts the listings of multipart uploads.
type listCounting struct {
	storage.Store
	lists atomic.Int32
}

func (l *listCounting) ListMultiparts(ctx context.Context, prefix string) ([]storage.Multipart, error) {
	l.lists.Add(1)
	return l.Store.ListMultiparts(ctx, prefix)
}

// Looking for unrecorded multipart uploads costs a listing (on S3, of the
// whole bucket's): only an upload another process saved last is looked
// at, not each of this process's own, as every tus request resumes one.
func TestOnlyAnUploadSavedByAnotherProcessLooksForUnrecordedParts(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	counting := &listCounting{}
	f := newFixture(t, func() storage.Store { counting.Store = must(diskstore.New(root)); return counting })
	data := randomBytes(2*storage.MinPartSize, 37)
	up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "own.bin", Size: int64(len(data)), Via: "tus"})
	if err != nil {
		t.Fatal(err)
	}
	up, err = f.in.Resume(ctx, "case-1", up.Info().ID) // the next request
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(ctx, 0, bytes.NewReader(data[:storage.MinPartSize+1])); err != nil {
		t.Fatal(err)
	}
	if n := counting.lists.Load(); n != 0 {
		t.Errorf("an upload this process saved was looked at for unrecorded parts (%d listings)", n)
	}
}
