package e2e

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testserver"
)

// Two instances on one bucket with --shared-lock (the store probed, locks
// and fenced state saves in the store): one tus upload whose requests
// alternate between them ends whole with its digest, each instance seeing
// the other's progress. Mutual exclusion and fencing are the unit tests'
// (upload/storelock_test.go); the load balancer, kills and two writers at
// once through two instances are still to come.
func TestTwoInstancesWithASharedLockTakeTurnsOnOneUpload(t *testing.T) {
	minio := miniotest.Shared(t)
	bucket := minio.NewBucket(t)
	opts := func(name string) testserver.Options {
		return testserver.Options{S3: minio, Bucket: bucket, PartSizeMiB: sftpPartMiB,
			Args: []string{"--shared-lock", "--instance", name}}
	}
	a := testserver.Start(t, opts("a"))
	b := testserver.Start(t, opts("b"))
	a.OpenCase(t, "shared")
	cred := a.Credential(t, "shared", "customer")
	const size = 23*mib + 11
	path, want := patternFile(t, t.TempDir(), "shared.bin", size, 80)
	locA := a.Create(t, cred.Token, "shared.bin", size, want)
	u, err := url.Parse(locA)
	if err != nil {
		t.Fatal(err)
	}
	locB := b.URL + u.Path
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Three requests: A, then B, then A again, each from where the last
	// one's instance says the upload is.
	servers := []*testserver.Server{a, b, a}
	locs := []string{locA, locB, locA}
	var off int64
	for i, srv := range servers {
		end := min(size, off+9*mib)
		if i == len(servers)-1 {
			end = size
		}
		got, _, err := srv.Patch(context.Background(), cred.Token, locs[i], off, strings.NewReader(string(must(readRange(src, off, end)))), end-off)
		if err != nil {
			t.Fatalf("PATCH %d (instance %s) at %d: %v", i+1, map[bool]string{true: "a", false: "b"}[i%2 == 0], off, err)
		}
		off = got
		if i+1 < len(servers) {
			if o := servers[i+1].Head(t, cred.Token, locs[i+1]); o != off {
				t.Fatalf("after PATCH %d the other instance says offset %d, want %d", i+1, o, off)
			}
		}
	}
	checkComplete(t, fileNamed(t, b.Files(t, "shared"), "shared.bin"), size, want)
}

func readRange(f *os.File, from, to int64) ([]byte, error) {
	buf := make([]byte, to-from)
	_, err := f.ReadAt(buf, from)
	return buf, err
}
