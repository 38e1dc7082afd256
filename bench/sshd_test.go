package bench

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/loopback"
)

// OpenSSH's server as Debian installs it (openssh-server,
// openssh-sftp-server: scripts/bench-deps.sh).
const (
	sshdBin       = "/usr/sbin/sshd"
	sftpServerBin = "/usr/lib/openssh/sftp-server"
)

// sshKey is a key pair for the OpenSSH client, made with ssh-keygen.
type sshKey struct {
	private string // its file
	public  string // the authorized_keys line
}

func newSSHKey(b *testing.B) sshKey {
	b.Helper()
	path := filepath.Join(b.TempDir(), "id_ed25519")
	run(b, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", path)
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		b.Fatal(err)
	}
	return sshKey{private: path, public: strings.TrimSpace(string(pub))}
}

// sftpTarget is an SFTP server the OpenSSH client uploads to.
type sftpTarget struct {
	addr string // host:port
	user string
	dir  string // the remote folder the files go to, "" for the login's
}

// sshd is OpenSSH's sshd on a port of 127.0.0.1 with a configuration of
// its own: a generated host key, public-key logins as the current user
// with the one client key, and sftp-server writing to a folder on local
// disk. It is what SFTP can do on this machine without an object store.
type sshd struct {
	sftpTarget
	proc *proc
}

func startSSHD(b *testing.B, client sshKey) *sshd {
	b.Helper()
	for _, bin := range []string{sshdBin, sftpServerBin} {
		if _, err := os.Stat(bin); err != nil {
			b.Fatalf("%s not found: run ./scripts/bench-deps.sh (make bench does): %v", bin, err)
		}
	}
	me, err := user.Current()
	if err != nil {
		b.Fatal(err)
	}
	if me.Uid == "0" {
		// Its privilege separation needs this folder, which Debian's
		// service unit makes at boot and this machine may not have.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	hostKey := filepath.Join(dir, "host_ed25519")
	run(b, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey)
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, []byte(client.public+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	ports, err := loopback.FreePorts(1)
	if err != nil {
		b.Fatal(err)
	}
	s := &sshd{sftpTarget: sftpTarget{
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		user: me.Username,
		dir:  b.TempDir(),
	}}
	config := filepath.Join(dir, "sshd_config")
	err = os.WriteFile(config, []byte(strings.Join([]string{
		"ListenAddress " + s.addr,
		"HostKey " + hostKey,
		"PidFile none",
		"AuthorizedKeysFile " + authorized,
		"StrictModes no", // the test's temporary folders are not root's 0755
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"Subsystem sftp " + sftpServerBin,
		"LogLevel ERROR",
	}, "\n")+"\n"), 0o600)
	if err != nil {
		b.Fatal(err)
	}
	// -D: in the foreground, so that the bench owns the process; -e: log to
	// stderr. sshd re-executes itself, so it needs its absolute path.
	cmd := exec.Command(sshdBin, "-D", "-e", "-f", config)
	s.proc = startServer(b, "sshd", cmd, func(exited <-chan struct{}) error { return waitSSH(s.addr, exited) })
	return s
}

// waitSSH waits until addr answers with an SSH banner.
func waitSSH(addr string, exited <-chan struct{}) error {
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if strings.HasPrefix(line, "SSH-") {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("exited before it was ready")
		case <-deadline:
			return fmt.Errorf("no SSH banner at %s within 30 s", addr)
		case <-tick.C:
		}
	}
}

// sftpPutArgs is the OpenSSH sftp command line that uploads file as name
// to t with key, cipher (and mac, for a cipher without its own) and
// nothing else of the user's configuration; batch is a file for its
// command.
func sftpPutArgs(b *testing.B, t sftpTarget, key sshKey, cipher, mac, file, name string) []string {
	b.Helper()
	host, port, err := net.SplitHostPort(t.addr)
	if err != nil {
		b.Fatal(err)
	}
	remote := name
	if t.dir != "" {
		remote = filepath.Join(t.dir, name)
	}
	batch := filepath.Join(b.TempDir(), "batch")
	if err := os.WriteFile(batch, fmt.Appendf(nil, "put %q %q\n", file, remote), 0o600); err != nil {
		b.Fatal(err)
	}
	args := []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-i", key.private}
	if cipher != "" {
		args = append(args, "-c", cipher)
	}
	if mac != "" {
		args = append(args, "-o", "MACs="+mac)
	}
	return append(args, "-P", port, "-b", batch, t.user+"@"+host)
}
