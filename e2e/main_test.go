// Package e2e drives the built casedrop binary with real clients (Go's
// HTTP/2 client, tus-js-client in Node) on local disk and on a real MinIO.
package e2e

import (
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testserver"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// onLocalDiskAndMinIO runs test once per storage backend.
func onLocalDiskAndMinIO(t *testing.T, test func(t *testing.T, opts testserver.Options)) {
	t.Run("on local disk", func(t *testing.T) {
		test(t, testserver.Options{})
	})
	t.Run("on MinIO", func(t *testing.T) {
		minio := miniotest.Shared(t)
		test(t, testserver.Options{S3: minio, Bucket: minio.NewBucket(t)})
	})
}

// fileNamed returns the listed file called name, failing the test if the
// list has none.
func fileNamed(t *testing.T, files []testserver.File, name string) testserver.File {
	t.Helper()
	for _, f := range files {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no file %q in the case's list %+v", name, files)
	return testserver.File{}
}

// checkComplete fails the test unless f is complete with size and digest.
func checkComplete(t *testing.T, f testserver.File, size int64, sha256hex string) {
	t.Helper()
	if f.State != "complete" || f.Size != size || f.SHA256 != sha256hex {
		t.Errorf("%s is listed %s, %d bytes, sha256 %s; want complete, %d bytes, sha256 %s (reason %q)",
			f.Name, f.State, f.Size, f.SHA256, size, sha256hex, f.Reason)
	}
}

// reprDigest is the Repr-Digest header value of a hex SHA-256.
func reprDigest(t *testing.T, sha256hex string) string {
	t.Helper()
	sum, err := hex.DecodeString(sha256hex)
	if err != nil {
		t.Fatal(err)
	}
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum) + ":"
}

const mib = 1 << 20
