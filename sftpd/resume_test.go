package sftpd_test

import (
	"os"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
)

// Ctrl-C in OpenSSH sftp or lftp closes the handle cleanly: the file is
// complete with what arrived. Its uploader continues it from its end (reput,
// put -c) and gets the whole file with the SHA-256 of all of it, and the
// audit trail says it was continued.
func TestAFileClosedEarlyIsContinuedByItsUploaderFromItsEnd(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		cr := e.issue(t, "case-1", 0)
		c := e.login(t, cr)
		data := randomBytes(2*storage.MinPartSize+4321, 21)
		first := storage.MinPartSize + 99
		put(t, c, "core.1234", data[:first])
		if got := e.catalogFile(t, "core.1234"); got.State != cases.FileComplete || got.SHA256 != sha(data[:first]) {
			t.Fatalf("after the early close: %+v", got)
		}

		size := storedSize(t, c, "core.1234")
		f, err := c.OpenFile("core.1234", os.O_WRONLY)
		if err != nil {
			t.Fatalf("reopen by its uploader: %v", err)
		}
		if _, err := f.WriteAt(data[size:], size); err != nil {
			t.Fatalf("write from its end: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		got := e.catalogFile(t, "core.1234")
		if got.State != cases.FileComplete || got.Size != int64(len(data)) || got.SHA256 != sha(data) {
			t.Fatalf("after the resume: %+v, want complete, %d bytes, sha256 %s", got, len(data), sha(data))
		}
		if got := get(t, c, "core.1234"); string(got) != string(data) {
			t.Fatal("downloaded bytes differ")
		}
		if n := len(e.events(t, cases.EventUploadFinished)); n != 2 {
			t.Errorf("%d upload.finished events, want 2: the case system hears the new size and digest", n)
		}
		if evs := e.events(t, cases.EventUploadReopened); len(evs) != 1 || evs[0].Size != int64(first) {
			t.Errorf("upload.reopened events %+v, want one at byte %d", evs, first)
		}

		// Opened and closed without a write, the file stays as it is.
		g, err := c.OpenFile("core.1234", os.O_WRONLY)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		if got := e.catalogFile(t, "core.1234"); got.State != cases.FileComplete || got.SHA256 != sha(data) {
			t.Fatalf("after an open without writes: %+v", got)
		}
	})
}

// A retry under the same name (put without -c) replaces one's own file.
func TestATruncatingOpenOfOnesOwnFileStartsItAgain(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	put(t, c, "notes.txt", []byte("half of"))
	put(t, c, "notes.txt", []byte("the whole text"))
	if got := e.catalogFile(t, "notes.txt"); got.SHA256 != sha([]byte("the whole text")) || got.State != cases.FileComplete {
		t.Fatalf("after the retry: %+v", got)
	}
	if evs := e.events(t, cases.EventFileRemoved); len(evs) != 1 || evs[0].SHA256 != sha([]byte("half of")) {
		t.Fatalf("file.removed events %+v, want the first one's", evs)
	}
}

// OpenSSH 9's scp sets the size it wrote while the file is open.
func TestTheSizeAClientWroteIsAcceptedWhileTheFileIsOpen(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	data := randomBytes(storage.MinPartSize/2+17, 22) // all of it still in a part buffer
	f, err := c.OpenFile("scp.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		t.Fatalf("fsetstat of the size written: %v", err)
	}
	wantStatus(t, "fsetstat of a smaller size", f.Truncate(int64(len(data)-1)), codePermissionDenied)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.catalogFile(t, "scp.bin"); got.SHA256 != sha(data) || got.State != cases.FileComplete {
		t.Fatalf("after the close: %+v", got)
	}
}

// Modification times set by the uploader are kept and reported; so that
// rclone and lftp mirror see an unchanged file on their next run.
func TestModificationTimesAreKeptAndReported(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	mtime := time.Date(2025, 7, 14, 8, 30, 15, 0, time.UTC)
	f, err := c.OpenFile("app.log", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("log lines")); err != nil {
		t.Fatal(err)
	}
	// Set while the file is open, as scp -p does, then closed.
	if err := c.Chtimes("app.log", mtime, mtime); err != nil {
		t.Fatalf("setstat of times while open: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for what, stat := range map[string]func(string) (os.FileInfo, error){"stat": c.Stat, "lstat": c.Lstat} {
		fi, err := stat("app.log")
		if err != nil || !fi.ModTime().Equal(mtime) {
			t.Fatalf("%s: %v (%v), want modification time %v", what, fi, err, mtime)
		}
	}
	list, err := c.ReadDir("/")
	if err != nil || len(list) != 1 || !list[0].ModTime().Equal(mtime) {
		t.Fatalf("listing %v (%v), want app.log at %v", list, err, mtime)
	}
	later := mtime.Add(time.Hour)
	if err := c.Chtimes("app.log", later, later); err != nil {
		t.Fatalf("setstat of times after the upload: %v", err)
	}
	if got := e.catalogFile(t, "app.log"); got.ModTime == nil || !got.ModTime.Equal(later) {
		t.Fatalf("catalog modification time %v, want %v", got.ModTime, later)
	}
	other := e.login(t, e.issue(t, "case-1", 0))
	wantStatus(t, "setstat of times on another's file", other.Chtimes("app.log", mtime, mtime), codePermissionDenied)
}

// WinSCP closes name.filepart whole and renames it; a restart in between,
// clean or not, must not leave it unfinished.
func TestAFilepartClosedWholeIsFinishedByARenameAfterARestart(t *testing.T) {
	for _, clean := range []bool{true, false} {
		name := map[bool]string{true: "after shutdown", false: "after a crash"}[clean]
		t.Run(name, func(t *testing.T) {
			store := diskStore(t)
			e := newEnv(t, store)
			cr := e.issue(t, "case-1", 0)
			c := e.login(t, cr)
			data := randomBytes(storage.MinPartSize+5555, 23)
			put(t, c, "big.iso.filepart", data)
			if clean {
				e.shutdown(t)
			}
			restarted := newEnv(t, store)
			c2 := restarted.login(t, cr)
			if err := c2.Rename("big.iso.filepart", "big.iso"); err != nil {
				t.Fatal(err)
			}
			if got := restarted.catalogFile(t, "big.iso"); got.State != cases.FileComplete || got.SHA256 != sha(data) {
				t.Fatalf("after the rename: %+v, want complete with sha256 %s", got, sha(data))
			}
		})
	}
}

// Behind a load balancer the rename may reach another instance than the
// close did: the closed offset is in the upload's saved state, not in the
// memory of the server that saw the close.
func TestAFilepartClosedOnOneInstanceIsFinishedByARenameOnAnother(t *testing.T) {
	store := diskStore(t)
	a, b := newEnv(t, store), newEnv(t, store)
	cr := a.issue(t, "case-1", 0)
	data := randomBytes(storage.MinPartSize+777, 29)
	put(t, a.login(t, cr), "big.iso.filepart", data)
	if got := b.catalogFile(t, "big.iso.filepart"); got.State != cases.FileUploading {
		t.Fatalf("after the close on a the .filepart is %+v, want still uploading", got)
	}
	if err := b.login(t, cr).Rename("big.iso.filepart", "big.iso"); err != nil {
		t.Fatalf("rename through b: %v", err)
	}
	if got := a.catalogFile(t, "big.iso"); got.State != cases.FileComplete || got.SHA256 != sha(data) || got.Size != int64(len(data)) {
		t.Fatalf("after the rename through b: %+v, want complete with sha256 %s", got, sha(data))
	}
}
