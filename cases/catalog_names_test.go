package cases_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/storage"
)

// putLegacy writes f's catalog entry as releases before NameKey did: under
// a hash of the name exactly as given (docs/storage-layout.md).
func putLegacy(t *testing.T, s storage.Store, caseID string, f cases.File) {
	t.Helper()
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(f.Name))
	key := cases.Prefix(caseID) + "files/" + hex.EncodeToString(sum[:20]) + ".json"
	if err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func names(t *testing.T, cat *cases.Catalog, caseID string) []string {
	t.Helper()
	files, err := cat.Files(context.Background(), caseID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	return out
}

func TestNamesThatDifferOnlyByCaseOrNormalisationAreOneName(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		clk := testclock.New(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
		cat := cases.New(newStore(), clk.Now)
		if _, _, err := cat.Open(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		add := func(name, object string) string {
			t.Helper()
			got, err := cat.AddFile(ctx, "c1", cases.File{Name: name, Object: object, State: cases.FileComplete})
			if err != nil {
				t.Fatalf("AddFile(%q): %v", name, err)
			}
			return got
		}
		if got := add("core.bin", "o1"); got != "core.bin" {
			t.Fatalf("first upload named %q", got)
		}
		t.Run("a second upload differing by case is numbered", func(t *testing.T) {
			if got := add("Core.BIN", "o2"); got != "Core (2).BIN" {
				t.Fatalf("got %q, want Core (2).BIN", got)
			}
		})
		t.Run("a second upload differing by normalisation is numbered and stored in NFC", func(t *testing.T) {
			add("caf\u00e9.txt", "o3")
			if got := add("CAFE\u0301.txt", "o4"); got != "CAF\u00c9 (2).txt" {
				t.Fatalf("got %q, want the NFC spelling numbered", got)
			}
		})
		t.Run("a lookup in any spelling finds the first", func(t *testing.T) {
			for _, spelling := range []string{"CORE.bin", "core.BIN", "core.bin"} {
				f, err := cat.File(ctx, "c1", spelling)
				if err != nil || f.Object != "o1" {
					t.Fatalf("File(%q) = %+v, %v; want o1", spelling, f, err)
				}
			}
			if f, err := cat.File(ctx, "c1", "cafe\u0301.TXT"); err != nil || f.Object != "o3" {
				t.Fatalf("NFD lookup = %+v, %v", f, err)
			}
		})
		t.Run("a rename to another spelling of its own name keeps the entry", func(t *testing.T) {
			if _, err := cat.RenameFile(ctx, "c1", "CORE.BIN", "Core.bin"); err != nil {
				t.Fatal(err)
			}
			f, err := cat.File(ctx, "c1", "core.bin")
			if err != nil || f.Name != "Core.bin" || f.Object != "o1" {
				t.Fatalf("after the rename: %+v, %v", f, err)
			}
		})
		t.Run("a rename onto another file's name in another spelling is refused", func(t *testing.T) {
			if _, err := cat.RenameFile(ctx, "c1", "core (2).bin", "CORE.BIN"); !errors.Is(err, cases.ErrNameConflict) {
				t.Fatalf("got %v, want ErrNameConflict", err)
			}
		})
		t.Run("a rename to a refused name is refused", func(t *testing.T) {
			if _, err := cat.RenameFile(ctx, "c1", "core.bin", `..\x.bat`); !errors.Is(err, cases.ErrInvalidName) {
				t.Fatalf("got %v, want ErrInvalidName", err)
			}
		})
	})
}

func TestEntriesOfAnOlderReleaseStayReadableAndAreListedOnce(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		clk := testclock.New(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
		store := newStore()
		cat := cases.New(store, clk.Now)
		if _, _, err := cat.Open(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		putLegacy(t, store, "c1", cases.File{Name: "Old Core.bin", Object: "old1", State: cases.FileComplete})
		putLegacy(t, store, "c1", cases.File{Name: `C:\logs\app.log`, Object: "old2", State: cases.FileUploading})
		putLegacy(t, store, "c1", cases.File{Name: "lower.txt", Object: "old3", State: cases.FileComplete})

		t.Run("found by their exact names and in any other spelling", func(t *testing.T) {
			for spelling, object := range map[string]string{
				"Old Core.bin": "old1", "old core.BIN": "old1", `C:\logs\app.log`: "old2", "LOWER.TXT": "old3",
			} {
				f, err := cat.File(ctx, "c1", spelling)
				if err != nil || f.Object != object {
					t.Fatalf("File(%q) = %+v, %v; want %s", spelling, f, err, object)
				}
			}
		})
		t.Run("a new upload of one of their names is numbered", func(t *testing.T) {
			got, err := cat.AddFile(ctx, "c1", cases.File{Name: "OLD CORE.bin", Object: "new1", State: cases.FileComplete})
			if err != nil || got != "OLD CORE (2).bin" {
				t.Fatalf("AddFile = %q, %v", got, err)
			}
		})
		t.Run("an upload an older release started commits under its old name", func(t *testing.T) {
			done := cases.File{Name: `C:\logs\app.log`, Object: "old2", State: cases.FileComplete, SHA256: "ab"}
			if err := cat.UpdateFile(ctx, "c1", done); err != nil {
				t.Fatal(err)
			}
			if f, err := cat.File(ctx, "c1", `C:\logs\app.log`); err != nil || f.State != cases.FileComplete {
				t.Fatalf("after the commit: %+v, %v", f, err)
			}
		})
		t.Run("a rename moves one to the new key and the listing shows each file once", func(t *testing.T) {
			if _, err := cat.RenameFile(ctx, "c1", "old core.bin", "Renamed.bin"); err != nil {
				t.Fatal(err)
			}
			got := names(t, cat, "c1")
			want := []string{`C:\logs\app.log`, "OLD CORE (2).bin", "Renamed.bin", "lower.txt"}
			if len(got) != len(want) {
				t.Fatalf("listing %q, want %q", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("listing %q, want %q", got, want)
				}
			}
			if _, err := cat.File(ctx, "c1", "Old Core.bin"); !errors.Is(err, cases.ErrNotFound) {
				t.Fatalf("the old name still finds something: %v", err)
			}
		})
		t.Run("a removed one is gone", func(t *testing.T) {
			if err := cat.RemoveFile(ctx, "c1", "LOWER.txt"); err != nil {
				t.Fatal(err)
			}
			if _, err := cat.File(ctx, "c1", "lower.txt"); !errors.Is(err, cases.ErrNotFound) {
				t.Fatalf("got %v", err)
			}
		})
	})
}
