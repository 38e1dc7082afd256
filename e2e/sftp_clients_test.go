package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/internal/testserver"
)

// The real SFTP clients customers use, driven from tests: OpenSSH's sftp
// (password through sshpass), lftp, rclone and PuTTY's psftp. Each is
// told to accept the server's host key without asking, and none gets the
// password on its command line: sshpass reads it from SSHPASS, lftp from a
// script file, rclone from its environment, psftp from a file.

// clientTimeout bounds one run of a client.
const clientTimeout = 2 * time.Minute

// sftpLogin is what a client needs to log in: the server's SFTP address
// and a credential's user name and token.
type sftpLogin struct {
	addr, user, token string
}

func loginOf(srv *testserver.Server, c testserver.Credential) sftpLogin {
	return sftpLogin{addr: srv.SFTPAddr(), user: c.Username, token: c.Token}
}

// via returns the login through another address (a proxy).
func (l sftpLogin) via(addr string) sftpLogin {
	l.addr = addr
	return l
}

func (l sftpLogin) hostPort(t *testing.T) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(l.addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// clientCommand returns cmd to run under ctx: its whole process group is
// killed when ctx ends, so no client outlives its test.
func clientCommand(ctx context.Context, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// clientOutput runs cmd and returns its output, stdout and stderr interleaved.
func clientOutput(cmd *exec.Cmd) (string, error) {
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// writeSecret writes content to a new file only the owner reads.
func writeSecret(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// envWithout is the test's environment without the named variables.
func envWithout(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !slices.Contains(names, name) {
			env = append(env, kv)
		}
	}
	return env
}

// sshOptions are what OpenSSH's clients (ssh, sftp, scp, and rsync's ssh)
// run with here: no config file, the server's host key taken without
// asking and remembered nowhere, one password try.
var sshOptions = []string{"-F", "/dev/null",
	"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
	"-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1"}

// sshpassCommand is the client name (sftp, ssh, scp, rsync) run with args,
// logging in as l with the password sshpass types for it.
func sshpassCommand(ctx context.Context, t *testing.T, l sftpLogin, name string, args ...string) *exec.Cmd {
	t.Helper()
	needTools(t, name, "sshpass")
	return clientCommand(ctx, append(os.Environ(), "SSHPASS="+l.token), "sshpass", append([]string{"-e", name}, args...)...)
}

// openSSHCommand is OpenSSH's sftp running batch (a file, or "-" for
// stdin) as l. sftp -b turns BatchMode on, which turns password logins
// off: BatchMode=no before -b turns them on again for sshpass.
func openSSHCommand(ctx context.Context, t *testing.T, l sftpLogin, batch string, extra ...string) *exec.Cmd {
	t.Helper()
	host, port := l.hostPort(t)
	args := append([]string{"-o", "BatchMode=no"}, sshOptions...)
	args = append(args, "-P", port)
	args = append(args, extra...)
	args = append(args, "-b", batch, l.user+"@"+host)
	return sshpassCommand(ctx, t, l, "sftp", args...)
}

// openSSH runs OpenSSH's sftp with the batch commands as l.
func openSSH(t *testing.T, l sftpLogin, commands string, extra ...string) (string, error) {
	t.Helper()
	batch := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(batch, []byte(commands), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	return clientOutput(openSSHCommand(ctx, t, l, batch, extra...))
}

// mustOpenSSH is openSSH failing the test when sftp fails.
func mustOpenSSH(t *testing.T, l sftpLogin, commands string, extra ...string) string {
	t.Helper()
	out, err := openSSH(t, l, commands, extra...)
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	return out
}

// lftpCommand is lftp running commands as l. Login and settings come
// from a script file (mode 0600) that lftp reads; lftp runs OpenSSH's ssh
// underneath.
func lftpCommand(ctx context.Context, t *testing.T, l sftpLogin, commands string) *exec.Cmd {
	t.Helper()
	needTools(t, "lftp", "ssh")
	host, port := l.hostPort(t)
	script := strings.Join([]string{
		"set sftp:auto-confirm yes",
		`set sftp:connect-program "ssh -a -x -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"`,
		"set net:max-retries 1",
		"set net:timeout 20",
		"set cmd:fail-exit yes",
		fmt.Sprintf("open -u %s,%s sftp://%s:%s", l.user, l.token, host, port),
		commands,
	}, "\n") + "\n"
	path := writeSecret(t, "lftp-script", script)
	// lftp keeps history and caches under HOME.
	env := append(os.Environ(), "HOME="+t.TempDir())
	return clientCommand(ctx, env, "lftp", "--norc", "-f", path)
}

// lftp runs lftp commands as l.
func lftp(t *testing.T, l sftpLogin, commands string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	return clientOutput(lftpCommand(ctx, t, l, commands))
}

// rclone runs Debian's rclone with an on-the-fly sftp remote ":sftp:"
// logged in as l. It cannot ask for SHA-256 (rcloneSHA256 can), the one
// digest the server answers for, so it is told not to look for digest
// commands: checks compare sizes or downloads.
func rclone(t *testing.T, l sftpLogin, args ...string) (string, error) {
	t.Helper()
	return runRclone(t, "rclone", l, []string{"RCLONE_SFTP_SHELL_TYPE=none"}, args...)
}

// runRclone runs the rclone binary bin on ":sftp:" logged in as l, with
// env added to its environment. rclone refuses to start with
// AWS_CA_BUNDLE set, so it is unset.
func runRclone(t *testing.T, bin string, l sftpLogin, env []string, args ...string) (string, error) {
	t.Helper()
	needTools(t, bin)
	host, port := l.hostPort(t)
	base := envWithout("AWS_CA_BUNDLE")
	obscure := exec.CommandContext(t.Context(), bin, "obscure", "-")
	obscure.Env = base
	obscure.Stdin = strings.NewReader(l.token + "\n")
	obscured, err := obscure.Output()
	if err != nil {
		t.Fatalf("rclone obscure: %v", err)
	}
	config := writeSecret(t, "rclone.conf", "")
	env = append(append(base,
		"RCLONE_CONFIG="+config,
		"RCLONE_SFTP_HOST="+host, "RCLONE_SFTP_PORT="+port, "RCLONE_SFTP_USER="+l.user,
		"RCLONE_SFTP_PASS="+strings.TrimSpace(string(obscured))), env...)
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	return clientOutput(clientCommand(ctx, env, bin, args...))
}

// psftp runs PuTTY's psftp with a batch script as l. It gets the server's
// host keys by fingerprint (-hostkey), as a WinSCP user confirms them once.
func psftp(t *testing.T, l sftpLogin, script string) (string, error) {
	t.Helper()
	needTools(t, "psftp")
	host, _ := l.hostPort(t)
	scriptPath := filepath.Join(t.TempDir(), "psftp-script")
	if err := os.WriteFile(scriptPath, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append(puttyLogin(t, l), "-b", scriptPath, host)
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	return clientOutput(clientCommand(ctx, os.Environ(), "psftp", args...))
}

// puttyLogin is the arguments with which PuTTY's tools (psftp, pscp) log
// in as l without asking anything.
func puttyLogin(t *testing.T, l sftpLogin) []string {
	t.Helper()
	_, port := l.hostPort(t)
	args := []string{"-P", port, "-l", l.user, "-pwfile", writeSecret(t, "password", l.token), "-batch"}
	for _, fp := range hostKeyFingerprints(t, l.addr) {
		args = append(args, "-hostkey", fp)
	}
	return args
}

// hostKeyFingerprints returns the SHA-256 fingerprints of the server's
// host keys, one handshake per key type.
func hostKeyFingerprints(t *testing.T, addr string) []string {
	t.Helper()
	errGot := errors.New("host key received")
	var fps []string
	for _, alg := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256} {
		var fp string
		cfg := &ssh.ClientConfig{
			User:              "host-key-probe",
			HostKeyAlgorithms: []string{alg},
			HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
				fp = ssh.FingerprintSHA256(key)
				return errGot // no need to log in
			},
			Timeout: 10 * time.Second,
		}
		conn, err := ssh.Dial("tcp", addr, cfg)
		if err == nil {
			conn.Close()
		}
		if !errors.Is(err, errGot) {
			t.Fatalf("getting the server's %s host key: %v", alg, err)
		}
		fps = append(fps, fp)
	}
	return fps
}

// goSFTP logs in as l with pkg/sftp's client, to look at what a client
// sees while another one works.
func goSFTP(t *testing.T, l sftpLogin) *sftp.Client {
	t.Helper()
	conn, err := ssh.Dial("tcp", l.addr, &ssh.ClientConfig{
		User: l.user, Auth: []ssh.AuthMethod{ssh.Password(l.token)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh login as %s: %v", l.user, err)
	}
	c, err := sftp.NewClient(conn)
	if err != nil {
		conn.Close()
		t.Fatalf("sftp session: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		conn.Close()
	})
	return c
}

// waitStored waits until name is listed over SFTP with more than zero
// stored bytes, and returns how many.
func waitStored(t *testing.T, c *sftp.Client, name string, timeout time.Duration) int64 {
	t.Helper()
	var size int64
	err := waitFor(timeout, func() bool {
		fi, err := c.Stat(name)
		if err == nil {
			size = fi.Size()
		}
		return size > 0
	})
	if err != nil {
		t.Fatalf("%s was not listed with stored bytes within %v", name, timeout)
	}
	return size
}

// batchQuoted quotes a local path for a client's batch script.
func batchQuoted(path string) string {
	if strings.ContainsAny(path, "\"\\") {
		panic("unquotable path " + path)
	}
	return `"` + path + `"`
}

// patternFile writes size bytes of the pattern seeded with seed into dir as
// name and returns its path and SHA-256.
func patternFile(t *testing.T, dir, name string, size int64, seed uint64) (path, sha256hex string) {
	t.Helper()
	path = filepath.Join(dir, name)
	return path, newPattern(seed).writeFile(t, path, size)
}

// missingFrom returns those of wants that out does not hold.
func missingFrom(out string, wants ...string) []string {
	var miss []string
	for _, w := range wants {
		if !strings.Contains(out, w) {
			miss = append(miss, w)
		}
	}
	return miss
}

// listedLine returns the line of a long listing (ls -l) that names name,
// or "".
func listedLine(listing, name string) string {
	for line := range strings.Lines(listing) {
		fields := strings.Fields(line)
		if len(fields) >= 9 && fields[len(fields)-1] == name {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
