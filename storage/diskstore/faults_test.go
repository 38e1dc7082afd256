package diskstore_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
)

func TestFileSystemErrorsBecomeTheStoresFaults(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		want  error
	}{
		{syscall.ENOSPC, storage.ErrNoSpace},
		{syscall.EDQUOT, storage.ErrNoSpace},
		{syscall.EIO, storage.ErrUnavailable},
		{syscall.EROFS, storage.ErrUnavailable},
		{syscall.ENOTCONN, storage.ErrUnavailable},
		{syscall.ESTALE, storage.ErrUnavailable},
		{syscall.EACCES, nil},
		{syscall.ENOENT, nil},
	} {
		t.Run(c.errno.Error(), func(t *testing.T) {
			err := &fs.PathError{Op: "write", Path: "/data/store/.tmp/put-1", Err: c.errno}
			got := diskstore.Fault(err)
			if storage.Fault(got) != c.want {
				t.Errorf("fault(%v) is %v, want %v", err, storage.Fault(got), c.want)
			}
			if !errors.Is(got, c.errno) {
				t.Errorf("fault(%v) = %v lost the file system's error", err, got)
			}
		})
	}
	if got := diskstore.Fault(context.Canceled); storage.Fault(got) != nil {
		t.Errorf("a cancelled write is %v, want no fault of the store", got)
	}
}

func TestPingSaysWhetherAPartFits(t *testing.T) {
	s, err := diskstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with the default free space asked for: %v", err)
	}
	s.SetMinFree(1 << 62) // more than any disk here has
	if err := s.Ping(t.Context()); !errors.Is(err, storage.ErrNoSpace) {
		t.Errorf("Ping asking for 4 EiB free: %v, want storage.ErrNoSpace", err)
	}
	s.SetMinFree(0)
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping asking for nothing free: %v", err)
	}
}

// A write that fails half way (the client's bytes stop, the disk fills)
// leaves nothing behind: no temporary file, no part, the object as it was.
func TestAFailedWriteLeavesNoTemporaryFile(t *testing.T) {
	root := t.TempDir()
	s, err := diskstore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	failing := func() io.Reader {
		return io.MultiReader(strings.NewReader(strings.Repeat("x", 100<<10)), iotest.ErrReader(syscall.ENOSPC))
	}
	putString(t, s, "case/1/state", "old")
	if err := s.Put(ctx, "case/1/state", failing(), 200<<10); err == nil {
		t.Fatal("Put of a failing reader succeeded")
	}
	if err := s.PutIfAbsent(ctx, "case/1/other", failing(), 200<<10); err == nil {
		t.Fatal("PutIfAbsent of a failing reader succeeded")
	}
	id, err := s.NewMultipart(ctx, "case/1/object")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutPart(ctx, "case/1/object", id, 1, failing(), 200<<10); err == nil {
		t.Fatal("PutPart of a failing reader succeeded")
	}

	if left := filesUnder(t, filepath.Join(root, ".tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if left := filesUnder(t, filepath.Join(root, ".multipart", id)); len(left) != 1 || left[0] != "key" {
		t.Errorf("the upload's directory holds %v, want only its key", left)
	}
	obj, err := s.Open(ctx, "case/1/state")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if b, _ := io.ReadAll(obj); string(b) != "old" {
		t.Errorf("the object reads %q after a failed Put, want %q", b, "old")
	}
}

func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
