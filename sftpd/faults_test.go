package sftpd_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/storagetest"
)

// A store in trouble fails the client's write and close with a status
// saying so and to try again; once it is back, the client continues from
// the stored bytes to the whole file.
func TestAStoreInTroubleTellsTheClientToTryAgainAndTheUploadResumes(t *testing.T) {
	for _, c := range []struct {
		name string
		fail func(*storagetest.Faulty, error)
		err  error
		says string
	}{
		{"unavailable", (*storagetest.Faulty).Fail, storage.ErrUnavailable, "the server's storage is unavailable: try again later"},
		{"full", (*storagetest.Faulty).FailWrites, storage.ErrNoSpace, "the server's storage is full: try again later"},
	} {
		t.Run(c.name, func(t *testing.T) {
			faults := storagetest.NewFaulty(diskStore(t))
			e := newEnv(t, faults)
			cr := e.issue(t, "case-1", time.Hour)
			cn := e.login(t, cr)
			data := randomBytes(3*storage.MinPartSize, 7)

			f, err := cn.OpenFile("core.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(data[:1<<20]); err != nil {
				t.Fatal(err)
			}
			c.fail(faults, c.err)
			_, werr := f.Write(data[1<<20:])
			cerr := f.Close()
			for what, err := range map[string]error{"write": werr, "close": cerr} {
				wantStatus(t, what, err, codeFailure)
				if !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), "storagetest") {
					t.Errorf("%s: %v; want the message %q and nothing of the store's error", what, err, c.says)
				}
			}
			if strings.Contains(e.logs.String(), "level=ERROR") {
				t.Error("the store's fault was logged as an error of the SFTP door")
			}

			c.fail(faults, nil)
			stored := storedSize(t, cn, "core.bin")
			if stored < 0 || stored > int64(len(data)) {
				t.Fatalf("%d bytes stored of %d", stored, len(data))
			}
			resume(t, cn, "core.bin", data, stored)
			if got := e.catalogFile(t, "core.bin"); got.State != "complete" || got.SHA256 != sha(data) {
				t.Errorf("core.bin is %s with sha256 %s, want complete with %s", got.State, got.SHA256, sha(data))
			}
		})
	}
}

// resume writes data from stored on, as reput does, and closes the file.
func resume(t *testing.T, c *conn, name string, data []byte, stored int64) {
	t.Helper()
	f, err := c.OpenFile(name, os.O_WRONLY)
	if err != nil {
		t.Fatalf("open %s to resume: %v", name, err)
	}
	if _, err := f.Seek(stored, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(data[stored:])); err != nil {
		t.Fatalf("resume %s at %d: %v", name, stored, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", name, err)
	}
}
