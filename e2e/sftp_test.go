package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/testserver"
)

// Real SFTP clients against the running binary. Every upload ends checked
// against the case's file list (complete, size, the SHA-256 of the source)
// and, for the resumed ones, against a download.

// sftpPartMiB is the part size the servers run with here: small parts
// are stored early, so an interruption leaves a partial with bytes in it.
const sftpPartMiB = 5

// resent bounds what a client that resumes sends, given size bytes in
// all and stored of them listed before it started: the missing bytes plus
// SSH's packet overhead and a little more. A client starting again from 0
// sends more.
func resent(size, stored int64) int64 { return (size-stored)*102/100 + mib }

// downloadSHA256 downloads the case's file over HTTPS and returns its
// size and hex SHA-256.
func downloadSHA256(t *testing.T, srv *testserver.Server, caseID, name string) (int64, string) {
	t.Helper()
	h := sha256.New()
	n, _ := srv.DownloadTo(t, caseID, name, h)
	return n, hex.EncodeToString(h.Sum(nil))
}

// countingProxy forwards every connection whole and counts the bytes
// clients send through it.
func countingProxy(t *testing.T, target string) *cuttingProxy {
	return startCuttingProxy(t, target, math.MaxInt64)
}

func TestOpenSSHSftpPutsAFileAndReputResumesAnInterruptedPut(t *testing.T) {
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		const (
			size     = 40 * mib
			cutAfter = 15 * mib
		)
		opts.PartSizeMiB = sftpPartMiB
		srv := testserver.Start(t, opts)
		srv.OpenCase(t, "openssh")
		login := loginOf(srv, srv.Credential(t, "openssh", "customer"))
		dir := t.TempDir()

		small, smallSHA := patternFile(t, dir, "settings.tgz", 3*mib+17, 1)
		mustOpenSSH(t, login, "put "+batchQuoted(small)+"\n")
		checkComplete(t, fileNamed(t, srv.Files(t, "openssh"), "settings.tgz"), 3*mib+17, smallSHA)

		// The link dies a third of the way: the proxy cuts the TCP connection.
		big, bigSHA := patternFile(t, dir, "core.dump", size, 2)
		cutting := startCuttingProxy(t, srv.SFTPAddr(), cutAfter)
		if out, err := openSSH(t, login.via(cutting.addr()), "put "+batchQuoted(big)+"\n"); err == nil {
			t.Fatalf("a put cut off after %d MiB succeeded:\n%s", cutAfter/mib, out)
		}
		if !cutting.cut.Load() {
			t.Fatal("the proxy never cut the connection")
		}
		stored := waitStored(t, goSFTP(t, login), "core.dump", 20*time.Second)
		if stored > cutAfter {
			t.Fatalf("%d bytes stored of the %d that passed the proxy", stored, int64(cutAfter))
		}
		if f := fileNamed(t, srv.Files(t, "openssh"), "core.dump"); f.State != "uploading" {
			t.Fatalf("the interrupted upload is listed %s, want uploading", f.State)
		}

		stored = waitStored(t, goSFTP(t, login), "core.dump", time.Second) // the server may have stored more since
		counting := countingProxy(t, srv.SFTPAddr())
		out := mustOpenSSH(t, login.via(counting.addr()), "reput "+batchQuoted(big)+"\n")
		if sent := counting.carried.Load(); sent > resent(size, stored) {
			t.Errorf("reput sent %d bytes; the missing ones were %d: it did not resume\n%s", sent, size-stored, out)
		}
		checkComplete(t, fileNamed(t, srv.Files(t, "openssh"), "core.dump"), size, bigSHA)
		if n, got := downloadSHA256(t, srv, "openssh", "core.dump"); n != size || got != bigSHA {
			t.Errorf("download: %d bytes, sha256 %s; want %d bytes, %s", n, got, int64(size), bigSHA)
		}
		t.Logf("cut after %d MiB; %d bytes stored; reput sent %d bytes", cutAfter/mib, stored, counting.carried.Load())
	})
}

func TestOpenSSHSftpReputResumesAnUploadAfterTheServerIsKilledWithSIGKILL(t *testing.T) {
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		const size = 100 * mib
		opts.PartSizeMiB = sftpPartMiB
		srv := testserver.Start(t, opts)
		srv.OpenCase(t, "kill")
		login := loginOf(srv, srv.Credential(t, "kill", "customer"))
		dir := t.TempDir()
		path, want := patternFile(t, dir, "vmcore", size, 3)
		batch := filepath.Join(dir, "batch")
		if err := os.WriteFile(batch, []byte("put "+batchQuoted(path)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}

		// sftp -l (Kbit/s) keeps the upload from ending before the kill.
		ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
		defer cancel()
		put := openSSHCommand(ctx, t, login, batch, "-l", "200000")
		var out bytes.Buffer
		put.Stdout, put.Stderr = &out, &out
		if err := put.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- put.Wait() }()
		stored := waitStored(t, goSFTP(t, login), "vmcore", 30*time.Second)
		srv.Kill()
		select {
		case err := <-exited:
			if err == nil {
				t.Fatalf("the put went through a kill -9 of the server:\n%s", out.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("sftp did not end after the server was killed")
		}

		srv.Restart(t)
		fi, err := goSFTP(t, login).Stat("vmcore")
		if err != nil {
			t.Fatalf("stat after the restart: %v", err)
		}
		if fi.Size() < stored || fi.Size() >= size {
			t.Fatalf("after the restart vmcore is listed with %d bytes; want the %d seen stored before the kill, or more, and less than %d",
				fi.Size(), stored, int64(size))
		}
		counting := countingProxy(t, srv.SFTPAddr())
		mustOpenSSH(t, login.via(counting.addr()), "reput "+batchQuoted(path)+"\n")
		if sent := counting.carried.Load(); sent > resent(size, fi.Size()) {
			t.Errorf("reput sent %d bytes; the missing ones were %d: it did not resume", sent, size-fi.Size())
		}
		checkComplete(t, fileNamed(t, srv.Files(t, "kill"), "vmcore"), size, want)
		if n, got := downloadSHA256(t, srv, "kill", "vmcore"); n != size || got != want {
			t.Errorf("download: %d bytes, sha256 %s; want %d bytes, %s", n, got, int64(size), want)
		}
		t.Logf("killed with %d bytes seen stored; %d stored after the restart", stored, fi.Size())
	})
}

func TestLftpResumesAnInterruptedPutWithPutCAndMirrorsAFolderOfManyFiles(t *testing.T) {
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		const (
			size     = 24 * mib
			cutAfter = 9 * mib
		)
		opts.PartSizeMiB = sftpPartMiB
		srv := testserver.Start(t, opts)
		srv.OpenCase(t, "lftp")
		login := loginOf(srv, srv.Credential(t, "lftp", "customer"))
		dir := t.TempDir()

		// The link dies; lftp would reconnect and go on by itself after a
		// while (15 s): the user gives up before, and comes back with put -c.
		big, bigSHA := patternFile(t, dir, "trace.pcap", size, 10)
		cutting := startCuttingProxy(t, srv.SFTPAddr(), cutAfter)
		ctx, giveUp := context.WithCancel(t.Context())
		defer giveUp()
		put := lftpCommand(ctx, t, login.via(cutting.addr()), "put "+batchQuoted(big))
		if err := put.Start(); err != nil {
			t.Fatal(err)
		}
		c := goSFTP(t, login)
		waitStored(t, c, "trace.pcap", 20*time.Second)
		if err := waitFor(20*time.Second, cutting.cut.Load); err != nil {
			t.Fatal("the proxy never cut the connection")
		}
		giveUp()
		if err := put.Wait(); err == nil {
			t.Fatal("lftp's put through the cut link succeeded")
		}
		stored := waitStored(t, c, "trace.pcap", time.Second) // the server may have stored more since
		counting := countingProxy(t, srv.SFTPAddr())
		if out, err := lftp(t, login.via(counting.addr()), "put -c "+batchQuoted(big)); err != nil {
			t.Fatalf("lftp put -c: %v\n%s", err, out)
		}
		if sent := counting.carried.Load(); sent > resent(size, stored) {
			t.Errorf("put -c sent %d bytes; the missing ones were %d: it did not resume", sent, size-stored)
		}
		checkComplete(t, fileNamed(t, srv.Files(t, "lftp"), "trace.pcap"), size, bigSHA)

		// A folder of many small files and two larger ones, into the case.
		folder := filepath.Join(dir, "logs")
		if err := os.Mkdir(folder, 0o755); err != nil {
			t.Fatal(err)
		}
		type local struct {
			size   int64
			sha256 string
		}
		want := map[string]local{}
		add := func(name string, size int64, seed uint64) {
			_, sum := patternFile(t, folder, name, size, seed)
			want[name] = local{size, sum}
		}
		for i := range 50 {
			add(fmt.Sprintf("node-%02d.log", i), int64(1+i*1009), uint64(100+i))
		}
		add("heap-1.hprof", 3*mib+5, 200)
		add("heap-2.hprof", 4*mib, 201)
		if out, err := lftp(t, login, "mirror -R --parallel=4 "+batchQuoted(folder)+" /"); err != nil {
			t.Fatalf("lftp mirror -R: %v\n%s", err, out)
		}
		files := srv.Files(t, "lftp")
		if len(files) != len(want)+1 {
			t.Errorf("the case lists %d files, want the %d mirrored and trace.pcap", len(files), len(want))
		}
		for name, w := range want {
			checkComplete(t, fileNamed(t, files, name), w.size, w.sha256)
		}
	})
}

func TestRcloneCopiesAFolderOverSFTPAndChecksItByDownloading(t *testing.T) {
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		srv := testserver.Start(t, opts)
		srv.OpenCase(t, "rclone")
		login := loginOf(srv, srv.Credential(t, "rclone", "customer"))
		folder := t.TempDir()
		want := map[string]string{}
		sizes := map[string]int64{}
		for i := range 20 {
			name := fmt.Sprintf("dump-%02d.bin", i)
			sizes[name] = int64(i * 7919)
			_, want[name] = patternFile(t, folder, name, sizes[name], uint64(300+i))
		}
		sizes["cores.tar"] = 6*mib + 1
		_, want["cores.tar"] = patternFile(t, folder, "cores.tar", sizes["cores.tar"], 320)

		if out, err := rclone(t, login, "copy", folder, ":sftp:"); err != nil {
			t.Fatalf("rclone copy: %v\n%s", err, out)
		}
		files := srv.Files(t, "rclone")
		if len(files) != len(want) {
			t.Errorf("the case lists %d files, want %d", len(files), len(want))
		}
		for name, sum := range want {
			checkComplete(t, fileNamed(t, files, name), sizes[name], sum)
		}
		// Debian's rclone cannot ask for SHA-256, the one digest the server
		// answers for: a plain check compares sizes only; --download
		// compares the bytes (sftp_exec_test.go checks by SHA-256).
		if out, err := rclone(t, login, "check", "--download", folder, ":sftp:"); err != nil {
			t.Fatalf("rclone check --download: %v\n%s", err, out)
		}
		if out, err := rclone(t, login, "check", "--size-only", folder, ":sftp:"); err != nil {
			t.Fatalf("rclone check --size-only: %v\n%s", err, out)
		}
	})
}

func TestPsftpUploadsToAFilepartAndItsRenameFinishesTheFileAsWithWinSCP(t *testing.T) {
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		const size = 6*mib + 3
		opts.PartSizeMiB = sftpPartMiB
		srv := testserver.Start(t, opts)
		srv.OpenCase(t, "psftp")
		login := loginOf(srv, srv.Credential(t, "psftp", "customer"))
		path, want := patternFile(t, t.TempDir(), "report.tgz", size, 30)

		// WinSCP's upload: the bytes go to name.filepart and the handle is
		// closed; the file is done only once renamed.
		if out, err := psftp(t, login, "put "+batchQuoted(path)+" report.tgz.filepart\n"); err != nil {
			t.Fatalf("psftp put: %v\n%s", err, out)
		}
		if f := fileNamed(t, srv.Files(t, "psftp"), "report.tgz.filepart"); f.State != "uploading" {
			t.Fatalf("report.tgz.filepart is %s after its close, want uploading until renamed", f.State)
		}
		if fi, err := goSFTP(t, login).Stat("report.tgz.filepart"); err != nil || fi.Size() != size {
			t.Fatalf("stat of the closed .filepart: %v, %v; want %d bytes", fi, err, int64(size))
		}
		out, err := psftp(t, login, "mv report.tgz.filepart report.tgz\nls\n")
		if err != nil {
			t.Fatalf("psftp mv, ls: %v\n%s", err, out)
		}
		if line := listedLine(out, "report.tgz"); !strings.Contains(line, fmt.Sprint(int64(size))) {
			t.Errorf("ls lists report.tgz as %q, want it with %d bytes:\n%s", line, int64(size), out)
		}
		if line := listedLine(out, "report.tgz.filepart"); line != "" {
			t.Errorf("ls still lists the .filepart: %q", line)
		}
		files := srv.Files(t, "psftp")
		if len(files) != 1 {
			t.Errorf("the case lists %+v, want report.tgz alone", files)
		}
		checkComplete(t, fileNamed(t, files, "report.tgz"), size, want)
	})
}

func TestOpenSSHSftpStaffCredentialDownloadsACustomersFile(t *testing.T) {
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		const size = 9*mib + 99
		srv := testserver.Start(t, opts)
		srv.OpenCase(t, "staff")
		customer := loginOf(srv, srv.Credential(t, "staff", "customer"))
		staff := loginOf(srv, srv.Credential(t, "staff", "staff"))
		dir := t.TempDir()
		path, want := patternFile(t, dir, "sosreport.tar.xz", size, 40)
		mustOpenSSH(t, customer, "put "+batchQuoted(path)+"\n")

		got := filepath.Join(dir, "downloaded")
		mustOpenSSH(t, staff, "get sosreport.tar.xz "+batchQuoted(got)+"\n")
		if sum := sha256File(t, got); sum != want {
			t.Fatalf("the staff download has sha256 %s, want %s", sum, want)
		}
	})
}
