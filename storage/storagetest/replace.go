package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/storage"
)

func testPutIfMatch(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	ctx := t.Context()
	put(t, s, "pim/file", []byte("first"))
	first := stat(t, s, "pim/file").ETag
	if err := s.PutIfMatch(ctx, "pim/file", first, strings.NewReader("second"), 6); err != nil {
		t.Fatalf("PutIfMatch with the current ETag: %v", err)
	}
	if got := read(t, s, "pim/file"); string(got) != "second" {
		t.Errorf("read %q after PutIfMatch, want %q", got, "second")
	}
	second := stat(t, s, "pim/file").ETag
	if second == first {
		t.Errorf("the replaced object kept its ETag %q", first)
	}

	err := s.PutIfMatch(ctx, "pim/file", first, strings.NewReader("third"), 5)
	if !errors.Is(err, storage.ErrChanged) {
		t.Errorf("PutIfMatch with the ETag of the object replaced: err = %v, want ErrChanged", err)
	}
	if got := read(t, s, "pim/file"); string(got) != "second" {
		t.Errorf("read %q after a refused PutIfMatch, want %q", got, "second")
	}

	// What Open tells is an ETag PutIfMatch takes, as Stat's is.
	obj, err := s.Open(ctx, "pim/file")
	if err != nil {
		t.Fatal(err)
	}
	opened := obj.Info().ETag
	obj.Close()
	if err := s.PutIfMatch(ctx, "pim/file", opened, strings.NewReader("fourth"), 6); err != nil {
		t.Errorf("PutIfMatch with the ETag Open told: %v", err)
	}

	err = s.PutIfMatch(ctx, "pim/missing", first, strings.NewReader("x"), 1)
	if !errors.Is(err, storage.ErrChanged) {
		t.Errorf("PutIfMatch of a missing key: err = %v, want ErrChanged", err)
	}
	if _, err := s.Stat(ctx, "pim/missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a refused PutIfMatch of a missing key stored it: Stat err = %v", err)
	}
	if err := s.PutIfMatch(ctx, "pim/file", "", strings.NewReader("x"), 1); !errors.Is(err, storage.ErrChanged) {
		t.Errorf("PutIfMatch with no ETag: err = %v, want ErrChanged", err)
	}
	if got := list(t, s, "pim/"); !slices.Equal(got, []string{"pim/file"}) {
		t.Errorf("objects after refused PutIfMatch calls: %q", got)
	}
}

func testPutIfMatchRace(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	// Half the replacers use another Store value on the same storage, as
	// another process would.
	stores := []storage.Store{s, newStore(t)}
	put(t, s, "race/claim", []byte("held by nobody"))
	held := stat(t, s, "race/claim").ETag
	errs := race(12, func(i int) error {
		body := fmt.Sprintf("taken over by %d", i)
		return stores[i%2].PutIfMatch(t.Context(), "race/claim", held, strings.NewReader(body), int64(len(body)))
	})
	winner := oneWinner(t, errs, storage.ErrChanged)
	if got, want := string(read(t, s, "race/claim")), fmt.Sprintf("taken over by %d", winner); got != want {
		t.Errorf("stored %q, want the winner's %q", got, want)
	}
}

func testPutIfMatchAfterPut(t *testing.T, newStore func(t *testing.T) storage.Store) {
	s := newStore(t)
	put(t, s, "pim/file", []byte("seen"))
	seen := stat(t, s, "pim/file").ETag
	put(t, s, "pim/file", []byte("written meanwhile"))
	err := s.PutIfMatch(t.Context(), "pim/file", seen, strings.NewReader("stale"), 5)
	if !errors.Is(err, storage.ErrChanged) {
		t.Errorf("PutIfMatch after a Put: err = %v, want ErrChanged", err)
	}
	if got := read(t, s, "pim/file"); string(got) != "written meanwhile" {
		t.Errorf("read %q, want the Put's %q", got, "written meanwhile")
	}
	// Deleted and written again: another object, whatever it holds.
	if err := s.Delete(t.Context(), "pim/file"); err != nil {
		t.Fatal(err)
	}
	err = s.PutIfMatch(t.Context(), "pim/file", seen, strings.NewReader("stale"), 5)
	if !errors.Is(err, storage.ErrChanged) {
		t.Errorf("PutIfMatch after a Delete: err = %v, want ErrChanged", err)
	}
}
