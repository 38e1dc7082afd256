package upload_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	backendpkg "github.com/casedrop/casedrop/internal/backends"
	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/upload"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// backends runs fn against local disk and a real MinIO.
var backends = backendpkg.Each

var clock = func() time.Time { return time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) }

// fixture is an ingest over a store with one open case. restart builds a new
// ingest over a new store value on the same data, as after a server restart.
type fixture struct {
	in       *upload.Ingest
	catalog  *cases.Catalog
	newStore func() storage.Store
	clk      *testclock.Clock // the catalog's and the ingest's
}

func newFixture(t *testing.T, newStore func() storage.Store) *fixture {
	f := &fixture{newStore: newStore, clk: testclock.New(clock())}
	f.restart()
	if _, _, err := f.catalog.Open(context.Background(), "case-1"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) restart() {
	store := f.newStore()
	f.catalog = cases.New(store, f.clk.Now)
	f.in = upload.New(upload.Config{Store: store, Catalog: f.catalog, Now: f.clk.Now, PartSize: storage.MinPartSize})
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func readFile(t *testing.T, f *fixture, name string) []byte {
	t.Helper()
	entry, err := f.catalog.File(context.Background(), "case-1", name)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := f.in.Open(context.Background(), "case-1", entry)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestUploadIsResumedAcrossRestartsWithTheRightDigest(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		f := newFixture(t, newStore)
		// 3 parts of 5 MiB and a tail; cuts fall inside parts and tails.
		data := randomBytes(3*storage.MinPartSize+1234567, 1)
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "core.gz", Size: int64(len(data)), SHA256: sha(data), Via: "test", UploadedBy: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		id := up.Info().ID
		cuts := []int{100, 3 << 20, 7<<20 + 17, 11 << 20, 16<<20 + 5, len(data)}
		offset := 0
		for _, cut := range cuts {
			f.restart()
			up, err := f.in.Resume(ctx, "case-1", id)
			if err != nil {
				t.Fatal(err)
			}
			if got := up.Info().Offset; got != int64(offset) {
				t.Fatalf("after restart the stored offset is %d, want %d", got, offset)
			}
			n, err := up.Write(ctx, int64(offset), bytes.NewReader(data[offset:cut]))
			if err != nil {
				t.Fatalf("write %d..%d: %v", offset, cut, err)
			}
			offset += int(n)
		}
		file, err := up.Finish(ctx)
		if err == nil {
			t.Fatal("finishing a stale Upload value must not work") // it did not see the writes
		}
		f.restart()
		up, err = f.in.Resume(ctx, "case-1", id)
		if err != nil {
			t.Fatal(err)
		}
		if file, err = up.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		if file.State != cases.FileComplete || file.SHA256 != sha(data) || file.Size != int64(len(data)) {
			t.Fatalf("catalog entry %+v, want complete with sha256 %s", file, sha(data))
		}
		if d, ok := newStore().(storage.Digester); ok {
			// The store keeps the digest on the object itself (S3 tagging).
			got, err := d.Digest(ctx, "cases/case-1/objects/"+id)
			if err != nil || got != sha(data) {
				t.Fatalf("the stored object carries digest %q (%v), want %s", got, err, sha(data))
			}
		}
		if !bytes.Equal(readFile(t, f, "core.gz"), data) {
			t.Fatal("stored bytes differ from the uploaded ones")
		}
	})
}

func TestDeclaredDigestMismatchIsRejectedAndNotServed(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		f := newFixture(t, newStore)
		data := randomBytes(6<<20, 2)
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "x.log", Size: int64(len(data)), SHA256: sha([]byte("other")), Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(ctx, 0, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		_, err = up.Finish(ctx)
		if !errors.Is(err, upload.ErrDigestMismatch) {
			t.Fatalf("finish: %v, want ErrDigestMismatch", err)
		}
		entry, err := f.catalog.File(ctx, "case-1", "x.log")
		if err != nil {
			t.Fatal(err)
		}
		if entry.State != cases.FileRejected || entry.SHA256 != sha(data) {
			t.Fatalf("entry %+v, want rejected with the received digest", entry)
		}
		if _, err := f.in.Open(ctx, "case-1", entry); err == nil {
			t.Fatal("a rejected file can be opened")
		}
		entry.State = cases.FileComplete // even a forged entry finds no bytes
		if _, err := f.in.Open(ctx, "case-1", entry); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("rejected bytes are still stored: %v", err)
		}
	})
}

func TestSameNameKeepsBothFiles(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func() storage.Store { s, _ := diskstore.New(t.TempDir()); return s })
	f.newStore = nil
	var names []string
	for i := range 3 {
		data := []byte{byte(i)}
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "app.tar.gz", Size: 1, Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(ctx, 0, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		file, err := up.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, file.Name)
	}
	want := []string{"app.tar.gz", "app (2).tar.gz", "app (3).tar.gz"}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("names %q, want %q", names, want)
		}
		if got := readFile(t, f, want[i]); !bytes.Equal(got, []byte{byte(i)}) {
			t.Fatalf("%s holds %v, want [%d]", want[i], got, i)
		}
	}
}

func TestWritesAreRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func() storage.Store { s, _ := diskstore.New(t.TempDir()); return s })
	newUpload := func(size int64) *upload.Upload {
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "f", Size: size, Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return up
	}
	t.Run("at an offset other than the stored one", func(t *testing.T) {
		up := newUpload(10)
		if _, err := up.Write(ctx, 3, bytes.NewReader([]byte("abc"))); !errors.Is(err, upload.ErrOffset) {
			t.Fatalf("got %v, want ErrOffset", err)
		}
	})
	t.Run("past the declared size", func(t *testing.T) {
		up := newUpload(2)
		if _, err := up.Write(ctx, 0, bytes.NewReader([]byte("abc"))); !errors.Is(err, upload.ErrTooLong) {
			t.Fatalf("got %v, want ErrTooLong", err)
		}
	})
	t.Run("into a closed case", func(t *testing.T) {
		up := newUpload(3)
		if _, err := f.catalog.Close(ctx, "case-1"); err != nil {
			t.Fatal(err)
		}
		defer f.catalog.Reopen(ctx, "case-1")
		if _, err := up.Write(ctx, 0, bytes.NewReader([]byte("abc"))); !errors.Is(err, cases.ErrCaseClosed) {
			t.Fatalf("got %v, want ErrCaseClosed", err)
		}
	})
	for _, name := range []string{"", "..", "a/b", "a\x00b", "tab\there", "evil\u202egnp.exe", string(bytes.Repeat([]byte("x"), 256))} {
		t.Run("named "+strconvQuote(name), func(t *testing.T) {
			_, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: name, Size: 1, Via: "test"})
			if !errors.Is(err, cases.ErrInvalidName) {
				t.Fatalf("got %v, want ErrInvalidName", err)
			}
		})
	}
	t.Run("with a malformed declared digest", func(t *testing.T) {
		_, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "d", Size: 1, SHA256: "abc", Via: "test"})
		if !errors.Is(err, upload.ErrInvalidDigest) {
			t.Fatalf("got %v, want ErrInvalidDigest", err)
		}
	})
}

func strconvQuote(s string) string {
	if len(s) > 20 {
		s = s[:20] + "..."
	}
	return "\"" + hex.EncodeToString([]byte(s)) + "\""
}

func TestUnknownSizeUploadEndsAtWhatWasWritten(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		f := newFixture(t, newStore)
		data := randomBytes(12<<20+3, 3)
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "stream.bin", Size: -1, Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += 4 << 20 {
			end := min(off+4<<20, len(data))
			if _, err := up.Write(ctx, int64(off), bytes.NewReader(data[off:end])); err != nil {
				t.Fatal(err)
			}
		}
		file, err := up.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if file.Size != int64(len(data)) || file.SHA256 != sha(data) {
			t.Fatalf("got size %d sha %s, want %d %s", file.Size, file.SHA256, len(data), sha(data))
		}
		if !bytes.Equal(readFile(t, f, "stream.bin"), data) {
			t.Fatal("stored bytes differ")
		}
	})
}

func TestPartialUploadIsFoundByNameAndKeepsItsProgressThroughARename(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		f := newFixture(t, newStore)
		data := randomBytes(7<<20, 4)
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "core.filepart", Size: -1, Via: "sftp", UploadedBy: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(ctx, 0, bytes.NewReader(data[:3<<20])); err != nil {
			t.Fatal(err)
		}
		f.restart() // the client's link dropped; it reconnects to another process
		partial, err := f.in.Partial(ctx, "case-1", "core.filepart")
		if err != nil {
			t.Fatal(err)
		}
		entry, _ := f.catalog.File(ctx, "case-1", "core.filepart")
		if size, err := f.in.StoredSize(ctx, "case-1", entry); err != nil || size != 3<<20 {
			t.Fatalf("stored size %d (%v), want %d", size, err, 3<<20)
		}
		if _, err := partial.Write(ctx, 3<<20, bytes.NewReader(data[3<<20:])); err != nil {
			t.Fatal(err)
		}
		if _, err := partial.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.in.Partial(ctx, "case-1", "core.filepart"); !errors.Is(err, upload.ErrNotFound) {
			t.Fatalf("a complete file is offered as partial: %v", err)
		}
		renamed, err := f.in.Rename(ctx, "case-1", "core.filepart", "core")
		if err != nil {
			t.Fatal(err)
		}
		if renamed.SHA256 != sha(data) || renamed.State != cases.FileComplete {
			t.Fatalf("renamed entry %+v", renamed)
		}
		if !bytes.Equal(readFile(t, f, "core"), data) {
			t.Fatal("renamed file's bytes differ")
		}
		if _, err := f.catalog.File(ctx, "case-1", "core.filepart"); !errors.Is(err, cases.ErrNotFound) {
			t.Fatalf("old name still listed: %v", err)
		}
	})
}

func TestRenameOfAnUnfinishedUploadCommitsUnderTheNewName(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func() storage.Store { s, _ := diskstore.New(t.TempDir()); return s })
	f.newStore = nil
	up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "a.part", Size: 3, Via: "sftp"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.Rename(ctx, "case-1", "a.part", "a"); err != nil {
		t.Fatal(err)
	}
	up, err = f.in.Resume(ctx, "case-1", up.Info().ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(ctx, 0, bytes.NewReader([]byte("abc"))); err != nil {
		t.Fatal(err)
	}
	file, err := up.Finish(ctx)
	if err != nil || file.Name != "a" {
		t.Fatalf("finished as %+v (%v), want name a", file, err)
	}
	files, _ := f.catalog.Files(ctx, "case-1")
	if len(files) != 1 || files[0].Name != "a" || files[0].State != cases.FileComplete {
		t.Fatalf("catalog %+v", files)
	}
	t.Run("onto a taken name is refused", func(t *testing.T) {
		other, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "b", Size: 1, Via: "sftp"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.in.Rename(ctx, "case-1", other.Info().Name, "a"); !errors.Is(err, cases.ErrNameConflict) {
			t.Fatalf("got %v, want ErrNameConflict", err)
		}
	})
}

func TestChecksummedWritesKeepOnlyMatchingChunks(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		f := newFixture(t, newStore)
		data := randomBytes(3*storage.MinPartSize+777, 5)
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "chunked.bin", Size: int64(len(data)), Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		sum := func(b []byte) upload.Checksum {
			s := sha256.Sum256(b)
			return upload.Checksum{Algorithm: "sha256", Sum: s[:]}
		}
		// The first chunk spans two parts: they reach the store before the
		// mismatch is known, yet the offset must not move.
		first := data[:2*storage.MinPartSize+100]
		n, err := up.WriteChecked(ctx, 0, bytes.NewReader(first), sum([]byte("something else")))
		if !errors.Is(err, upload.ErrChecksumMismatch) || n != 0 {
			t.Fatalf("mismatched chunk: stored %d, err %v; want 0, ErrChecksumMismatch", n, err)
		}
		f.restart()
		up, err = f.in.Resume(ctx, "case-1", up.Info().ID)
		if err != nil {
			t.Fatal(err)
		}
		if off := up.Info().Offset; off != 0 {
			t.Fatalf("after a mismatched chunk the stored offset is %d, want 0", off)
		}
		if n, err := up.WriteChecked(ctx, 0, bytes.NewReader(first), sum(first)); err != nil || n != int64(len(first)) {
			t.Fatalf("matching chunk: stored %d, err %v", n, err)
		}
		rest := data[len(first):]
		if _, err := up.WriteChecked(ctx, int64(len(first)), bytes.NewReader(rest), upload.Checksum{Algorithm: "crc32", Sum: []byte{1, 2, 3, 4}}); !errors.Is(err, upload.ErrChecksumUnsupported) {
			t.Fatalf("unsupported algorithm: %v", err)
		}
		if _, err := up.WriteChecked(ctx, int64(len(first)), bytes.NewReader(rest), sum(rest)); err != nil {
			t.Fatal(err)
		}
		file, err := up.Finish(ctx)
		if err != nil || file.SHA256 != sha(data) {
			t.Fatalf("finished %+v (%v), want sha256 %s", file, err, sha(data))
		}
		if !bytes.Equal(readFile(t, f, "chunked.bin"), data) {
			t.Fatal("stored bytes differ")
		}
	})
}

// closingReader closes the case once it has handed out after bytes.
type closingReader struct {
	r      io.Reader
	after  int
	read   int
	close  func()
	closed bool
}

func (c *closingReader) Read(p []byte) (int, error) {
	if !c.closed && c.read >= c.after {
		c.close()
		c.closed = true
	}
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

func TestClosingACaseStopsAnUploadInFlight(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func() storage.Store { s, _ := diskstore.New(t.TempDir()); return s })
	f.newStore = nil
	data := randomBytes(6*storage.MinPartSize, 6)
	up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "long.bin", Size: int64(len(data)), Via: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// The write may see the case closed before Close has written all it
	// writes: the test ends only after Close did.
	closeErr := make(chan error, 1)
	// A second passes: the write checks again before its next part.
	r := &closingReader{r: bytes.NewReader(data), after: 2 * storage.MinPartSize, close: func() {
		_, err := f.catalog.Close(ctx, "case-1")
		f.clk.Advance(time.Second)
		closeErr <- err
	}}
	stored, err := up.Write(ctx, 0, r)
	select {
	case err := <-closeErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the case was never closed")
	}
	if !errors.Is(err, cases.ErrCaseClosed) {
		t.Fatalf("write into a case closed mid-way: %v, want ErrCaseClosed", err)
	}
	if stored >= int64(len(data)) {
		t.Fatalf("stored %d of %d bytes after the close", stored, len(data))
	}
}

func TestAnUploadWhosePartsTheStoreDroppedStartsAgainFromZero(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		f := newFixture(t, newStore)
		data := randomBytes(2*storage.MinPartSize+4321, 7)
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "old.core", Size: int64(len(data)), SHA256: sha(data), Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		first := storage.MinPartSize + 1000 // one part stored, the rest a tail
		if _, err := up.Write(ctx, 0, bytes.NewReader(data[:first])); err != nil {
			t.Fatal(err)
		}
		// The store expires the unfinished multipart upload (MinIO's
		// stale-upload expiry, an S3 lifecycle rule).
		store := newStore()
		mps, err := store.ListMultiparts(ctx, "cases/")
		if err != nil || len(mps) != 1 {
			t.Fatalf("multipart uploads: %+v (%v)", mps, err)
		}
		if err := store.AbortMultipart(ctx, mps[0].Key, mps[0].UploadID); err != nil {
			t.Fatal(err)
		}
		_, err = up.Write(ctx, int64(first), bytes.NewReader(data[first:]))
		if !errors.Is(err, upload.ErrRestarted) {
			t.Fatalf("writing after the store lost the parts: %v, want ErrRestarted", err)
		}
		f.restart()
		up, err = f.in.Resume(ctx, "case-1", up.Info().ID)
		if err != nil {
			t.Fatal(err)
		}
		if off := up.Info().Offset; off != 0 {
			t.Fatalf("offset after the restart %d, want 0", off)
		}
		if _, err := up.Write(ctx, 0, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		file, err := up.Finish(ctx)
		if err != nil || file.SHA256 != sha(data) {
			t.Fatalf("finished %+v (%v)", file, err)
		}
		if !bytes.Equal(readFile(t, f, "old.core"), data) {
			t.Fatal("stored bytes differ")
		}
	})
}
