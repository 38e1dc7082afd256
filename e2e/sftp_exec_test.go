package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/internal/testserver"
)

// What the SFTP door answers to clients that want more than SFTP: legacy
// scp and rsync, ssh with a command or a shell, and rclone asking for
// digests.

const sftpOnlyLine = "casedrop speaks SFTP only: "

// sshClient runs name (ssh, scp, rsync) with args as l and returns its
// stdout and stderr apart.
func sshClient(t *testing.T, l sftpLogin, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	cmd := sshpassCommand(ctx, t, l, name, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func TestLegacyScpRsyncAndSSHCommandsFailSayingSFTPOnlyWhileScpAndSha256sumWork(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "legacy")
	login := loginOf(srv, srv.Credential(t, "legacy", "customer"))
	host, port := login.hostPort(t)
	target := login.user + "@" + host
	ssh := slices.Concat(sshOptions, []string{"-p", port})
	path, sum := patternFile(t, t.TempDir(), "notes.txt", 100_000, 7)

	for _, tc := range []struct {
		what, name string
		args       []string
	}{
		{"ssh host ls", "ssh", slices.Concat(ssh, []string{target, "ls"})},
		{"ssh -tt host (a shell on a terminal)", "ssh", slices.Concat(ssh, []string{"-tt", target})},
		{"scp -O", "scp", slices.Concat(sshOptions, []string{"-O", "-P", port, path, target + ":"})},
		{"rsync", "rsync", []string{"-e", "ssh " + strings.Join(ssh, " "), path, target + ":"}},
	} {
		stdout, stderr, err := sshClient(t, login, tc.name, tc.args...)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !strings.Contains(stdout+stderr, sftpOnlyLine) {
			t.Errorf("%s: %v; want a failure saying %q\nstdout: %s\nstderr: %s", tc.what, err, sftpOnlyLine, stdout, stderr)
		}
	}
	needTools(t, "pscp")
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	pscp := slices.Concat([]string{"-scp"}, puttyLogin(t, login), []string{path, host + ":"})
	out, err := clientOutput(clientCommand(ctx, os.Environ(), "pscp", pscp...))
	if err == nil || !strings.Contains(out, sftpOnlyLine) {
		t.Errorf("pscp -scp: %v; want a failure saying %q\n%s", err, sftpOnlyLine, out)
	}
	if files := srv.Files(t, "legacy"); len(files) != 0 {
		t.Fatalf("the refused clients left files: %+v", files)
	}

	// scp without -O speaks SFTP (setting the size it wrote on each file
	// while it is open), and says nothing when all goes well.
	second, secondSum := patternFile(t, t.TempDir(), "second.bin", 6*mib+5, 8)
	if stdout, stderr, err := sshClient(t, login, "scp", slices.Concat(sshOptions, []string{"-P", port, path, second, target + ":"})...); err != nil || stdout+stderr != "" {
		t.Fatalf("scp of two files: %v\n%s%s", err, stdout, stderr)
	}
	checkComplete(t, fileNamed(t, srv.Files(t, "legacy"), "notes.txt"), 100_000, sum)
	checkComplete(t, fileNamed(t, srv.Files(t, "legacy"), "second.bin"), 6*mib+5, secondSum)
	stdout, stderr, err := sshClient(t, login, "ssh", slices.Concat(ssh, []string{target, "sha256sum", "notes.txt"})...)
	if err != nil || stdout != sum+"  notes.txt\n" {
		t.Fatalf("ssh host sha256sum notes.txt: %v, stdout %q, stderr %q; want %q", err, stdout, stderr, sum+"  notes.txt\n")
	}
	// Its answer checks local copies, as docs/integrity.md shows.
	check := exec.CommandContext(t.Context(), "sha256sum", "-c")
	check.Dir, check.Stdin = filepath.Dir(path), strings.NewReader(stdout)
	if out, err := check.CombinedOutput(); err != nil || string(out) != "notes.txt: OK\n" {
		t.Fatalf("sha256sum -c of the answer: %v\n%s", err, out)
	}
}

// rcloneSHA256 runs the rclone that scripts/test-deps.sh installs beside
// Debian's (1.71 or later: --sftp-sha256sum-command), with its shell type
// left for it to find out, as a customer runs it.
func rcloneSHA256(t *testing.T, l sftpLogin, args ...string) (string, error) {
	t.Helper()
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "rclone-sha256", "rclone")
	return runRclone(t, bin, l, nil, args...)
}

func TestRcloneChecksAFolderAgainstTheStoredSHA256AndFindsAFileChangedBehindItsBack(t *testing.T) {
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		srv := testserver.Start(t, opts)
		srv.OpenCase(t, "rclone")
		login := loginOf(srv, srv.Credential(t, "rclone", "customer"))
		folder := t.TempDir()
		sizes := map[string]int64{"cores.tar": 6*mib + 1, "it's a test (1).log": 1000, "résumé.pdf": 0}
		sums := map[string]string{}
		for name, size := range sizes {
			_, sums[name] = patternFile(t, folder, name, size, uint64(len(name)))
		}
		sha256Flags := []string{"--sftp-hashes", "sha256", "--sftp-sha256sum-command", "sha256sum"}

		// A copy checks each upload's SHA-256 against the server's answer.
		if out, err := rcloneSHA256(t, login, slices.Concat([]string{"copy", folder, ":sftp:"}, sha256Flags)...); err != nil {
			t.Fatalf("rclone copy: %v\n%s", err, out)
		}
		files := srv.Files(t, "rclone")
		for name, size := range sizes {
			checkComplete(t, fileNamed(t, files, name), size, sums[name])
		}

		check := slices.Concat([]string{"check", folder, ":sftp:"}, sha256Flags)
		out, err := rcloneSHA256(t, login, check...)
		if err != nil || len(missingFrom(out, "0 differences found", "3 matching files")) > 0 || strings.Contains(out, "hashes could not be checked") {
			t.Fatalf("rclone check of the copied folder: %v; want 3 files matching by hash\n%s", err, out)
		}

		// The local copy changes behind rclone's back; its size stays.
		patternFile(t, folder, "cores.tar", sizes["cores.tar"], 99)
		out, err = rcloneSHA256(t, login, check...)
		if err == nil || len(missingFrom(out, "cores.tar: sha256 differ", "1 differences found", "2 matching files")) > 0 {
			t.Fatalf("rclone check after cores.tar changed: %v; want it to fail on cores.tar's SHA-256\n%s", err, out)
		}
	})
}
