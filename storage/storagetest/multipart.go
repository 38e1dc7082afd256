package storagetest

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/storage"
)

// The multipart part of the contract.

func testMultipart(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	key := "mp/big.bin"
	chunks := [][]byte{
		randomBytes(10, storage.MinPartSize),
		randomBytes(11, storage.MinPartSize),
		randomBytes(12, 1000),
	}
	id := newMultipart(t, s, key)
	parts := make([]storage.Part, len(chunks))
	for _, i := range []int{2, 0, 1} { // parts may arrive in any order
		parts[i] = putPart(t, s, key, id, i+1, chunks[i])
		if parts[i].Number != i+1 || parts[i].Size != int64(len(chunks[i])) || parts[i].ETag == "" {
			t.Errorf("PutPart(%d) = %+v", i+1, parts[i])
		}
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat before completion: err = %v, want ErrNotFound", err)
	}
	in, err := s.CompleteMultipart(t.Context(), key, id, parts)
	if err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	want := bytes.Join(chunks, nil)
	if in.Key != key || in.Size != int64(len(want)) || in.ETag == "" {
		t.Errorf("CompleteMultipart = %+v, want key %q, size %d and an ETag", in, key, len(want))
	}
	if got := read(t, s, key); !bytes.Equal(got, want) {
		t.Errorf("object (%d bytes) is not the concatenation of its parts (%d bytes)", len(got), len(want))
	}
	if st := stat(t, s, key); st.ETag != in.ETag || st.Size != in.Size {
		t.Errorf("Stat = %+v, CompleteMultipart said %+v", st, in)
	}
	if ups := listMultiparts(t, s, ""); len(ups) != 0 {
		t.Errorf("completed upload still listed: %+v", ups)
	}
}

// testCopyPart extends an object in place, as an SFTP upload closed early
// and continued does: the object's own bytes are copied into a multipart
// upload of the same key, new bytes follow, and completing it replaces the
// object. A range beyond the source and a missing source are refused.
func testCopyPart(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	key := "copy/grown.bin"
	first := randomBytes(30, storage.MinPartSize+1234)
	put(t, s, key, first)
	id := newMultipart(t, s, key)
	half := int64(len(first) / 2)
	p1, err := s.CopyPart(t.Context(), key, id, 1, key, 0, int64(len(first)))
	if err != nil {
		t.Fatalf("CopyPart: %v", err)
	}
	if p1.Number != 1 || p1.Size != int64(len(first)) || p1.ETag == "" {
		t.Errorf("CopyPart = %+v", p1)
	}
	more := randomBytes(31, 777)
	p2 := putPart(t, s, key, id, 2, more)
	if got := read(t, s, key); !bytes.Equal(got, first) {
		t.Errorf("object changed before the upload completed")
	}
	if _, err := s.CompleteMultipart(t.Context(), key, id, []storage.Part{p1, p2}); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	if got, want := read(t, s, key), append(append([]byte{}, first...), more...); !bytes.Equal(got, want) {
		t.Errorf("object has %d bytes, want the %d copied and the %d put after them", len(got), len(first), len(more))
	}

	// A range from the middle.
	other := "copy/middle.bin"
	id2 := newMultipart(t, s, other)
	mid, err := s.CopyPart(t.Context(), other, id2, 1, key, half, 1000)
	if err != nil {
		t.Fatalf("CopyPart of a middle range: %v", err)
	}
	if _, err := s.CompleteMultipart(t.Context(), other, id2, []storage.Part{mid}); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	if got := read(t, s, other); !bytes.Equal(got, first[half:half+1000]) {
		t.Errorf("copied range differs from the source's bytes %d..%d", half, half+1000)
	}

	id3 := newMultipart(t, s, "copy/bad")
	if _, err := s.CopyPart(t.Context(), "copy/bad", id3, 1, "copy/missing", 0, 10); err == nil {
		t.Errorf("CopyPart from a missing object succeeded")
	}
	if _, err := s.CopyPart(t.Context(), "copy/bad", id3, 1, key, int64(len(first)), 10_000); err == nil {
		t.Errorf("CopyPart of a range beyond the source succeeded")
	}
}

func testReplacePart(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	key := "replace/file"
	id := newMultipart(t, s, key)
	old := putPart(t, s, key, id, 1, randomBytes(20, storage.MinPartSize))
	newer := randomBytes(21, storage.MinPartSize)
	p1 := putPart(t, s, key, id, 1, newer)
	if p1.ETag == old.ETag {
		t.Errorf("replaced part kept ETag %q", old.ETag)
	}
	p2 := putPart(t, s, key, id, 2, []byte("tail"))
	if _, err := s.CompleteMultipart(t.Context(), key, id, []storage.Part{old, p2}); err == nil {
		t.Error("CompleteMultipart with the replaced part's ETag succeeded")
	}
	if _, err := s.CompleteMultipart(t.Context(), key, id, []storage.Part{p1, p2}); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	if got, want := read(t, s, key), append(newer, "tail"...); !bytes.Equal(got, want) {
		t.Error("object does not hold the replacing part")
	}
}

func testSmallPart(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	key := "small/file"
	id := newMultipart(t, s, key)
	p1 := putPart(t, s, key, id, 1, randomBytes(30, storage.MinPartSize-1))
	p2 := putPart(t, s, key, id, 2, []byte("tail"))
	if _, err := s.CompleteMultipart(t.Context(), key, id, []storage.Part{p1, p2}); err == nil {
		t.Fatal("CompleteMultipart with a small first part succeeded")
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after refused completion: err = %v, want ErrNotFound", err)
	}
	if ups := listMultiparts(t, s, key); len(ups) != 1 || ups[0].UploadID != id {
		t.Errorf("after refused completion ListMultiparts = %+v, want the upload still there", ups)
	}
	// A lone part may be small: it is the last one.
	if _, err := s.CompleteMultipart(t.Context(), key, id, []storage.Part{p2}); err != nil {
		t.Fatalf("CompleteMultipart with one small part: %v", err)
	}
	if got := read(t, s, key); string(got) != "tail" {
		t.Errorf("read %q, want %q", got, "tail")
	}
}

func testPartOrder(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	key := "order/file"
	id := newMultipart(t, s, key)
	p1 := putPart(t, s, key, id, 1, randomBytes(40, storage.MinPartSize))
	p2 := putPart(t, s, key, id, 2, randomBytes(41, storage.MinPartSize))
	tests := [][]storage.Part{
		{p2, p1},
		{p1, p1},
		{},
		{p1, {Number: 3, ETag: p2.ETag, Size: p2.Size}},
	}
	for _, parts := range tests {
		if _, err := s.CompleteMultipart(t.Context(), key, id, parts); err == nil {
			t.Errorf("CompleteMultipart(%+v) succeeded", parts)
		}
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after refused completions: err = %v, want ErrNotFound", err)
	}
}

func testPartNumbers(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	id := newMultipart(t, s, "num/file")
	for _, n := range []int{0, -1, storage.MaxParts + 1} {
		if _, err := s.PutPart(t.Context(), "num/file", id, n, strings.NewReader("x"), 1); err == nil {
			t.Errorf("PutPart number %d succeeded", n)
		}
	}
	putPart(t, s, "num/file", id, storage.MaxParts, []byte("x"))
}

func testUploadKey(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	ctx := t.Context()
	id := newMultipart(t, s, "uk/a")
	p := putPart(t, s, "uk/a", id, 1, []byte("a"))
	if _, err := s.PutPart(ctx, "uk/b", id, 1, strings.NewReader("b"), 1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("PutPart with another key: err = %v, want ErrNotFound", err)
	}
	if _, err := s.CompleteMultipart(ctx, "uk/b", id, []storage.Part{p}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("CompleteMultipart with another key: err = %v, want ErrNotFound", err)
	}
	if err := s.AbortMultipart(ctx, "uk/b", id); err != nil {
		t.Errorf("AbortMultipart with another key: %v", err)
	}
	if _, err := s.CompleteMultipart(ctx, "uk/a", id, []storage.Part{p}); err != nil {
		t.Errorf("CompleteMultipart with its own key: %v", err)
	}
}

func testAbort(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	ctx := t.Context()
	key := "abort/file"
	id := newMultipart(t, s, key)
	p := putPart(t, s, key, id, 1, []byte("part"))
	if err := s.AbortMultipart(ctx, key, id); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	if ups := listMultiparts(t, s, ""); len(ups) != 0 {
		t.Errorf("aborted upload still listed: %+v", ups)
	}
	if _, err := s.PutPart(ctx, key, id, 2, strings.NewReader("x"), 1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("PutPart after abort: err = %v, want ErrNotFound", err)
	}
	if _, err := s.CompleteMultipart(ctx, key, id, []storage.Part{p}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("CompleteMultipart after abort: err = %v, want ErrNotFound", err)
	}
	if err := s.AbortMultipart(ctx, key, id); err != nil {
		t.Errorf("second AbortMultipart: %v", err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after abort: err = %v, want ErrNotFound", err)
	}
	for _, bogus := range []string{"no-such-upload", "bm8tc3VjaC11cGxvYWQ", "../../x"} {
		if err := s.AbortMultipart(ctx, key, bogus); err != nil {
			t.Errorf("AbortMultipart of unknown upload %q: %v", bogus, err)
		}
		if _, err := s.PutPart(ctx, key, bogus, 1, strings.NewReader("x"), 1); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("PutPart to unknown upload %q: err = %v, want ErrNotFound", bogus, err)
		}
	}
}

func testListMultiparts(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	ctx := t.Context()
	want := map[string]string{} // upload id -> key
	for _, key := range []string{"lm/b", "lm/a", "lm/b", "lm/deep/c"} {
		want[newMultipart(t, s, key)] = key
	}
	other := []string{newMultipart(t, s, "lmx/c"), newMultipart(t, s, "other/lm/d")}
	done := newMultipart(t, s, "lm/done")
	p := putPart(t, s, "lm/done", done, 1, []byte("done"))
	if _, err := s.CompleteMultipart(ctx, "lm/done", done, []storage.Part{p}); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	gone := newMultipart(t, s, "lm/gone")
	if err := s.AbortMultipart(ctx, "lm/gone", gone); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}

	ups := listMultiparts(t, s, "lm/")
	got := map[string]string{}
	for i, up := range ups {
		got[up.UploadID] = up.Key
		if up.Started.IsZero() {
			t.Errorf("upload %+v has no start time", up)
		}
		if i > 0 && up.Key < ups[i-1].Key {
			t.Errorf("uploads not sorted by key: %q after %q", up.Key, ups[i-1].Key)
		}
	}
	if len(got) != len(ups) || len(got) != len(want) {
		t.Errorf("ListMultiparts(lm/) = %+v, want the %d uploads %v", ups, len(want), want)
	}
	for id, key := range want {
		if got[id] != key {
			t.Errorf("upload %s of %q missing from ListMultiparts(lm/) = %+v", id, key, ups)
		}
	}
	if all := listMultiparts(t, s, ""); len(all) != len(want)+len(other) {
		t.Errorf("ListMultiparts(\"\") = %+v, want %d uploads", all, len(want)+len(other))
	}
}

func testRestart(t *testing.T, newStore func(t *testing.T) storage.Store) {
	first := newStore(t)
	key := "restart/file"
	chunks := [][]byte{randomBytes(50, storage.MinPartSize), randomBytes(51, 777)}
	id := newMultipart(t, first, key)
	p1 := putPart(t, first, key, id, 1, chunks[0])

	second := newStore(t)
	ups := listMultiparts(t, second, "restart/")
	if len(ups) != 1 || ups[0].UploadID != id || ups[0].Key != key {
		t.Fatalf("new Store lists uploads %+v, want %s of %q", ups, id, key)
	}
	p2 := putPart(t, second, key, id, 2, chunks[1])
	if _, err := second.CompleteMultipart(t.Context(), key, id, []storage.Part{p1, p2}); err != nil {
		t.Fatalf("CompleteMultipart on the new Store: %v", err)
	}
	if got := read(t, first, key); !bytes.Equal(got, bytes.Join(chunks, nil)) {
		t.Error("object completed on the new Store does not hold both parts")
	}
}
