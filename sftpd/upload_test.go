package sftpd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
)

func TestAnUploadIsListedStatedDownloadedAndCatalogedWithItsSHA256(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		cr := e.issue(t, "case-1", 0)
		c := e.login(t, cr)
		data := randomBytes(2*storage.MinPartSize+123457, 1) // two parts and a tail
		put(t, c, "capture.pcap", data)
		put(t, c, "empty.txt", nil)

		entries, err := c.ReadDir("/")
		if err != nil {
			t.Fatal(err)
		}
		sizes := map[string]int64{}
		for _, fi := range entries {
			sizes[fi.Name()] = fi.Size()
			if fi.Mode().Perm() != 0o644 || fi.IsDir() {
				t.Errorf("%s listed with mode %v, want a 0644 file", fi.Name(), fi.Mode())
			}
		}
		if len(sizes) != 2 || sizes["capture.pcap"] != int64(len(data)) || sizes["empty.txt"] != 0 {
			t.Fatalf("listing %v, want capture.pcap of %d bytes and empty.txt", sizes, len(data))
		}
		fi, err := c.Stat("capture.pcap")
		if err != nil || fi.Size() != int64(len(data)) {
			t.Fatalf("stat: %v, %v", fi, err)
		}
		root, err := c.Stat("/")
		if err != nil || !root.IsDir() || root.Mode().Perm() != 0o755 {
			t.Fatalf("stat of the root: %v, %v", root, err)
		}
		if got := get(t, c, "capture.pcap"); !bytes.Equal(got, data) {
			t.Fatal("downloaded bytes differ from the uploaded ones")
		}
		f := e.catalogFile(t, "capture.pcap")
		if f.State != cases.FileComplete || f.SHA256 != sha(data) || f.Size != int64(len(data)) || f.Via != "sftp" || f.UploadedBy != cr.user {
			t.Fatalf("catalog entry %+v, want complete, sha256 %s, via sftp, by %s", f, sha(data), cr.user)
		}
		if !fi.ModTime().Equal(*f.UploadedAt) {
			t.Errorf("stat time %v, want the upload time %v", fi.ModTime(), *f.UploadedAt)
		}
	})
}

func TestAnUploadResumesAfterADroppedConnectionWithTheRightDigest(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		cr := e.issue(t, "case-1", 0)
		data := randomBytes(3*storage.MinPartSize+4321, 2)
		cut := int64(storage.MinPartSize + 999) // a part and a tail

		second := e.partial(t, cr, "core.gz", data[:cut])
		if e.catalogFile(t, "core.gz").State != cases.FileUploading {
			t.Fatal("a dropped upload was committed")
		}
		// As OpenSSH's reput: open without truncating, write from the size.
		g, err := second.OpenFile("core.gz", os.O_WRONLY|os.O_CREATE|os.O_APPEND)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.WriteAt(data[cut:], cut); err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		got := e.catalogFile(t, "core.gz")
		if got.State != cases.FileComplete || got.SHA256 != sha(data) || got.Size != int64(len(data)) {
			t.Fatalf("catalog entry %+v, want complete with sha256 %s", got, sha(data))
		}
		if !bytes.Equal(get(t, second, "core.gz"), data) {
			t.Fatal("stored bytes differ")
		}
		files, err := e.catalog.Files(context.Background(), "case-1")
		if err != nil || len(files) != 1 {
			t.Fatalf("catalog %v, %v: want the one file", files, err)
		}
	})
}

func TestConcurrentOutOfOrderWritesOnOneHandleStoreTheRightBytes(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		c := e.login(t, e.issue(t, "case-1", 0))
		data := randomBytes(2*storage.MinPartSize+54321, 3)
		const chunk = 32 << 10
		var offsets []int
		for off := 0; off < len(data); off += chunk {
			offsets = append(offsets, off)
		}
		rand.New(rand.NewPCG(4, 4)).Shuffle(len(offsets), func(i, j int) { offsets[i], offsets[j] = offsets[j], offsets[i] })

		f, err := c.OpenFile("dump.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			t.Fatal(err)
		}
		work := make(chan int)
		errs := make(chan error, len(offsets))
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for off := range work {
					_, err := f.WriteAt(data[off:min(off+chunk, len(data))], int64(off))
					errs <- err
				}
			})
		}
		for _, off := range offsets {
			work <- off
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := e.catalogFile(t, "dump.bin"); got.SHA256 != sha(data) || got.State != cases.FileComplete {
			t.Fatalf("catalog entry %+v, want sha256 %s", got, sha(data))
		}
	})
}

func TestOverlappingAndRepeatedWritesStoreEachByteOnce(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	data := randomBytes(1000, 11)
	f, err := c.OpenFile("overlap.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range [][2]int{{100, 300}, {200, 400}, {350, 360}, {0, 100}, {0, 50}, {390, 700}, {400, 450}, {650, 1000}, {10, 990}} {
		if _, err := f.WriteAt(data[w[0]:w[1]], int64(w[0])); err != nil {
			t.Fatalf("write %v: %v", w, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.catalogFile(t, "overlap.bin"); got.SHA256 != sha(data) || got.Size != 1000 {
		t.Fatalf("catalog entry %+v, want sha256 %s", got, sha(data))
	}
}

func TestAWriteTooFarAheadIsRefusedAndTheUploadKeepsWhatArrivedInOrder(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	f, err := c.OpenFile("sparse.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("start")); err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte("far"), 1<<30)
	wantStatus(t, "write 1 GiB ahead", err, codeFailure)

	_, err = f.WriteAt([]byte(" more"), 5)
	wantStatus(t, "write after a refused one", err, codeFailure)
	wantStatus(t, "close", f.Close(), codeFailure)
	if got := storedSize(t, c, "sparse.bin"); got != 5 {
		t.Fatalf("stored %d bytes, want the 5 written in order", got)
	}
	if e.catalogFile(t, "sparse.bin").State != cases.FileUploading {
		t.Fatal("an upload with a refused write was committed")
	}

	g, err := c.OpenFile("negative.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write([]byte("start")); err != nil {
		t.Fatal(err)
	}
	_, err = g.WriteAt([]byte("negative"), -8) // on the wire, an offset above 2^63
	wantStatus(t, "write at a negative offset", err, codeFailure)
}

func TestAnUploadClosedWithAGapStaysAPartial(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	f, err := c.OpenFile("gap.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("tail"), 100); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "close with a gap", f.Close(), codeFailure)
	if got := storedSize(t, c, "gap.bin"); got != 4 {
		t.Fatalf("stored %d bytes, want the 4 before the gap", got)
	}
}

func TestWinSCPUploadToFilepartIsFinishedByItsRenameWithTheDigest(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		cr := e.issue(t, "case-1", 0)
		data := randomBytes(storage.MinPartSize+777, 5)
		mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

		// The first attempt dies half way; WinSCP resumes the .filepart from
		// the size it lists.
		c := e.partial(t, cr, "report.tgz.filepart", data[:100000])
		fi, err := c.Stat("report.tgz.filepart")
		if err != nil {
			t.Fatal(err)
		}
		size := fi.Size()
		g, err := c.OpenFile("report.tgz.filepart", os.O_WRONLY)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Seek(size, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := g.ReadFrom(bytes.NewReader(data[size:])); err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		// Closed with every byte: still a partial, listed with its size,
		// until the rename says the upload is done.
		if got := e.catalogFile(t, "report.tgz.filepart"); got.State != cases.FileUploading {
			t.Fatalf("after the close the .filepart is %+v, want still uploading", got)
		}
		if got := storedSize(t, c, "report.tgz.filepart"); got != int64(len(data)) {
			t.Fatalf("stat of the closed .filepart says %d bytes, want %d", got, len(data))
		}
		if err := c.Chtimes("report.tgz.filepart", mtime, mtime); err != nil {
			t.Fatalf("setstat of times: %v", err)
		}
		if err := c.Rename("report.tgz.filepart", "report.tgz"); err != nil {
			t.Fatalf("rename: %v", err)
		}
		if got := e.catalogFile(t, "report.tgz"); got.SHA256 != sha(data) || got.State != cases.FileComplete || got.Size != int64(len(data)) {
			t.Fatalf("after the rename: %+v, want complete with sha256 %s", got, sha(data))
		}
		if err := c.Chtimes("report.tgz", mtime, mtime); err != nil {
			t.Fatalf("setstat of times after the rename: %v", err)
		}
		if err := c.Chmod("report.tgz", 0o600); err != nil {
			t.Fatalf("setstat of permissions: %v", err)
		}
		if fi, err := c.Stat("report.tgz"); err != nil || fi.Size() != int64(len(data)) {
			t.Fatalf("stat: %v, %v", fi, err)
		}
		if _, err := c.Stat("report.tgz.filepart"); !os.IsNotExist(err) {
			t.Fatalf("stat of the .filepart after the rename: %v", err)
		}
		if !bytes.Equal(get(t, c, "report.tgz"), data) {
			t.Fatal("downloaded bytes differ")
		}
	})
}

func TestAFilepartCancelledWithACleanCloseStaysResumable(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	data := randomBytes(300000, 13)

	// WinSCP's cancel: the handle is closed cleanly half way.
	f, err := c.OpenFile("trace.pcap.filepart", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:120000]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close of a cancelled .filepart: %v", err)
	}
	if got := e.catalogFile(t, "trace.pcap.filepart"); got.State != cases.FileUploading {
		t.Fatalf("the cancelled .filepart is %+v, want still uploading", got)
	}
	size := storedSize(t, c, "trace.pcap.filepart")
	if size != 120000 {
		t.Fatalf("the cancelled .filepart is listed with %d bytes, want 120000", size)
	}
	g, err := c.OpenFile("trace.pcap.filepart", os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteAt(data[size:], size); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("trace.pcap.filepart", "trace.pcap"); err != nil {
		t.Fatal(err)
	}
	if got := e.catalogFile(t, "trace.pcap"); got.SHA256 != sha(data) || got.State != cases.FileComplete {
		t.Fatalf("catalog entry %+v, want complete with sha256 %s", got, sha(data))
	}
}

func TestAFilepartRenamedAfterADroppedConnectionStaysAPartial(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issue(t, "case-1", 0)
	data := randomBytes(200000, 14)
	c := e.partial(t, cr, "db.tar.filepart", data[:70000])
	if err := c.Rename("db.tar.filepart", "db.tar"); err != nil {
		t.Fatal(err)
	}
	if got := e.catalogFile(t, "db.tar"); got.State != cases.FileUploading {
		t.Fatalf("a .filepart cut off half way was finished by its rename: %+v", got)
	}
	// A resume under the new name, closed, finishes it as any upload.
	g, err := c.OpenFile("db.tar", os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteAt(data[70000:], 70000); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.catalogFile(t, "db.tar"); got.SHA256 != sha(data) || got.State != cases.FileComplete {
		t.Fatalf("catalog entry %+v, want complete with sha256 %s", got, sha(data))
	}
}

func TestAFilepartRenamedToAnotherFilepartStaysWholeForItsFinalRename(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	data := randomBytes(150000, 15)
	put(t, c, "a.filepart", data)
	if err := c.Rename("a.filepart", "b.filepart"); err != nil {
		t.Fatal(err)
	}
	if got := e.catalogFile(t, "b.filepart"); got.State != cases.FileUploading {
		t.Fatalf("a rename between .filepart names finished the upload: %+v", got)
	}
	if err := c.PosixRename("b.filepart", "b.bin"); err != nil {
		t.Fatal(err)
	}
	if got := e.catalogFile(t, "b.bin"); got.SHA256 != sha(data) || got.State != cases.FileComplete {
		t.Fatalf("catalog entry %+v, want complete with sha256 %s", got, sha(data))
	}
}

func TestARenameOfAPartialCarriesItsProgress(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issue(t, "case-1", 0)
	data := randomBytes(300000, 6)
	c := e.partial(t, cr, "a.part", data[:1000])
	if err := c.PosixRename("a.part", "a.bin"); err != nil {
		t.Fatal(err)
	}
	g, err := c.OpenFile("a.bin", os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteAt(data[1000:], 1000); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.catalogFile(t, "a.bin"); got.SHA256 != sha(data) {
		t.Fatalf("catalog entry %+v, want sha256 %s", got, sha(data))
	}
}

func TestFileZillaOpenWithTruncateRestartsAPartial(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issue(t, "case-1", 0)
	c := e.partial(t, cr, "logs.zip", randomBytes(200000, 7))
	data := randomBytes(50000, 8)
	put(t, c, "logs.zip", data) // O_TRUNC
	if got := e.catalogFile(t, "logs.zip"); got.SHA256 != sha(data) || got.Size != int64(len(data)) {
		t.Fatalf("catalog entry %+v, want the new upload (sha256 %s)", got, sha(data))
	}
	files, err := e.catalog.Files(context.Background(), "case-1")
	if err != nil || len(files) != 1 {
		t.Fatalf("catalog %+v, %v: want one file", files, err)
	}
}

func TestASecondHandleOnAPartialTakesItOverWithoutCorruptingIt(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issue(t, "case-1", 0)
	data := randomBytes(storage.MinPartSize+5000, 9)

	// The first client's link died without the server noticing yet.
	stale := e.login(t, cr)
	f, err := stale.OpenFile("db.dump", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:3<<20]); err != nil {
		t.Fatal(err)
	}

	c := e.login(t, cr)
	g, err := c.OpenFile("db.dump", os.O_WRONLY|os.O_CREATE)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(data[3<<20 : 4<<20])
	wantStatus(t, "a write on the handle taken over", err, codeFailure)
	// The new client resumes from a size it saw before the take-over:
	// what the server has already is acknowledged and dropped.
	if _, err := g.WriteAt(data[1<<20:], 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err == nil {
		t.Fatal("closing the handle taken over succeeded")
	}
	if got := e.catalogFile(t, "db.dump"); got.SHA256 != sha(data) || got.State != cases.FileComplete {
		t.Fatalf("catalog entry %+v, want sha256 %s", got, sha(data))
	}
}

// A rename waits for the handle writing the file to let go, without
// asking it to (renameWait bounds the wait): a live upload goes on.
func TestARenameDoesNotInterruptAHandleStillWriting(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issue(t, "case-1", 0)
	data := randomBytes(100000, 11)
	c := e.login(t, cr)
	f, err := c.OpenFile("core.filepart", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:50000]); err != nil {
		t.Fatal(err)
	}
	other := e.login(t, cr)
	wantStatus(t, "a rename of a file still being written", other.Rename("core.filepart", "core"), codeFailure)
	if _, err := f.Write(data[50000:]); err != nil {
		t.Fatalf("the handle was interrupted by the rename: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Rename("core.filepart", "core"); err != nil {
		t.Fatalf("rename once the handle let go: %v", err)
	}
	if got := e.catalogFile(t, "core"); got.SHA256 != sha(data) || got.State != cases.FileComplete {
		t.Fatalf("catalog entry %+v, want complete with sha256 %s", got, sha(data))
	}
}

// A remove asks the handle writing the file to let go, and drops it.
func TestARemoveStopsAHandleStillWriting(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issue(t, "case-1", 0)
	data := randomBytes(100000, 12)
	c := e.login(t, cr)
	f, err := c.OpenFile("core", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:50000]); err != nil {
		t.Fatal(err)
	}
	other := e.login(t, cr)
	if err := other.Remove("core"); err != nil {
		t.Fatalf("remove of a file being written: %v", err)
	}
	_, err = f.Write(data[50000:])
	wantStatus(t, "a write on the handle whose file was removed", err, codeFailure)
	_ = f.Close()
	if _, err := e.catalog.File(context.Background(), "case-1", "core"); !errors.Is(err, cases.ErrNotFound) {
		t.Fatalf("catalog entry of the removed file: %v, want ErrNotFound", err)
	}
}

func TestShutdownKeepsOpenUploadsResumableAcrossARestart(t *testing.T) {
	store := diskStore(t)
	e := newEnv(t, store)
	cr := e.issue(t, "case-1", 0)
	data := randomBytes(storage.MinPartSize+3333, 10)
	c := e.login(t, cr)
	f, err := c.OpenFile("trace.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:4<<20]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	entry := e.catalogFile(t, "trace.bin")
	if n, err := e.ingest.StoredSize(ctx, "case-1", entry); err != nil || n != 4<<20 || entry.State != cases.FileUploading {
		t.Fatalf("after shutdown: %+v with %d bytes stored (%v), want a partial of %d", entry, n, err, 4<<20)
	}

	restarted := newEnv(t, store)
	c2 := restarted.login(t, cr)
	g, err := c2.OpenFile("trace.bin", os.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteAt(data[4<<20:], 4<<20); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if got := restarted.catalogFile(t, "trace.bin"); got.SHA256 != sha(data) {
		t.Fatalf("catalog entry %+v, want sha256 %s", got, sha(data))
	}
}

// seekCounter counts the seeks on the file objects opened from a store.
type seekCounter struct {
	storage.Store
	seeks atomic.Int32
}

func (s *seekCounter) Open(ctx context.Context, key string) (storage.Object, error) {
	obj, err := s.Store.Open(ctx, key)
	if err != nil || !strings.Contains(key, "/objects/") {
		return obj, err
	}
	return countedObject{Object: obj, seeks: &s.seeks}, nil
}

type countedObject struct {
	storage.Object
	seeks *atomic.Int32
}

func (o countedObject) Seek(offset int64, whence int) (int64, error) {
	o.seeks.Add(1)
	return o.Object.Seek(offset, whence)
}

func TestADownloadReadsTheObjectAsOneStream(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		counted := &seekCounter{Store: store}
		e := newEnv(t, counted)
		c := e.login(t, e.issue(t, "case-1", 0))
		data := randomBytes(6<<20+5, 12)
		put(t, c, "big.bin", data)
		for range 2 {
			if got := get(t, c, "big.bin"); !bytes.Equal(got, data) {
				t.Fatal("downloaded bytes differ")
			}
		}
		// Requests come out of order (the client keeps many in flight, the
		// server's workers answer them concurrently) but are served from one
		// sequential read; an object store answers every seek with a new request.
		if n := counted.seeks.Load(); n > 0 {
			t.Fatalf("%d seeks for two downloads, want none", n)
		}
	})
}
