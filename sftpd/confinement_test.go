package sftpd_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/cases"
)

func TestCasesHaveNoFoldersAndRefusingOneKeepsTheConnectionUsable(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	wantStatus(t, "mkdir sub", c.Mkdir("sub"), codePermissionDenied)
	// lftp's mirror and others create the target when it is missing;
	// the root exists, and says so as any existing folder would.
	wantStatus(t, "mkdir /", c.Mkdir("/"), codeFailure)
	if err := c.MkdirAll("/"); err != nil {
		t.Fatalf("mkdir -p of the root: %v", err)
	}
	wantStatus(t, "rmdir /", c.RemoveDirectory("/"), codePermissionDenied)
	wantStatus(t, "rmdir sub", c.RemoveDirectory("sub"), codePermissionDenied)
	if _, err := c.ReadDir("/"); err != nil {
		t.Fatalf("list after the refusals: %v", err)
	}
	if wd, err := c.Getwd(); err != nil || wd != "/" {
		t.Fatalf("working directory %q, %v: want /", wd, err)
	}
}

func TestPathsAndNamesOutsideTheCaseAreRefused(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	put(t, c, "x", []byte("x"))

	for _, name := range []string{
		"a/b", "/etc/passwd", "/../../etc/passwd", "sub/",
		"nul\x00byte", "new\nline", "tab\tname", "bidi\u202etxt.exe",
		strings.Repeat("a", cases.MaxNameBytes+1),
	} {
		_, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if name == "sub/" { // cleaned to "sub": a plain name
			if err != nil {
				t.Errorf("upload to %q: %v", name, err)
			}
			continue
		}
		wantStatus(t, "upload to "+name, err, codePermissionDenied)
	}
	for _, name := range []string{"/etc/passwd", "../../etc/passwd", "a/x", "/proc/self/environ"} {
		if _, err := c.Stat(name); !os.IsNotExist(err) {
			t.Errorf("stat %q: %v, want no such file", name, err)
		}
		if _, err := c.Open(name); !os.IsNotExist(err) {
			t.Errorf("open %q: %v, want no such file", name, err)
		}
	}
	// ".." stops at the case's root, as in a chroot: "../x" is the case's x.
	if got := get(t, c, "../x"); !bytes.Equal(got, []byte("x")) {
		t.Fatalf("../x read %q", got)
	}
	wantStatus(t, "symlink", c.Symlink("x", "y"), codePermissionDenied)
	wantStatus(t, "hard link", c.Link("x", "y"), codePermissionDenied)
	if _, err := c.ReadLink("x"); err == nil {
		t.Error("readlink of a file succeeded")
	}
	if _, err := c.ReadDir("/sub"); err == nil {
		t.Error("listing a folder that cannot exist succeeded")
	}
	files, err := e.catalog.Files(context.Background(), "case-1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "sub,x" {
		t.Fatalf("the case holds %q, want sub and x", names)
	}
}

func TestACredentialOfAnotherCaseNeitherSeesNorTouchesTheCase(t *testing.T) {
	e := newEnv(t, diskStore(t))
	e.openCase(t, "case-2")
	one := e.issue(t, "case-1", 0)
	put(t, e.login(t, one), "secret.log", []byte("case one's"))

	two := e.issue(t, "case-2", 0)
	c := e.login(t, two)
	if entries, err := c.ReadDir("/"); err != nil || len(entries) != 0 {
		t.Fatalf("case-2 lists %v, %v: want nothing", entries, err)
	}
	for _, p := range []string{"secret.log", "/secret.log", "../case-1/secret.log", "/cases/case-1/secret.log"} {
		if _, err := c.Stat(p); !os.IsNotExist(err) {
			t.Errorf("stat %s: %v", p, err)
		}
		if _, err := c.Open(p); !os.IsNotExist(err) {
			t.Errorf("open %s: %v", p, err)
		}
		if err := c.Remove(p); err == nil {
			t.Errorf("remove %s succeeded", p)
		}
		if err := c.Rename(p, "mine.log"); err == nil {
			t.Errorf("rename %s succeeded", p)
		}
	}
	put(t, c, "secret.log", []byte("case two's"))
	if got := e.catalogFile(t, "secret.log"); got.SHA256 != sha([]byte("case one's")) {
		t.Fatalf("case-1's file changed: %+v", got)
	}
	// Case one's user name with case two's token opens nothing.
	if _, err := e.dial(t, clientConfig(one.user, passwordAuth(two.token))); err == nil {
		t.Fatal("login with another case's token under this case's user name succeeded")
	}
}

func TestOnlyOnesOwnFilesCanBeRemoved(t *testing.T) {
	e := newEnv(t, diskStore(t))
	alice, bob := e.issue(t, "case-1", 0), e.issue(t, "case-1", 0)
	b := e.partial(t, bob, "bob.part", []byte("some bytes"))
	put(t, b, "bob.txt", []byte("bob's"))
	a := e.partial(t, alice, "alice.part", []byte("some bytes"))
	put(t, a, "done.txt", []byte("complete"))
	wantStatus(t, "remove of another's partial", a.Remove("bob.part"), codePermissionDenied)
	wantStatus(t, "remove of another's complete file", a.Remove("bob.txt"), codePermissionDenied)
	wantStatus(t, "remove of a missing file", a.Remove("nothing"), codeNoSuchFile)
	for _, name := range []string{"alice.part", "done.txt"} {
		if err := a.Remove(name); err != nil {
			t.Fatalf("remove of one's own %s: %v", name, err)
		}
		if _, err := a.Stat(name); !os.IsNotExist(err) {
			t.Fatalf("stat of %s after remove: %v", name, err)
		}
	}
	if evs := e.events(t, cases.EventFileRemoved); len(evs) != 1 || evs[0].File != "done.txt" || evs[0].Username != alice.user {
		t.Fatalf("file.removed events %+v, want one of done.txt by %s", evs, alice.user)
	}
	// Another's files can be neither continued, restarted nor renamed.
	for _, name := range []string{"bob.part", "bob.txt"} {
		_, err := a.OpenFile(name, os.O_WRONLY)
		wantStatus(t, "continue another's "+name, err, codePermissionDenied)
		_, err = a.OpenFile(name, os.O_WRONLY|os.O_TRUNC)
		wantStatus(t, "restart another's "+name, err, codePermissionDenied)
		wantStatus(t, "rename another's "+name, a.Rename(name, "mine"), codePermissionDenied)
	}
	if storedSize(t, b, "bob.part") != 10 || string(get(t, b, "bob.txt")) != "bob's" {
		t.Fatal("bob's files changed")
	}
}

func TestAnothersCompleteFileIsNeverOverwritten(t *testing.T) {
	e := newEnv(t, diskStore(t))
	owner := e.login(t, e.issue(t, "case-1", 0))
	c := e.login(t, e.issue(t, "case-1", 0))
	put(t, owner, "kept.txt", []byte("original"))
	put(t, c, "other.txt", []byte("other"))
	for _, flags := range []int{os.O_WRONLY | os.O_CREATE | os.O_TRUNC, os.O_WRONLY, os.O_WRONLY | os.O_APPEND, os.O_RDWR | os.O_CREATE} {
		_, err := c.OpenFile("kept.txt", flags)
		wantStatus(t, "open for upload of another's complete file", err, codePermissionDenied)
	}
	wantStatus(t, "truncate", c.Truncate("kept.txt", 0), codePermissionDenied)
	wantStatus(t, "truncate by its uploader", owner.Truncate("kept.txt", 3), codePermissionDenied)
	if err := c.Truncate("kept.txt", int64(len("original"))); err != nil {
		t.Fatalf("setstat of the size it has: %v", err)
	}
	wantStatus(t, "rename onto it", c.Rename("other.txt", "kept.txt"), codeFailure)
	wantStatus(t, "posix-rename onto it", c.PosixRename("other.txt", "kept.txt"), codeFailure)
	// Its uploader continues it only from its end, never over its bytes.
	f, err := owner.OpenFile("kept.txt", os.O_WRONLY)
	if err != nil {
		t.Fatalf("its uploader opening it: %v", err)
	}
	_, err = f.WriteAt([]byte("changed"), 0)
	wantStatus(t, "write over its bytes", err, codePermissionDenied)
	_ = f.Close()
	if got := get(t, c, "kept.txt"); string(got) != "original" {
		t.Fatalf("kept.txt holds %q", got)
	}
	if got := e.catalogFile(t, "kept.txt"); got.State != cases.FileComplete || got.SHA256 != sha([]byte("original")) {
		t.Fatalf("kept.txt is now %+v", got)
	}
}

func TestAnUnfinishedUploadCannotBeRead(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	f, err := c.OpenFile("growing.log", os.O_RDWR|os.O_CREATE|os.O_TRUNC) // as pkg/sftp's Create
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("so far")); err != nil {
		t.Fatal(err)
	}
	_, err = c.Open("growing.log")
	wantStatus(t, "open an unfinished upload", err, codePermissionDenied)
	_, err = f.ReadAt(make([]byte, 4), 0)
	wantStatus(t, "read back through the upload handle", err, codePermissionDenied)
}

func TestNamesFollowTheCaseRulesOnUploadAndRename(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	put(t, c, "core.bin", []byte("first"))

	for _, name := range []string{
		`..\..\x.bat`, `a\b`, "CON", "con.txt", "x.txt. ", "file.txt:stream", "zero\u200bwidth", "SHA256SUMS", "sha256sums.sig",
	} {
		// The status carries the rule's message; pkg/sftp's client shows
		// a permission denial as os.ErrPermission.
		_, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		wantStatus(t, fmt.Sprintf("upload to %q", name), err, codePermissionDenied)
		wantStatus(t, fmt.Sprintf("rename to %q", name), c.Rename("core.bin", name), codePermissionDenied)
	}
	if got := e.catalogFile(t, "core.bin"); got.Name != "core.bin" {
		t.Fatalf("core.bin became %q", got.Name)
	}
	t.Run("another spelling of a name finds the file", func(t *testing.T) {
		if got := get(t, c, "CORE.BIN"); string(got) != "first" {
			t.Fatalf("CORE.BIN read %q", got)
		}
		other := e.login(t, e.issue(t, "case-1", 0))
		if _, err := other.OpenFile("Core.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC); err == nil {
			t.Fatal("an upload to another spelling of a complete file's name overwrote it")
		}
	})
	t.Run("a .filepart resumed in another spelling and renamed finishes under the name", func(t *testing.T) {
		f, err := c.OpenFile("report.txt.filepart", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("part one, ")); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		f, err = c.OpenFile("REPORT.txt.filepart", os.O_WRONLY)
		if err != nil {
			t.Fatalf("resume in another spelling: %v", err)
		}
		if _, err := f.WriteAt([]byte("part two"), 10); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.Rename("report.txt.filepart", "report.txt:x"); err == nil {
			t.Fatal("the .filepart was renamed to a refused name")
		}
		if err := c.Rename("report.txt.filepart", "report.txt"); err != nil {
			t.Fatal(err)
		}
		if got := e.catalogFile(t, "report.txt"); got.State != cases.FileComplete || got.Size != 18 {
			t.Fatalf("after the rename: %+v", got)
		}
	})
}
