package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/testserver"
)

// Ctrl-C in a client closes the remote file cleanly, as an end does: the
// file is complete with what arrived, and its uploader continues it from
// its end (reput, put -c, dd on sshfs) to the whole file and digest.

// askpassEnv is the environment in which OpenSSH's ssh reads l's password
// from a helper program (SSH_ASKPASS) instead of a terminal: no sshpass
// between the test and the client, so a signal reaches sftp as a Ctrl-C
// from a terminal does.
func askpassEnv(t *testing.T, l sftpLogin) []string {
	t.Helper()
	secret := writeSecret(t, "password", l.token)
	askpass := filepath.Join(t.TempDir(), "askpass")
	if err := os.WriteFile(askpass, []byte("#!/bin/sh\ncat "+secret+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force")
}

// interruptWhenStored starts cmd, waits until name has stored bytes on
// the server, sends SIGINT to the client's process group (what Ctrl-C in
// a terminal does) and waits for the client to end. It returns the
// client's output.
func interruptWhenStored(t *testing.T, l sftpLogin, cmd *exec.Cmd, name string, group bool) string {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitStored(t, goSFTP(t, l), name, 30*time.Second)
	pid := cmd.Process.Pid
	if group {
		pid = -pid
	}
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the client did not end after SIGINT:\n%s", out.String())
	}
	return out.String()
}

// cutShort checks that name is complete after an interrupted upload, with
// fewer than size bytes, and returns how many.
func cutShort(t *testing.T, srv *testserver.Server, caseID, name string, size int64, clientOut string) int64 {
	t.Helper()
	f := fileNamed(t, srv.Files(t, caseID), name)
	if f.State != "complete" || f.Size <= 0 || f.Size >= size {
		t.Fatalf("after the interrupted upload %s is %s with %d bytes; want complete with part of the %d (a clean close):\n%s",
			name, f.State, f.Size, size, clientOut)
	}
	return f.Size
}

func TestOpenSSHSftpPutInterruptedByCtrlCIsContinuedByReput(t *testing.T) {
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		const size = 48 * mib
		opts.PartSizeMiB = sftpPartMiB
		srv := testserver.Start(t, opts)
		srv.OpenCase(t, "ctrlc")
		login := loginOf(srv, srv.Credential(t, "ctrlc", "customer"))
		dir := t.TempDir()
		path, want := patternFile(t, dir, "vmcore.1", size, 41)
		batch := writeSecret(t, "batch", "put "+batchQuoted(path)+"\n")
		host, port := login.hostPort(t)

		ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
		defer cancel()
		// sftp -l (Kbit/s) keeps the upload going until the signal.
		put := clientCommand(ctx, askpassEnv(t, login), "sftp", "-F", "/dev/null",
			"-o", "BatchMode=no", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "LogLevel=ERROR", "-o", "PreferredAuthentications=password",
			"-P", port, "-l", "80000", "-b", batch, login.user+"@"+host)
		out := interruptWhenStored(t, login, put, "vmcore.1", true)
		stored := cutShort(t, srv, "ctrlc", "vmcore.1", size, out)

		counting := countingProxy(t, srv.SFTPAddr())
		mustOpenSSH(t, login.via(counting.addr()), "reput "+batchQuoted(path)+"\n")
		if sent := counting.carried.Load(); sent > resent(size, stored) {
			t.Errorf("reput sent %d bytes; the missing ones were %d: it did not continue the file", sent, size-stored)
		}
		checkComplete(t, fileNamed(t, srv.Files(t, "ctrlc"), "vmcore.1"), size, want)
		if got, sum := downloadSHA256(t, srv, "ctrlc", "vmcore.1"); got != size || sum != want {
			t.Errorf("downloaded %d bytes with sha256 %s, want %d and %s", got, sum, int64(size), want)
		}
	})
}

// lftp run from a script exits on SIGINT; at its prompt, Ctrl-C stops the
// transfer. So lftp runs at a terminal (script(1) gives it one) and gets a
// real Ctrl-C: the ^C character typed there. lftp 4.9 keeps the remote
// file open until it quits, which then ends like a dropped link: the file
// stays a resumable partial. Either way `put -c` continues it; and `put -c`
// also continues a file that was closed early and is complete.
func TestLftpPutInterruptedByCtrlCIsContinuedByPutC(t *testing.T) {
	needTools(t, "script")
	const size = 48 * mib
	srv := testserver.Start(t, testserver.Options{PartSizeMiB: sftpPartMiB})
	srv.OpenCase(t, "lftp-c")
	login := loginOf(srv, srv.Credential(t, "lftp-c", "customer"))
	dir := t.TempDir()
	path, want := patternFile(t, dir, "trace.pcap", size, 42)

	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	lftpCmd := lftpCommand(ctx, t, login, "set net:limit-rate 4M\nput "+batchQuoted(path)+"\n")
	script := lftpCmd.Args[len(lftpCmd.Args)-1] // lftp --norc -f SCRIPT
	tty := clientCommand(ctx, lftpCmd.Env, "script", "-q", "-e", "-c", "lftp --norc -e "+shellQuote("source "+script), "/dev/null")
	keys, err := tty.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tty.Stdout, tty.Stderr = &out, &out
	if err := tty.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- tty.Wait() }()
	waitStored(t, goSFTP(t, login), "trace.pcap", 30*time.Second)
	if _, err := keys.Write([]byte{0x03}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	_, _ = keys.Write([]byte("bye\n"))
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("lftp did not end:\n%s", out.String())
	}
	fi, err := goSFTP(t, login).Stat("trace.pcap")
	if err != nil || fi.Size() <= 0 || fi.Size() >= size {
		t.Fatalf("after Ctrl-C trace.pcap is listed as %v (%v); want part of the %d bytes:\n%s", fi, err, int64(size), out.String())
	}
	if out, err := lftp(t, login, "put -c "+batchQuoted(path)+"\n"); err != nil {
		t.Fatalf("lftp put -c: %v\n%s", err, out)
	}
	checkComplete(t, fileNamed(t, srv.Files(t, "lftp-c"), "trace.pcap"), size, want)

	// A file closed early, complete with its first bytes, continued.
	half := filepath.Join(dir, "half")
	if err := os.WriteFile(half, must(os.ReadFile(path))[:size/2+123], 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := lftp(t, login, "put "+batchQuoted(half)+" -o dump.pcap\n"); err != nil {
		t.Fatalf("lftp put: %v\n%s", err, out)
	}
	if f := fileNamed(t, srv.Files(t, "lftp-c"), "dump.pcap"); f.State != "complete" || f.Size != size/2+123 {
		t.Fatalf("the first half: %+v", f)
	}
	if out, err := lftp(t, login, "put -c "+batchQuoted(path)+" -o dump.pcap\n"); err != nil {
		t.Fatalf("lftp put -c: %v\n%s", err, out)
	}
	checkComplete(t, fileNamed(t, srv.Files(t, "lftp-c"), "dump.pcap"), size, want)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// shellQuote quotes s as one word for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// sshfs: a cp onto the mount killed half way, then the rest written from
// the stored size with dd conv=notrunc, as a user of the mount would.
func TestSshfsCopyKilledHalfWayIsContinuedWithDd(t *testing.T) {
	needTools(t, "sshfs", "fusermount", "mountpoint", "dd", "cp")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("FUSE is needed (/dev/fuse): %v", err)
	}
	const size = 40 * mib
	srv := testserver.Start(t, testserver.Options{PartSizeMiB: sftpPartMiB})
	srv.OpenCase(t, "sshfs")
	login := loginOf(srv, srv.Credential(t, "sshfs", "customer"))
	path, want := patternFile(t, t.TempDir(), "heap.hprof", size, 43)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	host, port := login.hostPort(t)
	mnt := t.TempDir()
	target := filepath.Join(mnt, "heap.hprof")

	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	mount := clientCommand(ctx, os.Environ(), "sshfs", "-f", "-F", "/dev/null", "-p", port,
		"-o", "password_stdin", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "cache=no",
		login.user+"@"+host+":/", mnt)
	mount.Stdin = strings.NewReader(login.token + "\n")
	var mountOut bytes.Buffer
	mount.Stdout, mount.Stderr = &mountOut, &mountOut
	if err := mount.Start(); err != nil {
		t.Fatal(err)
	}
	mounted := make(chan error, 1)
	go func() { mounted <- mount.Wait() }()
	t.Cleanup(func() {
		_ = exec.Command("fusermount", "-u", mnt).Run()
		select {
		case <-mounted:
		case <-time.After(10 * time.Second):
			t.Errorf("sshfs did not end after fusermount -u:\n%s", mountOut.String())
		}
	})
	if err := waitFor(20*time.Second, func() bool { return exec.Command("mountpoint", "-q", mnt).Run() == nil }); err != nil {
		t.Fatalf("sshfs did not mount:\n%s", mountOut.String())
	}

	// cp from a pipe the test feeds: half the file, then cp is killed.
	cp := clientCommand(ctx, os.Environ(), "cp", "/dev/stdin", target)
	feed, err := cp.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var cpOut bytes.Buffer
	cp.Stdout, cp.Stderr = &cpOut, &cpOut
	if err := cp.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := feed.Write(data[:size/2]); err != nil {
		t.Fatalf("feeding cp: %v\n%s", err, cpOut.String())
	}
	waitStored(t, goSFTP(t, login), "heap.hprof", 30*time.Second)
	_ = syscall.Kill(-cp.Process.Pid, syscall.SIGKILL)
	_ = cp.Wait()
	var stored int64
	if err := waitFor(20*time.Second, func() bool {
		f := fileNamed(t, srv.Files(t, "sshfs"), "heap.hprof")
		stored = f.Size
		return f.State == "complete"
	}); err != nil {
		t.Fatalf("the killed copy did not leave a complete file: %+v", srv.Files(t, "sshfs"))
	}
	if stored <= 0 || stored >= size {
		t.Fatalf("the killed copy left %d of %d bytes", stored, int64(size))
	}
	if fi, err := os.Stat(target); err != nil || fi.Size() != stored {
		t.Fatalf("the mount lists heap.hprof as %v (%v), want %d bytes", fi, err, stored)
	}
	dd := exec.CommandContext(ctx, "dd", "if="+path, "of="+target, "bs=1M",
		"iflag=skip_bytes", "oflag=seek_bytes", fmt.Sprintf("skip=%d", stored), fmt.Sprintf("seek=%d", stored),
		"conv=notrunc", "status=none")
	if out, err := dd.CombinedOutput(); err != nil {
		t.Fatalf("dd from the stored size: %v\n%s", err, out)
	}
	// sshfs closes the remote file when dd's is released.
	if err := waitFor(20*time.Second, func() bool {
		f := fileNamed(t, srv.Files(t, "sshfs"), "heap.hprof")
		return f.State == "complete" && f.Size == size
	}); err != nil {
		t.Fatalf("after dd: %+v", fileNamed(t, srv.Files(t, "sshfs"), "heap.hprof"))
	}
	checkComplete(t, fileNamed(t, srv.Files(t, "sshfs"), "heap.hprof"), size, want)
}

// WinSCP closes name.filepart whole, then renames it. A server restart in
// between, by SIGTERM or kill -9, must not leave the file unfinished: the
// rename after it finishes the file with the right digest.
func TestAFilepartClosedWholeAndRenamedAfterARestartIsComplete(t *testing.T) {
	for _, how := range []string{"SIGTERM", "kill -9"} {
		t.Run(how, func(t *testing.T) {
			const size = 7*mib + 11
			srv := testserver.Start(t, testserver.Options{PartSizeMiB: sftpPartMiB})
			srv.OpenCase(t, "restart")
			login := loginOf(srv, srv.Credential(t, "restart", "customer"))
			path, want := patternFile(t, t.TempDir(), "db.tar", size, 44)
			if out, err := psftp(t, login, "put "+batchQuoted(path)+" db.tar.filepart\n"); err != nil {
				t.Fatalf("psftp put: %v\n%s", err, out)
			}
			if how == "SIGTERM" {
				if err := srv.Stop(); err != nil {
					t.Fatalf("SIGTERM: %v", err)
				}
			} else {
				srv.Kill()
			}
			srv.Restart(t)
			if out, err := psftp(t, login, "mv db.tar.filepart db.tar\n"); err != nil {
				t.Fatalf("psftp mv: %v\n%s", err, out)
			}
			checkComplete(t, fileNamed(t, srv.Files(t, "restart"), "db.tar"), size, want)
		})
	}
}

// rclone compares sizes and modification times on a second run: with the
// times it set kept, the second copy sends nothing and succeeds.
func TestRcloneCopyTwiceSendsNothingTheSecondTime(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{PartSizeMiB: sftpPartMiB})
	srv.OpenCase(t, "rclone-twice")
	login := loginOf(srv, srv.Credential(t, "rclone-twice", "customer"))
	folder := t.TempDir()
	for i, size := range []int64{3 * mib, 100_000, 1} {
		path, _ := patternFile(t, folder, fmt.Sprintf("part-%d.log", i), size, 50+uint64(i))
		old := time.Date(2025, 3, 4, 5, 6, 7+i, 0, time.UTC)
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := rclone(t, login, "copy", "-v", folder, ":sftp:"); err != nil {
		t.Fatalf("first rclone copy: %v\n%s", err, out)
	}
	counting := countingProxy(t, srv.SFTPAddr())
	out, err := rclone(t, login.via(counting.addr()), "copy", "-v", folder, ":sftp:")
	if err != nil {
		t.Fatalf("second rclone copy: %v\n%s", err, out)
	}
	if strings.Contains(out, "Copied") || counting.carried.Load() > 100_000 {
		t.Fatalf("the second rclone copy sent %d bytes:\n%s", counting.carried.Load(), out)
	}
	for _, f := range srv.Files(t, "rclone-twice") {
		if f.State != "complete" {
			t.Errorf("%s is %s", f.Name, f.State)
		}
	}
}
