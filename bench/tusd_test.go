package bench

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/loopback"
	"github.com/casedrop/casedrop/internal/miniotest"
)

// tusdVersion is the tusd the bench compares with; scripts/bench-deps.sh
// installs it as $(go env GOPATH)/bin/tusd-<version>/tusd.
const tusdVersion = "v2.10.1"

// tusd is tusd with its S3 store on a bucket of its own in the bench's
// MinIO, serving HTTPS with the certificate and key it is given
// (casedrop's: the same handshake and cipher suites for both).
type tusd struct {
	url    string // of its tus endpoint, https://127.0.0.1:port/files/
	bucket string
	proc   *proc
	client *http.Client
}

// startTusd starts tusd with its defaults but for the store, TLS and the
// content hashes (MD5 and SHA-256 of every part, sent with it to S3),
// which it computes unless hashes is false (-s3-disable-content-hashes).
func startTusd(b *testing.B, m *miniotest.Server, certFile, keyFile string, hashes bool) *tusd {
	b.Helper()
	bin := filepath.Join(goBin(b), "tusd-"+tusdVersion, "tusd")
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("tusd %s not found: run ./scripts/bench-deps.sh (make bench does): %v", tusdVersion, err)
	}
	ports, err := loopback.FreePorts(1)
	if err != nil {
		b.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	t := &tusd{url: "https://" + addr + "/files/", bucket: m.NewBucket(b)}
	if t.client, err = loopback.Client(certFile); err != nil {
		b.Fatal(err)
	}
	args := []string{"-host", "127.0.0.1", "-port", strconv.Itoa(ports[0]),
		"-tls-certificate", certFile, "-tls-key", keyFile,
		"-s3-bucket", t.bucket, "-s3-endpoint", "http://" + m.Endpoint}
	if !hashes {
		args = append(args, "-s3-disable-content-hashes")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+m.AccessKey, "AWS_SECRET_ACCESS_KEY="+m.SecretKey, "AWS_REGION=us-east-1",
		// Where its S3 store buffers each part on disk before sending it.
		"TMPDIR="+b.TempDir())
	t.proc = startServer(b, "tusd", cmd, t.waitReady)
	return t
}

// waitReady waits until tusd answers an OPTIONS request.
func (t *tusd) waitReady(exited <-chan struct{}) error {
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequest(http.MethodOptions, t.url, nil)
		if err != nil {
			return err
		}
		if resp, err := t.client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("exited before it was ready")
		case <-deadline:
			return errors.New("not ready within 30 s")
		case <-tick.C:
		}
	}
}

// create starts an upload of size bytes and returns its URL.
func (t *tusd) create(b *testing.B, size int64) string {
	b.Helper()
	req, err := http.NewRequest(http.MethodPost, t.url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	resp, err := t.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusCreated || err != nil {
		b.Fatalf("tusd: create: %s, Location %v", resp.Status, err)
	}
	return loc.String()
}

// curlPatch is the command line that uploads file whole to a tus upload
// URL, as the bench sends it to casedrop and tusd alike; token may be
// empty.
func curlPatch(proto, cacert, token, file, url string) []string {
	args := []string{"-sS", "--fail", proto, "--cacert", cacert, "-X", "PATCH",
		"-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0",
		"-H", "Content-Type: application/offset+octet-stream",
		"-T", file, "-o", "/dev/null"}
	if token != "" {
		args = append(args, "-H", "Authorization: Bearer "+token)
	}
	return append(args, url)
}
