package upload_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/upload"
)

func diskFixture(t *testing.T, cfg upload.Config) *fixture {
	t.Helper()
	root := t.TempDir()
	f := newFixture(t, func() storage.Store { s, _ := diskstore.New(root); return s })
	store := f.newStore()
	f.catalog = cases.New(store, f.clk.Now)
	cfg.Store, cfg.Catalog, cfg.Now = store, f.catalog, f.clk.Now
	if cfg.PartSize == 0 {
		cfg.PartSize = storage.MinPartSize
	}
	f.in = upload.New(cfg)
	return f
}

func TestFilesOverTheLimitAreRefusedHoweverTheSizeArrives(t *testing.T) {
	ctx := context.Background()
	const limit = 3 * storage.MinPartSize
	f := diskFixture(t, upload.Config{MaxFileSize: limit})

	t.Run("a declared size over the limit is refused at creation", func(t *testing.T) {
		_, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "huge.bin", Size: 686507572582651, Via: "test"})
		if !errors.Is(err, upload.ErrTooLarge) {
			t.Fatalf("create with 686 TB declared: %v, want ErrTooLarge", err)
		}
	})
	t.Run("a deferred length over the limit is refused", func(t *testing.T) {
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "deferred.bin", Size: -1, Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if err := up.DeclareLength(ctx, limit+1); !errors.Is(err, upload.ErrTooLarge) {
			t.Fatalf("declare %d: %v, want ErrTooLarge", limit+1, err)
		}
	})
	t.Run("an upload of unknown size stops at the limit", func(t *testing.T) {
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "endless.bin", Size: -1, Via: "test"})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := up.Write(ctx, 0, io.LimitReader(zeros{}, limit+1))
		if !errors.Is(err, upload.ErrTooLarge) {
			t.Fatalf("writing past the limit: %v, want ErrTooLarge", err)
		}
		if stored > limit {
			t.Fatalf("stored %d bytes, over the %d limit", stored, limit)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// gaugedStore records, on every part stored, the part buffers in use.
type gaugedStore struct {
	storage.Store
	in      func() *upload.Ingest
	maxUsed atomic.Int64
	parts   atomic.Int64
}

func (g *gaugedStore) PutPart(ctx context.Context, key, id string, n int, r io.Reader, size int64) (storage.Part, error) {
	inUse, _ := g.in().BufferStats()
	for {
		old := g.maxUsed.Load()
		if inUse <= old || g.maxUsed.CompareAndSwap(old, inUse) {
			break
		}
	}
	g.parts.Add(1)
	return g.Store.PutPart(ctx, key, id, n, r, size)
}

func TestManyUploadsShareTheMemoryBudgetAndAllComplete(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	disk, err := diskstore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	var in *upload.Ingest
	store := &gaugedStore{Store: disk, in: func() *upload.Ingest { return in }}
	catalog := cases.New(store, clock)
	if _, _, err := catalog.Open(ctx, "case-1"); err != nil {
		t.Fatal(err)
	}
	// Two part buffers for the whole process, eight uploads of three
	// parts and a bit, from eight credentials.
	const budget = 2 * storage.MinPartSize
	in = upload.New(upload.Config{Store: store, Catalog: catalog, Now: clock, PartSize: storage.MinPartSize,
		MemoryBudget: budget, MaxFileSize: 1 << 30})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			data := randomBytes(3*storage.MinPartSize+1000, uint64(100+i))
			name := "file-" + string(rune('a'+i)) + ".bin"
			up, err := in.Create(ctx, upload.NewFile{Case: "case-1", Name: name, Size: int64(len(data)), SHA256: sha(data),
				Via: "test", UploadedBy: name, Actor: cases.Actor{CredentialID: name}})
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := up.Write(ctx, 0, bytes.NewReader(data)); err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			file, err := up.Finish(ctx)
			if err != nil || file.SHA256 != sha(data) {
				t.Errorf("%s: finished with %v, digest %s, want %s", name, err, file.SHA256, sha(data))
			}
		})
	}
	wg.Wait()
	if store.parts.Load() < 8*3 {
		t.Fatalf("only %d parts stored", store.parts.Load())
	}
	if used := store.maxUsed.Load(); used > budget {
		t.Fatalf("part buffers reached %d bytes, over the %d budget", used, budget)
	}
	if inUse, waiting := in.BufferStats(); inUse != 0 || waiting != 0 {
		t.Fatalf("after every upload: %d bytes in use, %d waiting", inUse, waiting)
	}
}

func TestOneCredentialWritesAtMostItsShareOfUploadsAtOnce(t *testing.T) {
	ctx := context.Background()
	f := diskFixture(t, upload.Config{MaxWritersPerCredential: 2})
	start := func(name, credential string) (*io.PipeWriter, chan error) {
		up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: name, Size: -1, Via: "test", UploadedBy: credential,
			Actor: cases.Actor{CredentialID: credential}})
		if err != nil {
			t.Fatal(err)
		}
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := up.Write(ctx, 0, pr)
			done <- err
		}()
		return pw, done
	}
	// Two writes of one credential hold its slots while their clients send.
	w1, d1 := start("a.bin", "cred-1")
	w2, d2 := start("b.bin", "cred-1")
	if _, err := w1.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	_, d3 := start("c.bin", "cred-1")
	if err := <-d3; !errors.Is(err, upload.ErrTooManyWriters) {
		t.Fatalf("third write of one credential: %v, want ErrTooManyWriters", err)
	}
	w4, d4 := start("d.bin", "cred-2")
	w4.Close()
	if err := <-d4; err != nil {
		t.Fatalf("another credential's write: %v", err)
	}
	w1.Close()
	w2.Close()
	if err := errors.Join(<-d1, <-d2); err != nil {
		t.Fatal(err)
	}
	w5, d5 := start("e.bin", "cred-1")
	w5.Close()
	if err := <-d5; err != nil {
		t.Fatalf("a write after the others ended: %v", err)
	}
}

func TestARevokedCredentialStopsItsWriteBetweenParts(t *testing.T) {
	ctx := context.Background()
	f := diskFixture(t, upload.Config{})
	data := randomBytes(4*storage.MinPartSize, 9)
	up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "long.bin", Size: int64(len(data)), Via: "test", UploadedBy: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var revoked atomic.Bool
	errRevoked := errors.New("revoked")
	wctx := upload.WithAuthorization(ctx, func(context.Context) error {
		if revoked.Load() {
			return errRevoked
		}
		return nil
	})
	// Revoked, and a second later the write checks again before its next
	// part.
	r := &closingReader{r: bytes.NewReader(data), after: storage.MinPartSize + 10, close: func() {
		revoked.Store(true)
		f.clk.Advance(time.Second)
	}}
	stored, err := up.Write(wctx, 0, r)
	if !errors.Is(err, errRevoked) {
		t.Fatalf("write after the revocation: %v, want the authorization's error", err)
	}
	if stored >= int64(len(data)) || up.Info().Offset != stored {
		t.Fatalf("stored %d of %d bytes (offset %d) after the revocation", stored, len(data), up.Info().Offset)
	}
	if _, err := up.Write(wctx, up.Info().Offset, bytes.NewReader(data[up.Info().Offset:])); !errors.Is(err, errRevoked) {
		t.Fatalf("a new write with the revoked credential: %v", err)
	}
}

func TestAClientGoneQuietGivesItsBufferToUploadsThatWait(t *testing.T) {
	ctx := context.Background()
	f := diskFixture(t, upload.Config{MemoryBudget: storage.MinPartSize, MaxFileSize: 1 << 30, IdleYield: 20 * time.Millisecond})
	data := randomBytes(2*storage.MinPartSize+100, 21)
	quiet, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "quiet.bin", Size: int64(len(data)), SHA256: sha(data),
		Via: "test", UploadedBy: "a", Actor: cases.Actor{CredentialID: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	// The quiet client sends 1 MiB and then nothing: it holds the only
	// buffer of the process.
	pr, pw := io.Pipe()
	quietDone := make(chan error, 1)
	go func() {
		_, err := quiet.Write(ctx, 0, pr)
		quietDone <- err
	}()
	if _, err := pw.Write(data[:1<<20]); err != nil {
		t.Fatal(err)
	}
	upload.WaitFor(t, func() bool { inUse, _ := f.in.BufferStats(); return inUse > 0 })

	other := randomBytes(storage.MinPartSize+7, 22)
	up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "other.bin", Size: int64(len(other)), SHA256: sha(other),
		Via: "test", UploadedBy: "b", Actor: cases.Actor{CredentialID: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		if _, err := up.Write(ctx, 0, bytes.NewReader(other)); err != nil {
			done <- err
			return
		}
		_, err := up.Finish(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("an upload waited for the buffer of a client that went quiet")
	}
	// What the quiet client sent was stored; it goes on where it was.
	if _, err := pw.Write(data[1<<20:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-quietDone; err != nil {
		t.Fatal(err)
	}
	if file, err := quiet.Finish(ctx); err != nil || file.SHA256 != sha(data) {
		t.Fatalf("the quiet upload finished with %v, digest %s, want %s", err, file.SHA256, sha(data))
	}
}

func TestALongWriteChecksItsWriterAgainOnlyOnceASecondHasPassed(t *testing.T) {
	ctx := context.Background()
	f := diskFixture(t, upload.Config{})
	data := randomBytes(4*storage.MinPartSize, 10)
	up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "long.bin", Size: int64(len(data)), Via: "test", UploadedBy: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var checks atomic.Int32
	wctx := upload.WithAuthorization(ctx, func(context.Context) error {
		checks.Add(1)
		return nil
	})
	// Four parts stored within the same second: checked once, at the start.
	if _, err := up.Write(wctx, 0, bytes.NewReader(data[:2*storage.MinPartSize])); err != nil {
		t.Fatal(err)
	}
	if n := checks.Load(); n != 1 {
		t.Fatalf("a write of two parts within a second checked its writer %d times, want once", n)
	}
	// A second later, each part is checked again before it is stored.
	r := &closingReader{r: bytes.NewReader(data[2*storage.MinPartSize:]), after: 10, close: func() { f.clk.Advance(time.Second) }}
	if _, err := up.Write(wctx, up.Info().Offset, r); err != nil {
		t.Fatal(err)
	}
	if n := checks.Load(); n != 3 {
		t.Fatalf("after a second had passed, %d checks in all, want 3 (two write starts, one part)", n)
	}
}
