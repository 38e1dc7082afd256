package bench

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/casedrop/casedrop/internal/loopback"
	"github.com/casedrop/casedrop/internal/miniotest"
)

// sftpgo is SFTPGo, the build SFTPGO_BIN names, in its portable mode (one
// user, no database): its S3 backend on a bucket of its own in the bench's
// MinIO, public-key logins with the client key.
type sftpgo struct {
	sftpTarget
	bucket string
	proc   *proc
}

// startSFTPGo starts SFTPGo if SFTPGO_BIN is set, and returns nil
// otherwise: the bench does not build it.
func startSFTPGo(b *testing.B, m *miniotest.Server, client sshKey) *sftpgo {
	b.Helper()
	bin := os.Getenv("SFTPGO_BIN")
	if bin == "" {
		return nil
	}
	ports, err := loopback.FreePorts(1)
	if err != nil {
		b.Fatal(err)
	}
	s := &sftpgo{
		sftpTarget: sftpTarget{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), user: "bench"},
		bucket:     m.NewBucket(b),
	}
	cmd := exec.Command(bin, "portable", "--directory", b.TempDir(),
		"--sftpd-port", strconv.Itoa(ports[0]), "--username", s.user, "--public-key", client.public,
		"--permissions", "*", "--fs-provider", "s3fs", "--s3-bucket", s.bucket, "--s3-region", "us-east-1",
		"--s3-endpoint", "http://"+m.Endpoint, "--s3-force-path-style",
		"--s3-access-key", m.AccessKey, "--s3-access-secret", m.SecretKey)
	// Its host keys and configuration go to its working folder.
	cmd.Dir = b.TempDir()
	s.proc = startServer(b, "sftpgo", cmd, func(exited <-chan struct{}) error { return waitSSH(s.addr, exited) })
	return s
}
