package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/internal/testserver"
)

// A credential's short password and its SSH key with the clients that
// use them: PuTTY's psftp stands in for WinSCP (whose SFTP engine it is,
// and whose login box takes 100 characters), OpenSSH's sftp for a key.

// passwordLoginOf is loginOf with the credential's short password in
// place of its token.
func passwordLoginOf(srv *testserver.Server, c testserver.Credential) sftpLogin {
	l := loginOf(srv, c)
	l.token = c.Password
	return l
}

func TestWinSCPsEngineLogsInWithTheShortPasswordWhereACutTokenIsRefused(t *testing.T) {
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		srv := testserver.Start(t, opts)
		srv.OpenCase(t, "winscp")
		cred := srv.Credential(t, "winscp", "customer")
		if len(cred.Password) > 100 {
			t.Fatalf("the password has %d characters: WinSCP's login box takes 100", len(cred.Password))
		}
		dir := t.TempDir()
		short, shortSum := patternFile(t, dir, "short.log", 300_000, 41)
		long, longSum := patternFile(t, dir, "token.log", 1000, 42)

		if out, err := psftp(t, passwordLoginOf(srv, cred), "put "+batchQuoted(short)+"\n"); err != nil {
			t.Fatalf("psftp with the short password: %v\n%s", err, out)
		}
		// What WinSCP's box keeps of a pasted token: its first 100 characters.
		cut := loginOf(srv, cred)
		cut.token = cred.Token[:100]
		if out, err := psftp(t, cut, "put "+batchQuoted(long)+"\n"); err == nil {
			t.Fatalf("psftp with the token cut to 100 characters logged in:\n%s", out)
		}
		if out, err := psftp(t, loginOf(srv, cred), "put "+batchQuoted(long)+"\n"); err != nil {
			t.Fatalf("psftp with the whole token: %v\n%s", err, out)
		}
		files := srv.Files(t, "winscp")
		checkComplete(t, fileNamed(t, files, "short.log"), 300_000, shortSum)
		checkComplete(t, fileNamed(t, files, "token.log"), 1000, longSum)
		if log := srv.Log(); strings.Contains(log, cred.Password) || strings.Contains(log, cred.Token[:100]) {
			t.Fatal("a password reached the server's log")
		}
	})
}

// newKeyPair makes an ed25519 key pair with ssh-keygen and returns the
// private key's path and the public key's line.
func newKeyPair(t *testing.T) (private, public string) {
	t.Helper()
	needTools(t, "ssh-keygen")
	private = filepath.Join(t.TempDir(), "id_ed25519")
	out, err := clientOutput(clientCommand(t.Context(), os.Environ(), "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "customer@laptop", "-f", private))
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(private + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return private, string(pub)
}

// openSSHWithKey runs OpenSSH's sftp with the batch commands as l.user,
// logging in with the private key alone: no agent, no other key, no
// password.
func openSSHWithKey(t *testing.T, l sftpLogin, key, commands string) (string, error) {
	t.Helper()
	needTools(t, "sftp")
	host, port := l.hostPort(t)
	batch := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(batch, []byte(commands), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	return clientOutput(clientCommand(ctx, envWithout("SSH_AUTH_SOCK"), "sftp", "-F", "/dev/null",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-i", key,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-P", port, "-b", batch, l.user+"@"+host))
}

func TestOpenSSHLogsInWithTheCredentialsKeyUntilTheCredentialIsRevoked(t *testing.T) {
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		srv := testserver.Start(t, opts)
		srv.OpenCase(t, "keys")
		private, public := newKeyPair(t)
		cred := srv.CredentialWithKey(t, "keys", public)
		l := loginOf(srv, cred)
		path, sum := patternFile(t, t.TempDir(), "by-key.bin", 2*mib+5, 43)

		if out, err := openSSHWithKey(t, l, private, "put "+batchQuoted(path)+"\n"); err != nil {
			t.Fatalf("sftp -i key: %v\n%s", err, out)
		}
		checkComplete(t, fileNamed(t, srv.Files(t, "keys"), "by-key.bin"), 2*mib+5, sum)

		other := srv.Credential(t, "keys", "customer")
		if out, err := openSSHWithKey(t, loginOf(srv, other), private, "ls\n"); err == nil {
			t.Fatalf("the key logged in as another credential of the case:\n%s", out)
		}
		srv.RevokeCredential(t, cred.ID)
		out, err := openSSHWithKey(t, l, private, "ls\n")
		if err == nil {
			t.Fatalf("the key of a revoked credential logged in:\n%s", out)
		}
		if !strings.Contains(out, "Permission denied") {
			t.Errorf("sftp said %q, want a plain permission denied", out)
		}
	})
}
