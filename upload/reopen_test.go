package upload_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/upload"
)

// streamed stores data as an upload of unknown size, as SFTP does, and
// finishes it, as a clean close does.
func streamed(t *testing.T, f *fixture, name string, data []byte) *upload.Upload {
	t.Helper()
	ctx := context.Background()
	up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: name, Size: -1, Via: "sftp", UploadedBy: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(ctx, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	file, err := up.Finish(ctx)
	if err != nil || file.SHA256 != sha(data) {
		t.Fatalf("finish %s: %+v (%v)", name, file, err)
	}
	return up
}

func eventsOf(t *testing.T, f *fixture, typ string) []cases.Event {
	t.Helper()
	evs, err := f.catalog.AuditTrail(context.Background(), "case-1", cases.AuditFilter{Types: []string{typ}})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// A file closed before its end (Ctrl-C) is complete with what arrived;
// continuing it from its end, across a restart, gives the whole file with
// the SHA-256 of all of it, whether its first bytes are a tail (under 5
// MiB) or parts copied inside the store.
func TestAFileClosedEarlyIsContinuedFromItsEnd(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first, rest int
	}{
		{"small start", 1<<20 + 17, 3<<20 + 5},
		{"start in parts, small rest", 2*storage.MinPartSize + 999, 12345},
		{"start in parts, rest in parts", storage.MinPartSize + 1, 2*storage.MinPartSize + 77},
		{"nothing more", storage.MinPartSize + 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backends(t, func(t *testing.T, newStore func() storage.Store) {
				ctx := context.Background()
				f := newFixture(t, newStore)
				data := randomBytes(tc.first+tc.rest, 11)
				streamed(t, f, "core.bin", data[:tc.first])

				up, err := f.in.Reopen(ctx, "case-1", "core.bin", cases.Actor{CredentialID: "c1"})
				if err != nil {
					t.Fatalf("Reopen: %v", err)
				}
				if off := up.Info().Offset; off != int64(tc.first) {
					t.Fatalf("reopened at %d, want %d", off, tc.first)
				}
				entry, err := f.catalog.File(ctx, "case-1", "core.bin")
				if err != nil || entry.State != cases.FileUploading || entry.SHA256 != "" {
					t.Fatalf("catalog while continued: %+v (%v)", entry, err)
				}
				// The server restarts; the client resumes from the listed size.
				f.restart()
				up, err = f.in.Partial(ctx, "case-1", "core.bin")
				if err != nil {
					t.Fatalf("Partial after restart: %v", err)
				}
				if _, err := up.Write(ctx, int64(tc.first), bytes.NewReader(data[tc.first:])); err != nil {
					t.Fatal(err)
				}
				file, err := up.Finish(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if file.Size != int64(len(data)) || file.SHA256 != sha(data) || file.State != cases.FileComplete {
					t.Fatalf("finished %+v, want size %d sha256 %s", file, len(data), sha(data))
				}
				if !bytes.Equal(readFile(t, f, "core.bin"), data) {
					t.Fatal("stored bytes differ from the file")
				}
				if n := len(eventsOf(t, f, cases.EventUploadFinished)); n != 2 {
					t.Errorf("%d upload.finished events, want 2 (one per completion)", n)
				}
				if evs := eventsOf(t, f, cases.EventUploadReopened); len(evs) != 1 || evs[0].Size != int64(tc.first) || evs[0].SHA256 != sha(data[:tc.first]) {
					t.Errorf("upload.reopened events %+v, want one at %d with the old digest", evs, tc.first)
				}
				if mps, _ := newStore().ListMultiparts(ctx, "cases/"); len(mps) != 0 {
					t.Errorf("multipart uploads left behind: %+v", mps)
				}
			})
		})
	}
}

// The store dropping a continued upload's parts takes it back to where the
// file ended when it was continued, not to byte 0: those bytes are safe in
// the object.
func TestAContinuedUploadWhosePartsWereDroppedRestartsAtItsOldEnd(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		f := newFixture(t, newStore)
		first := storage.MinPartSize + 100
		data := randomBytes(first+3*storage.MinPartSize, 12)
		streamed(t, f, "dump.bin", data[:first])
		up, err := f.in.Reopen(ctx, "case-1", "dump.bin", cases.Actor{})
		if err != nil {
			t.Fatal(err)
		}
		mid := first + storage.MinPartSize + 10
		if _, err := up.Write(ctx, int64(first), bytes.NewReader(data[first:mid])); err != nil {
			t.Fatal(err)
		}
		store := newStore()
		mps, err := store.ListMultiparts(ctx, "cases/")
		if err != nil || len(mps) != 1 {
			t.Fatalf("multipart uploads: %+v (%v)", mps, err)
		}
		if err := store.AbortMultipart(ctx, mps[0].Key, mps[0].UploadID); err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(ctx, int64(mid), bytes.NewReader(data[mid:])); !errors.Is(err, upload.ErrRestarted) {
			t.Fatalf("write after the parts were dropped: %v, want ErrRestarted", err)
		}
		if off := up.Info().Offset; off != int64(first) {
			t.Fatalf("restarted at %d, want the old end %d", off, first)
		}
		if _, err := up.Write(ctx, int64(first), bytes.NewReader(data[first:])); err != nil {
			t.Fatal(err)
		}
		if file, err := up.Finish(ctx); err != nil || file.SHA256 != sha(data) {
			t.Fatalf("finished %+v (%v), want sha256 %s", file, err, sha(data))
		}
		if !bytes.Equal(readFile(t, f, "dump.bin"), data) {
			t.Fatal("stored bytes differ")
		}
	})
}

// What a client closed whole is remembered with the upload's state, so a
// new process knows it; a write clears it.
func TestAWholeCloseIsKeptAcrossARestartUntilWrittenAgain(t *testing.T) {
	ctx := context.Background()
	f := diskFixture(t, upload.Config{})
	up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "a.filepart", Size: -1, Via: "sftp"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(ctx, 0, bytes.NewReader([]byte("hello"))); err != nil {
		t.Fatal(err)
	}
	if got := up.Info().ClosedAt; got != -1 {
		t.Fatalf("ClosedAt before a close = %d, want -1", got)
	}
	if err := up.MarkClosed(ctx); err != nil {
		t.Fatal(err)
	}
	f.restart()
	up, err = f.in.Partial(ctx, "case-1", "a.filepart")
	if err != nil {
		t.Fatal(err)
	}
	if got := up.Info().ClosedAt; got != 5 {
		t.Fatalf("ClosedAt after a restart = %d, want 5", got)
	}
	if _, err := up.Write(ctx, 5, bytes.NewReader([]byte(" world"))); err != nil {
		t.Fatal(err)
	}
	f.restart()
	up, err = f.in.Partial(ctx, "case-1", "a.filepart")
	if err != nil {
		t.Fatal(err)
	}
	if got := up.Info().ClosedAt; got != -1 {
		t.Fatalf("ClosedAt after a later write = %d, want -1", got)
	}
}

// Removing a complete file drops its entry and bytes and says so in the
// audit trail, which the case system hears as file.removed.
func TestRemoveDropsACompleteFileAndAuditsIt(t *testing.T) {
	backends(t, func(t *testing.T, newStore func() storage.Store) {
		ctx := context.Background()
		f := newFixture(t, newStore)
		data := randomBytes(6<<20, 13)
		up := streamed(t, f, "wrong.log", data)
		if _, err := f.in.Remove(ctx, "case-1", "wrong.log", cases.Actor{Username: "alice", Door: "sftp"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.catalog.File(ctx, "case-1", "wrong.log"); !errors.Is(err, cases.ErrNotFound) {
			t.Fatalf("entry after Remove: %v, want ErrNotFound", err)
		}
		infos, err := newStore().List(ctx, cases.Prefix("case-1"))
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			if bytes.Contains([]byte(info.Key), []byte(up.Info().ID)) {
				t.Errorf("%s left behind", info.Key)
			}
		}
		if evs := eventsOf(t, f, cases.EventFileRemoved); len(evs) != 1 || evs[0].SHA256 != sha(data) || evs[0].Username != "alice" {
			t.Errorf("file.removed events: %+v", evs)
		}
		if _, err := f.in.Remove(ctx, "case-1", "wrong.log", cases.Actor{}); !errors.Is(err, cases.ErrNotFound) {
			t.Errorf("second Remove: %v, want ErrNotFound", err)
		}
	})
}

// A modification time a client set while it uploaded survives the commit.
func TestAModificationTimeSetWhileUploadingIsKept(t *testing.T) {
	ctx := context.Background()
	f := diskFixture(t, upload.Config{})
	up, err := f.in.Create(ctx, upload.NewFile{Case: "case-1", Name: "m.txt", Size: -1, Via: "sftp"})
	if err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 2, 29, 12, 30, 45, 0, time.UTC)
	if err := f.catalog.SetModTime(ctx, "case-1", "m.txt", up.Info().ID, mtime); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(ctx, 0, bytes.NewReader([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	file, err := up.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if file.ModTime == nil || !file.ModTime.Equal(mtime) || !file.Modified().Equal(mtime) {
		t.Fatalf("ModTime after commit %v, want %v", file.ModTime, mtime)
	}
}
