package s3store

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/storage"
)

func TestS3ErrorsBecomeTheStoresFaults(t *testing.T) {
	refused := &url.Error{Op: "Put", URL: "http://127.0.0.1:9000/b/k", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	timeout := &url.Error{Op: "Put", URL: "http://s3/b/k", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}}
	lookup := &url.Error{Op: "Get", URL: "https://s3.example/b", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "s3.example", IsNotFound: true}}}
	badCert := &url.Error{Op: "Get", URL: "https://s3.example/b", Err: x509.UnknownAuthorityError{}}
	s3 := func(status int, code string) error { return minio.ErrorResponse{StatusCode: status, Code: code} }
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"connection refused", refused, storage.ErrUnavailable},
		{"connection reset", reset, storage.ErrUnavailable},
		{"timeout", timeout, storage.ErrUnavailable},
		{"name lookup failed", lookup, storage.ErrUnavailable},
		{"certificate refused", badCert, nil},
		{"ServiceUnavailable", s3(http.StatusServiceUnavailable, "ServiceUnavailable"), storage.ErrUnavailable},
		{"SlowDown", s3(http.StatusServiceUnavailable, "SlowDown"), storage.ErrUnavailable},
		{"InternalError", s3(http.StatusInternalServerError, "InternalError"), storage.ErrUnavailable},
		{"XMinioServerNotInitialized", s3(http.StatusServiceUnavailable, "XMinioServerNotInitialized"), storage.ErrUnavailable},
		{"a bare 502", s3(http.StatusBadGateway, ""), storage.ErrUnavailable},
		{"XMinioStorageFull", s3(http.StatusInsufficientStorage, "XMinioStorageFull"), storage.ErrNoSpace},
		{"XMinioAdminBucketQuotaExceeded", s3(http.StatusBadRequest, "XMinioAdminBucketQuotaExceeded"), storage.ErrNoSpace},
		{"QuotaExceeded", s3(http.StatusForbidden, "QuotaExceeded"), storage.ErrNoSpace},
		{"EntityTooLarge", s3(http.StatusBadRequest, "EntityTooLarge"), storage.ErrNoSpace},
		{"NoSuchKey", s3(http.StatusNotFound, "NoSuchKey"), storage.ErrNotFound},
		{"PreconditionFailed", s3(http.StatusPreconditionFailed, "PreconditionFailed"), storage.ErrExists},
		{"AccessDenied", s3(http.StatusForbidden, "AccessDenied"), nil},
		{"NoSuchBucket", s3(http.StatusNotFound, "NoSuchBucket"), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s Store
			err := s.err(t.Context(), "put", "k", c.err)
			for _, e := range []error{storage.ErrUnavailable, storage.ErrNoSpace, storage.ErrNotFound, storage.ErrExists} {
				if got := errors.Is(err, e); got != (e == c.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, e, got)
				}
			}
			if !errors.Is(err, c.err) {
				t.Errorf("%v lost minio-go's error", err)
			}
		})
	}
}

// A client that gives up (its request's context cancelled) makes the
// store's call fail: that is no outage of the store.
func TestAFailureAfterTheCallerGaveUpIsTheCallers(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var s Store
	err := s.err(ctx, "put part 3 of", "k", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)})
	if storage.Fault(err) != nil {
		t.Errorf("%v is taken for a fault of the store", err)
	}
	// An answer about the key is still one.
	if err := s.err(ctx, "delete", "k", minio.ErrorResponse{StatusCode: http.StatusNotFound, Code: "NoSuchKey"}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("NoSuchKey after the caller gave up is %v, want storage.ErrNotFound", err)
	}
}

// A store on a MinIO of the test's own, which it kills and restarts.
func TestAStoppedMinIOIsUnavailableAndPingSaysSoAtOnce(t *testing.T) {
	srv, err := miniotest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	s, err := New(t.Context(), Config{Endpoint: srv.Endpoint, Bucket: srv.NewBucket(t), AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "a", bytes.NewReader([]byte("kept")), 4); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping of a running MinIO: %v", err)
	}

	srv.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	start := time.Now()
	err = s.Ping(ctx)
	took := time.Since(start)
	cancel()
	if !errors.Is(err, storage.ErrUnavailable) || took > 500*time.Millisecond {
		t.Errorf("Ping of a killed MinIO: %v after %v; want storage.ErrUnavailable at once (no retries)", err, took)
	}
	// The data path retries (minio-go backs off for seconds), then says so.
	if _, err := s.Stat(t.Context(), "a"); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Stat on a killed MinIO: %v, want storage.ErrUnavailable", err)
	}
	if err := s.Put(t.Context(), "b", bytes.NewReader([]byte("lost")), 4); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Put on a killed MinIO: %v, want storage.ErrUnavailable", err)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after MinIO restarted: %v", err)
	}
	if info, err := s.Stat(t.Context(), "a"); err != nil || info.Size != 4 {
		t.Errorf("Stat after MinIO restarted: %+v, %v", info, err)
	}
}

// A Ping that MinIO does not answer in time (a hung server) is
// unavailable too, after the caller's deadline and no later.
func TestPingGivesUpAtItsDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // accepts and never answers
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	s := &Store{bucket: "bucket"}
	s.probe, err = minio.NewCore(ln.Addr().String(), &minio.Options{MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Ping(ctx)
	if took := time.Since(start); !errors.Is(err, storage.ErrUnavailable) || took > time.Second {
		t.Errorf("Ping of a server that never answers: %v after %v; want storage.ErrUnavailable after 300ms", err, took)
	}
}

// Ping writes its probe once: a versioned bucket does not fill up with
// versions of it, one per readiness check.
func TestPingStoresItsProbeOnce(t *testing.T) {
	bucket := newBucket(t)
	c, err := miniotest.Shared(t).Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnableVersioning(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	s := open(t, bucket, "")
	for range 3 {
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}
	versions := 0
	for oi := range c.ListObjectsIter(t.Context(), bucket, minio.ListObjectsOptions{Prefix: probeKey, WithVersions: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		versions++
	}
	if versions != 1 {
		t.Errorf("%d versions of %s after three Pings, want 1", versions, probeKey)
	}
}
