package diskstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/storage/storagetest"
)

func open(t *testing.T, root string) storage.Store {
	t.Helper()
	s, err := diskstore.New(root)
	if err != nil {
		t.Fatalf("New(%q): %v", root, err)
	}
	return s
}

func TestContract(t *testing.T) {
	storagetest.Run(t, storagetest.PerTest(
		func(t *testing.T) string { return t.TempDir() },
		open,
	))
}

func TestObjectsLieAtTheirKeys(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	putString(t, s, "case/7/logs/app.log", "hello")
	got, err := os.ReadFile(filepath.Join(root, "case", "7", "logs", "app.log"))
	if err != nil || string(got) != "hello" {
		t.Errorf("file at the key's path: %q, %v; want %q", got, err, "hello")
	}
}

func TestDeleteRemovesEmptiedDirectories(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	putString(t, s, "case/7/logs/app.log", "hello")
	putString(t, s, "case/8", "other")
	if err := s.Delete(t.Context(), "case/7/logs/app.log"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "case", "7")); !os.IsNotExist(err) {
		t.Errorf("case/7 still there after its last object went: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "case", "8")); err != nil {
		t.Errorf("case/8 went with it: %v", err)
	}
}

func TestPing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "data")
	s, err := diskstore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping of a fresh store: %v", err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping succeeded with the root removed")
	}
}

func putString(t *testing.T, s storage.Store, key, data string) {
	t.Helper()
	if err := s.Put(t.Context(), key, strings.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}
