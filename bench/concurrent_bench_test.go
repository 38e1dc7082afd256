package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testserver"
)

// BenchmarkConcurrentUploads uploads 10, 50 and 100 files of 32 MiB at once
// through casedrop's tus endpoint into MinIO, each on an HTTPS HTTP/2
// connection of its own (as that many browsers would), and, in the same
// run, the same files with one `mc cp --recursive` into the same MinIO. It
// prints the total MB/s of each and casedrop's peak RSS at each count. With
// BENCH_BASELINE_BIN naming another build of casedrop (an earlier commit),
// that build runs the same uploads too, side by side (BENCH_CASEDROP_BIN
// replaces this module's build, to compare builds).
func BenchmarkConcurrentUploads(b *testing.B) {
	const size = 32 << 20
	minio := miniotest.Shared(b)
	file := randomFile(b, size)
	builds := []struct{ name, bin string }{{"casedrop", os.Getenv("BENCH_CASEDROP_BIN")}}
	if bin := os.Getenv("BENCH_BASELINE_BIN"); bin != "" {
		builds = append(builds, struct{ name, bin string }{"baseline", bin})
	}
	mcEnv := append(os.Environ(), "MC_CONFIG_DIR="+b.TempDir(),
		fmt.Sprintf("MC_HOST_bench=http://%s:%s@%s", minio.AccessKey, minio.SecretKey, minio.Endpoint))
	refBucket := minio.NewBucket(b)

	fmt.Printf("\nconcurrent uploads of 32 MiB into MinIO on 127.0.0.1 (tus over HTTPS HTTP/2, a connection each)\n")
	fmt.Printf("  %-10s %5s %12s %14s\n", "who", "files", "total MB/s", "peak RSS MiB")
	b.ResetTimer()
	for _, n := range []int{10, 50, 100} {
		dir := b.TempDir()
		for i := range n {
			if err := os.Link(file, filepath.Join(dir, fmt.Sprintf("f%03d.bin", i))); err != nil {
				b.Fatal(err)
			}
		}
		secs := timed(b, mcEnv, mcBin(b), "cp", "--quiet", "--recursive", dir+"/", fmt.Sprintf("bench/%s/n%d/", refBucket, n))
		fmt.Printf("  %-10s %5d %12.1f %14s\n", "mc cp", n, float64(n*size)/secs/1e6, "")
		for _, build := range builds {
			rate, rss := concurrentTus(b, minio, build.bin, file, n, size)
			fmt.Printf("  %-10s %5d %12.1f %14.1f\n", build.name, n, rate, float64(rss)/(1<<20))
		}
	}
	fmt.Println()
}

// concurrentTus starts a fresh server (of bin, or this module's), sends n
// uploads of file at once, and returns the total MB/s and the peak RSS.
func concurrentTus(b *testing.B, minio *miniotest.Server, bin, file string, n int, size int64) (float64, int64) {
	cd := testserver.Start(b, testserver.Options{S3: minio, Bucket: minio.NewBucket(b), Binary: bin})
	defer cd.Stop()
	cd.OpenCase(b, "bench")
	// Eight uploads per credential at most: a customer per eight files.
	var tokens []string
	for range (n + 7) / 8 {
		tokens = append(tokens, cd.Credential(b, "bench", "customer").Token)
	}
	urls := make([]string, n)
	for i := range n {
		urls[i] = cd.Create(b, tokens[i/8], fmt.Sprintf("f%03d.bin", i), size, "")
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			f, err := os.Open(file)
			if err != nil {
				b.Error(err)
				return
			}
			defer f.Close()
			client := cd.NewClient()
			defer client.CloseIdleConnections()
			if _, status, err := cd.PatchWith(context.Background(), client, tokens[i/8], urls[i], 0, f, size); err != nil {
				b.Errorf("upload %d: %d %v", i, status, err)
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	rss, err := cd.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	return float64(int64(n)*size) / secs / 1e6, rss
}
