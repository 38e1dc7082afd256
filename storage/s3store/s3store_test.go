package s3store

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/storagetest"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// open returns a Store on bucket of the shared MinIO server.
func open(t *testing.T, bucket, prefix string) *Store {
	t.Helper()
	srv := miniotest.Shared(t)
	s, err := New(t.Context(), Config{
		Endpoint:  srv.Endpoint,
		Bucket:    bucket,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		Insecure:  true,
		Prefix:    prefix,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func newBucket(t *testing.T) string { return miniotest.Shared(t).NewBucket(t) }

func TestContract(t *testing.T) {
	storagetest.Run(t, storagetest.PerTest(newBucket, func(t *testing.T, bucket string) storage.Store {
		return open(t, bucket, "")
	}))
}

func TestContractWithPrefix(t *testing.T) {
	storagetest.Run(t, storagetest.PerTest(newBucket, func(t *testing.T, bucket string) storage.Store {
		return open(t, bucket, "/some/prefix")
	}))
}

func TestPrefixKeepsKeysInItsFolder(t *testing.T) {
	bucket := newBucket(t)
	s := open(t, bucket, "casedrop")
	if err := s.Put(t.Context(), "a/b", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	plain := open(t, bucket, "")
	if _, err := plain.Stat(t.Context(), "casedrop/a/b"); err != nil {
		t.Errorf("object not at casedrop/a/b in the bucket: %v", err)
	}
}

func TestNewCreatesAMissingBucket(t *testing.T) {
	bucket := newBucket(t)
	c, err := miniotest.Shared(t).Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveBucket(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	s := open(t, bucket, "")
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after New created the bucket: %v", err)
	}
}

func TestPingFailsWithoutTheBucket(t *testing.T) {
	bucket := newBucket(t)
	s := open(t, bucket, "")
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	c, err := miniotest.Shared(t).Client()
	if err != nil {
		t.Fatal(err)
	}
	// ForceDelete: the bucket holds Ping's probe object.
	if err := c.RemoveBucketWithOptions(t.Context(), bucket, minio.RemoveBucketOptions{ForceDelete: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping succeeded with the bucket removed")
	}
	// Let NewBucket's cleanup find a bucket to remove.
	if err := c.MakeBucket(t.Context(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Objects larger than one PUT may be go as multipart uploads; the limits
// are lowered here so that a small object takes that path.
func TestLargePutGoesInParts(t *testing.T) {
	s := open(t, newBucket(t), "")
	s.maxSinglePut = storage.MinPartSize
	s.multipartPartSize = storage.MinPartSize
	data := bytes.Repeat([]byte("0123456789abcdef"), (2*storage.MinPartSize+1000)/16)

	if err := s.Put(t.Context(), "large", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	obj, err := s.Open(t.Context(), "large")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("read %d bytes differing from the %d put", len(got), len(data))
	}
	// A multipart object's ETag is "<md5 of part md5s>-<parts>".
	if etag := obj.Info().ETag; !bytes.HasSuffix([]byte(etag), []byte("-3")) {
		t.Errorf("ETag %q is not that of a 3-part upload", etag)
	}

	err = s.PutIfAbsent(t.Context(), "large", bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, storage.ErrExists) {
		t.Errorf("PutIfAbsent over an existing key: err = %v, want ErrExists", err)
	}
	ups, err := s.ListMultiparts(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 0 {
		t.Errorf("failed PutIfAbsent left uploads behind: %+v", ups)
	}
	if err := s.PutIfAbsent(t.Context(), "large2", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Errorf("PutIfAbsent of a new key: %v", err)
	}
}
