package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/testserver"
)

// What a hostile or confused user tries with a real client: each refusal
// comes back as an error message and the session goes on.

func TestOpenSSHSftpRefusesPathsOutsideTheCaseAndTheSessionGoesOn(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "hostile")
	login := loginOf(srv, srv.Credential(t, "hostile", "customer"))
	dir := t.TempDir()
	notes, notesSHA := patternFile(t, dir, "notes.txt", 1000, 50)
	stolen := filepath.Join(dir, "passwd")
	// Another user of the case sent notes.txt: not the hostile one's to remove.
	mustOpenSSH(t, loginOf(srv, srv.Credential(t, "hostile", "customer")), "put "+batchQuoted(notes)+"\n")

	// A leading "-" lets sftp go on after a command that fails.
	out := mustOpenSSH(t, login, strings.Join([]string{
		"-cd ..", // ".." stops at the case, as in a chroot
		"pwd",
		"-cd /etc",
		"-get ../../etc/passwd " + batchQuoted(stolen),
		"-get /etc/passwd " + batchQuoted(stolen),
		"-put " + batchQuoted(notes) + " /tmp/x",
		"-put " + batchQuoted(notes) + " ../../tmp/x",
		"-symlink notes.txt link",
		"-mkdir sub",
		"-rm notes.txt",
		"ls -l",
	}, "\n")+"\n")

	if miss := missingFrom(out,
		"Remote working directory: /\n",
		`stat remote: No such file or directory`, // cd /etc
		`File "/../../etc/passwd" not found.`,    // get ../../etc/passwd
		`File "/etc/passwd" not found.`,          // get /etc/passwd
		`dest open "/tmp/x": Permission denied`,  // put into /tmp
		`dest open "/../../tmp/x": Permission denied`,
		`remote symlink file "notes.txt" to "/link": Permission denied`,
		`remote mkdir "/sub": Permission denied`,
		`remote delete /notes.txt: Permission denied`,
	); len(miss) > 0 {
		t.Errorf("sftp's output lacks %q:\n%s", miss, out)
	}
	if line := listedLine(out, "notes.txt"); !strings.Contains(line, " 1000 ") {
		t.Errorf("the last ls lists notes.txt as %q, want it with 1000 bytes:\n%s", line, out)
	}
	if _, err := os.Stat(stolen); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a get of /etc/passwd wrote %s (%v)", stolen, err)
	}
	files := srv.Files(t, "hostile")
	if len(files) != 1 {
		t.Errorf("the case lists %+v, want notes.txt alone", files)
	}
	checkComplete(t, fileNamed(t, files, "notes.txt"), 1000, notesSHA)
}

func TestOpenSSHSftpCredentialOfAnotherCaseSeesOnlyItsOwnCase(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "case-a")
	srv.OpenCase(t, "case-b")
	a := srv.Credential(t, "case-a", "customer")
	b := srv.Credential(t, "case-b", "customer")
	dir := t.TempDir()
	secret, _ := patternFile(t, dir, "a-secret.log", 5000, 60)
	mustOpenSSH(t, loginOf(srv, a), "put "+batchQuoted(secret)+"\n")
	own, _ := patternFile(t, dir, "b-notes.txt", 700, 61)
	mustOpenSSH(t, loginOf(srv, b), "put "+batchQuoted(own)+"\n")

	listing := mustOpenSSH(t, loginOf(srv, b), "ls -l\n")
	if listedLine(listing, "b-notes.txt") == "" || strings.Contains(listing, "a-secret") {
		t.Errorf("case-b's credential lists:\n%s\nwant b-notes.txt and nothing of case-a", listing)
	}
	stolen := filepath.Join(dir, "stolen")
	out, _ := openSSH(t, loginOf(srv, b), strings.Join([]string{
		"-get a-secret.log " + batchQuoted(stolen),
		"-get ../case-a/a-secret.log " + batchQuoted(stolen),
		"-get /cases/case-a/a-secret.log " + batchQuoted(stolen),
	}, "\n")+"\n")
	if _, err := os.Stat(stolen); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("case-b's credential downloaded case-a's file (%v):\n%s", err, out)
	}
	// case-a's user name with case-b's token is no login at all.
	mixed := sftpLogin{addr: srv.SFTPAddr(), user: a.Username, token: b.Token}
	if out, err := openSSH(t, mixed, "ls\n"); err == nil || strings.Contains(out, "a-secret") {
		t.Errorf("login as %s with another case's token: %v\n%s", a.Username, err, out)
	}
}

// liveOutput is a bytes.Buffer that a process writes while the test reads.
type liveOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *liveOutput) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *liveOutput) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestOpenSSHSftpSessionEndsWhenItsCaseIsClosedAndNewLoginsAreRefused(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "closing")
	login := loginOf(srv, srv.Credential(t, "closing", "customer"))

	// A live session: sftp reads its commands from a pipe kept open.
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	sftp := openSSHCommand(ctx, t, login, "-")
	commands, err := sftp.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out liveOutput
	sftp.Stdout, sftp.Stderr = &out, &out
	if err := sftp.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sftp.Wait() }()
	if _, err := commands.Write([]byte("pwd\n")); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(20*time.Second, func() bool { return strings.Contains(out.String(), "Remote working directory: /") }); err != nil {
		t.Fatalf("the session did not start:\n%s", out.String())
	}

	if body, err := curl(t, srv, srv.AdminToken, "-X", "POST", apiURL(srv, "closing", "close")); err != nil {
		t.Fatalf("closing the case: %v\n%s", err, body)
	}
	// The server rechecks sessions every 5 s.
	if err := waitFor(20*time.Second, func() bool { return strings.Contains(out.String(), "closed by remote host") }); err != nil {
		t.Fatalf("the session of a closed case went on:\n%s", out.String())
	}
	_, _ = commands.Write([]byte("ls\n"))
	select {
	case err := <-exited:
		if err == nil {
			t.Errorf("sftp ended well after its session was closed:\n%s", out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("sftp did not end after its session was closed:\n%s", out.String())
	}
	if out, err := openSSH(t, login, "ls\n"); err == nil {
		t.Errorf("a new login into the closed case succeeded:\n%s", out)
	}
}
