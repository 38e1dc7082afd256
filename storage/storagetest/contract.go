// Package storagetest is the contract every storage.Store implementation
// passes: one suite, run by each implementation's tests, so that code that
// works on one store works on the other.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/casedrop/casedrop/storage"
)

// Run runs the contract against the stores newStore makes. newStore is
// called once per subtest with that subtest's t and must return a Store over
// empty storage of its own (a fresh directory, a fresh bucket). Called again
// with the same t, it must return a new Store value over the same storage,
// as a restarted process would get; PerTest builds such a function.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	for _, c := range contract {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, newStore)
		})
	}
}

// PerTest returns a newStore function for Run: the first call for a test
// creates its storage with newBacking (returning, say, a directory or a
// bucket name), and every call opens a new Store on that storage with open.
func PerTest(newBacking func(t *testing.T) string, open func(t *testing.T, backing string) storage.Store) func(t *testing.T) storage.Store {
	var (
		mu       sync.Mutex
		backings = map[*testing.T]string{}
	)
	return func(t *testing.T) storage.Store {
		t.Helper()
		mu.Lock()
		b, ok := backings[t]
		mu.Unlock()
		if !ok {
			b = newBacking(t)
			mu.Lock()
			backings[t] = b
			mu.Unlock()
			t.Cleanup(func() {
				mu.Lock()
				delete(backings, t)
				mu.Unlock()
			})
		}
		return open(t, b)
	}
}

type contractTest struct {
	name string
	test func(t *testing.T, newStore func(t *testing.T) storage.Store)
}

var contract = []contractTest{
	{"a stored object reads back with its size and content", testRoundTrip},
	{"a zero-length object can be stored and read", testZeroLength},
	{"keys with punctuation round-trip", testPunctuatedKeys},
	{"Put replaces an existing object", testOverwrite},
	{"an object replaced after Open reads as the version opened", testReplacedAfterOpen},
	{"a short reader fails the write and stores nothing", testShortReader},
	{"PutIfAbsent refuses an existing key with ErrExists and keeps the first object", testPutIfAbsent},
	{"of racing PutIfAbsent callers exactly one wins", testPutIfAbsentRace},
	{"PutIfMatch replaces the object whose ETag it names and refuses a stale ETag or a missing object with ErrChanged", testPutIfMatch},
	{"of racing PutIfMatch callers naming the same ETag exactly one wins", testPutIfMatchRace},
	{"a Put between reading an ETag and PutIfMatch makes PutIfMatch fail", testPutIfMatchAfterPut},
	{"Open and Stat of a missing key fail with ErrNotFound", testMissing},
	{"a deleted object is gone and deleting it again is no error", testDelete},
	{"List returns exactly the objects under a prefix, sorted", testList},
	{"ranged reads through Seek return the requested bytes", testSeek},
	{"invalid keys are refused with ErrInvalidKey", testInvalidKeys},
	{"a completed multipart upload holds its parts in order", testMultipart},
	{"a replaced part is used instead of the one before", testReplacePart},
	{"CopyPart copies a range of an object, also of the upload's own key", testCopyPart},
	{"CompleteMultipart refuses a non-last part smaller than MinPartSize", testSmallPart},
	{"CompleteMultipart refuses parts out of order", testPartOrder},
	{"PutPart refuses part numbers outside 1..MaxParts", testPartNumbers},
	{"an upload id works only with its own key", testUploadKey},
	{"an aborted upload is dropped", testAbort},
	{"ListMultiparts lists only unfinished uploads under the prefix", testListMultiparts},
	{"a multipart upload started by one Store value completes on a new one", testRestart},
}

func testRoundTrip(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	data := randomBytes(1, 100_000)
	put(t, s, "case/1/file.bin", data)

	st, err := s.Stat(t.Context(), "case/1/file.bin")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if st.Key != "case/1/file.bin" || st.Size != int64(len(data)) || st.ETag == "" || st.ModTime.IsZero() {
		t.Errorf("Stat = %+v, want key case/1/file.bin, size %d, an ETag and a time", st, len(data))
	}
	obj, err := s.Open(t.Context(), "case/1/file.bin")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer obj.Close()
	if oi := obj.Info(); oi.Key != st.Key || oi.Size != st.Size || oi.ETag != st.ETag {
		t.Errorf("Open(...).Info() = %+v, want %+v", oi, st)
	}
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("read %d bytes differing from the %d stored", len(got), len(data))
	}
	if oi := obj.Info(); oi.Size != st.Size {
		t.Errorf("Info().Size after reading = %d, want %d", oi.Size, st.Size)
	}
}

func testZeroLength(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	put(t, s, "empty", nil)
	if st := stat(t, s, "empty"); st.Size != 0 {
		t.Errorf("Stat size = %d, want 0", st.Size)
	}
	if got := read(t, s, "empty"); len(got) != 0 {
		t.Errorf("read %d bytes, want none", len(got))
	}
}

func testPunctuatedKeys(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	keys := []string{
		"k/name.filepart", "k/a..b", "k/100%", "k/%41", "k/a+b=c&d", "k/q?x=1", "k/#hash",
		"k/(1)[2]{3}", "k/~tilde", "k/a:b;c,d", "k/'quote\"", "k/star*", "k/at@!$", "k/UPPER_lower-09",
	}
	for i, key := range keys {
		put(t, s, key, []byte(key))
		if got := read(t, s, key); string(got) != key {
			t.Errorf("key %d %q read back %q", i, key, got)
		}
	}
	infos, err := s.List(t.Context(), "k/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := infoKeys(infos); !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
}

func testOverwrite(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	put(t, s, "o/file", []byte("first version, longer"))
	first := stat(t, s, "o/file")
	put(t, s, "o/file", []byte("second"))
	second := stat(t, s, "o/file")
	if got := read(t, s, "o/file"); string(got) != "second" {
		t.Errorf("read %q, want %q", got, "second")
	}
	if second.Size != 6 {
		t.Errorf("size = %d, want 6", second.Size)
	}
	if first.ETag == second.ETag {
		t.Errorf("ETag %q did not change on replacement", first.ETag)
	}
}

func testShortReader(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	ctx := t.Context()
	short := func() io.Reader { return bytes.NewReader(make([]byte, 50)) }
	if err := s.Put(ctx, "short/put", short(), 100); err == nil {
		t.Error("Put of 50 bytes declared as 100 succeeded")
	}
	if err := s.PutIfAbsent(ctx, "short/ifabsent", short(), 100); err == nil {
		t.Error("PutIfAbsent of 50 bytes declared as 100 succeeded")
	}
	for _, key := range []string{"short/put", "short/ifabsent"} {
		if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%q) after a failed write: err = %v, want ErrNotFound", key, err)
		}
	}
	id := newMultipart(t, s, "short/mp")
	if _, err := s.PutPart(ctx, "short/mp", id, 1, short(), 100); err == nil {
		t.Error("PutPart of 50 bytes declared as 100 succeeded")
	}
}

func testPutIfAbsent(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	ctx := t.Context()
	if err := s.PutIfAbsent(ctx, "pia/file", strings.NewReader("first"), 5); err != nil {
		t.Fatalf("first PutIfAbsent: %v", err)
	}
	err := s.PutIfAbsent(ctx, "pia/file", strings.NewReader("second"), 6)
	if !errors.Is(err, storage.ErrExists) {
		t.Errorf("second PutIfAbsent: err = %v, want ErrExists", err)
	}
	if got := read(t, s, "pia/file"); string(got) != "first" {
		t.Errorf("read %q, want %q", got, "first")
	}
	if err := s.Delete(ctx, "pia/file"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.PutIfAbsent(ctx, "pia/file", strings.NewReader("third"), 5); err != nil {
		t.Errorf("PutIfAbsent after Delete: %v", err)
	}
}

func testPutIfAbsentRace(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	errs := race(12, func(i int) error {
		body := fmt.Sprintf("writer %d", i)
		return s.PutIfAbsent(t.Context(), "race/file", strings.NewReader(body), int64(len(body)))
	})
	winner := oneWinner(t, errs, storage.ErrExists)
	if got, want := string(read(t, s, "race/file")), fmt.Sprintf("writer %d", winner); got != want {
		t.Errorf("stored %q, want the winner's %q", got, want)
	}
}

// race runs op(0) to op(n-1) at once and returns their errors.
func race(n int, op func(i int) error) []error {
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = op(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner fails the test unless exactly one of errs is nil and every
// other is refused; it returns the index of the one.
func oneWinner(t *testing.T, errs []error, refused error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("callers %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, refused):
			t.Errorf("caller %d: err = %v, want nil or %v", i, err, refused)
		}
	}
	if winner < 0 {
		t.Fatal("no caller succeeded")
	}
	return winner
}

func testMissing(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	put(t, s, "there/file", []byte("x"))
	for _, key := range []string{"missing", "there/missing", "there/file/below", "there"} {
		if _, err := s.Stat(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%q): err = %v, want ErrNotFound", key, err)
		}
		obj, err := s.Open(t.Context(), key)
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Open(%q): err = %v, want ErrNotFound", key, err)
		}
		if err == nil {
			obj.Close()
		}
	}
}

func testDelete(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	ctx := t.Context()
	put(t, s, "del/a/b/file", []byte("x"))
	put(t, s, "del/keep", []byte("y"))
	for range 2 {
		if err := s.Delete(ctx, "del/a/b/file"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if err := s.Delete(ctx, "never/stored"); err != nil {
		t.Errorf("Delete of a never stored key: %v", err)
	}
	if _, err := s.Stat(ctx, "del/a/b/file"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after Delete: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Open(ctx, "del/a/b/file"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open after Delete: err = %v, want ErrNotFound", err)
	}
	if got := list(t, s, ""); !slices.Equal(got, []string{"del/keep"}) {
		t.Errorf("List after Delete = %q, want [del/keep]", got)
	}
	put(t, s, "del/a/b/file", []byte("again"))
	if got := read(t, s, "del/a/b/file"); string(got) != "again" {
		t.Errorf("read after re-Put = %q", got)
	}
}

func testList(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	for i, key := range []string{"ls/z", "ls/b/d", "lsa", "ls/a", "other/ls/a", "ls-x", "ls/b/c"} {
		put(t, s, key, bytes.Repeat([]byte{'x'}, i))
	}
	newMultipart(t, s, "ls/unfinished")
	tests := []struct {
		prefix string
		want   []string
	}{
		{"ls/", []string{"ls/a", "ls/b/c", "ls/b/d", "ls/z"}},
		{"ls", []string{"ls-x", "ls/a", "ls/b/c", "ls/b/d", "ls/z", "lsa"}},
		{"ls/b", []string{"ls/b/c", "ls/b/d"}},
		{"ls/b/c", []string{"ls/b/c"}},
		{"", []string{"ls-x", "ls/a", "ls/b/c", "ls/b/d", "ls/z", "lsa", "other/ls/a"}},
		{"nothing/", nil},
		{"../", nil},
	}
	for _, tt := range tests {
		if got := list(t, s, tt.prefix); !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
	infos, err := s.List(t.Context(), "ls/b/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, in := range infos {
		if st := stat(t, s, in.Key); st.Size != in.Size || st.ETag != in.ETag {
			t.Errorf("List entry %+v disagrees with Stat %+v", in, st)
		}
	}
	for _, key := range []string{"ls/b/c", "ls/b/d"} {
		if err := s.Delete(t.Context(), key); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := list(t, s, "ls/"), []string{"ls/a", "ls/z"}; !slices.Equal(got, want) {
		t.Errorf("List after deleting ls/b/* = %q, want %q", got, want)
	}
}

func testSeek(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	data := randomBytes(2, 10_000)
	put(t, s, "seek/file", data)
	obj, err := s.Open(t.Context(), "seek/file")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer obj.Close()
	steps := []struct {
		offset int64
		whence int
		pos    int64
		n      int
	}{
		{100, io.SeekStart, 100, 10},
		{0, io.SeekCurrent, 110, 20},
		{1000, io.SeekCurrent, 1130, 5},
		{-10, io.SeekEnd, 9990, 10},
		{0, io.SeekStart, 0, 3},
		{5000, io.SeekStart, 5000, 5000},
	}
	for _, st := range steps {
		pos, err := obj.Seek(st.offset, st.whence)
		if err != nil || pos != st.pos {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", st.offset, st.whence, pos, err, st.pos)
		}
		buf := make([]byte, st.n)
		if _, err := io.ReadFull(obj, buf); err != nil {
			t.Fatalf("read %d bytes at %d: %v", st.n, pos, err)
		}
		if !bytes.Equal(buf, data[pos:pos+int64(st.n)]) {
			t.Errorf("bytes at %d..%d differ", pos, pos+int64(st.n))
		}
	}
	if n, err := obj.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read at the end = %d, %v; want 0, EOF", n, err)
	}
	if size, err := obj.Seek(0, io.SeekEnd); err != nil || size != int64(len(data)) {
		t.Errorf("Seek(0, SeekEnd) = %d, %v; want %d", size, err, len(data))
	}
}

func testInvalidKeys(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	ctx := t.Context()
	id := newMultipart(t, s, "valid/key")
	ops := []struct {
		name string
		call func(key string) error
	}{
		{"Put", func(k string) error { return s.Put(ctx, k, strings.NewReader("x"), 1) }},
		{"PutIfAbsent", func(k string) error { return s.PutIfAbsent(ctx, k, strings.NewReader("x"), 1) }},
		{"Open", func(k string) error { _, err := s.Open(ctx, k); return err }},
		{"Stat", func(k string) error { _, err := s.Stat(ctx, k); return err }},
		{"Delete", func(k string) error { return s.Delete(ctx, k) }},
		{"NewMultipart", func(k string) error { _, err := s.NewMultipart(ctx, k); return err }},
		{"PutPart", func(k string) error { _, err := s.PutPart(ctx, k, id, 1, strings.NewReader("x"), 1); return err }},
		{"CompleteMultipart", func(k string) error { _, err := s.CompleteMultipart(ctx, k, id, nil); return err }},
		{"AbortMultipart", func(k string) error { return s.AbortMultipart(ctx, k, id) }},
	}
	keys := []string{
		"", "/a", "a/", "a//b", "a/../b", "../a", "./a", "a/.", "a b", `a\b`, "a\tb", "a\x00b",
		"caf\u00e9", ".hidden", "a/.hidden", "a/" + strings.Repeat("k", 256), longestKey + "k",
	}
	for _, key := range keys {
		for _, op := range ops {
			if err := op.call(key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("%s(%q): err = %v, want ErrInvalidKey", op.name, key, err)
			}
		}
	}
	if got := list(t, s, ""); len(got) != 0 {
		t.Errorf("invalid keys left objects behind: %q", got)
	}
	put(t, s, longestKey, []byte("longest key"))
	put(t, s, "a/"+strings.Repeat("k", 255), []byte("longest segment"))
}

// longestKey is a valid key of the most bytes a key may have.
var longestKey = strings.Repeat(strings.Repeat("k", 255)+"/", 3) + strings.Repeat("k", 900-3*256)

// Helpers. Each fails the test on error.

func put(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func stat(t *testing.T, s storage.Store, key string) storage.Info {
	t.Helper()
	in, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	return in
}

func read(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	obj, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return data
}

func list(t *testing.T, s storage.Store, prefix string) []string {
	t.Helper()
	infos, err := s.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return infoKeys(infos)
}

func infoKeys(infos []storage.Info) []string {
	var keys []string
	for _, in := range infos {
		keys = append(keys, in.Key)
	}
	return keys
}

func newMultipart(t *testing.T, s storage.Store, key string) string {
	t.Helper()
	id, err := s.NewMultipart(t.Context(), key)
	if err != nil {
		t.Fatalf("NewMultipart(%q): %v", key, err)
	}
	if id == "" {
		t.Fatalf("NewMultipart(%q) returned an empty id", key)
	}
	return id
}

func putPart(t *testing.T, s storage.Store, key, id string, n int, data []byte) storage.Part {
	t.Helper()
	p, err := s.PutPart(t.Context(), key, id, n, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("PutPart(%q, %d): %v", key, n, err)
	}
	return p
}

func listMultiparts(t *testing.T, s storage.Store, prefix string) []storage.Multipart {
	t.Helper()
	ups, err := s.ListMultiparts(t.Context(), prefix)
	if err != nil {
		t.Fatalf("ListMultiparts(%q): %v", prefix, err)
	}
	return ups
}

// randomBytes returns n bytes, the same for the same seed.
func randomBytes(seed byte, n int) []byte {
	var s [32]byte
	s[0] = seed
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// Another instance may rewrite a small record between Open and the first
// Read; the reader must see the version it opened, not fail.
func testReplacedAfterOpen(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	ctx := context.Background()
	old := bytes.Repeat([]byte("old "), 256)
	put(t, s, "records/r.json", old)
	obj, err := s.Open(ctx, "records/r.json")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	put(t, s, "records/r.json", bytes.Repeat([]byte("new "), 300))
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("reading an object replaced after Open: %v", err)
	}
	if !bytes.Equal(got, old) {
		t.Fatalf("read %d bytes, not the %d opened", len(got), len(old))
	}
}
