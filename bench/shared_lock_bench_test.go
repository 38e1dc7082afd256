package bench

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/testserver"
)

// BenchmarkSharedLock measures what --shared-lock (upload locks in the
// store, conditional state saves with a read-back) costs: one casedrop
// with it and one without on the same MinIO, interleaved in the same run.
// It prints the median MB/s of a 1 GiB tus upload (curl, HTTP/1.1) and the
// uploads per second of 100 files of 1 MiB, one after another (create and
// one PATCH each), for both, with the peak RSS of each.
func BenchmarkSharedLock(b *testing.B) {
	const big, small, smallCount = 1 << 30, 1 << 20, 100
	rg := newRig(b)
	plain := rg.cd
	shared := testserver.Start(b, testserver.Options{S3: rg.minio, Bucket: rg.minio.NewBucket(b),
		Args: []string{"--shared-lock", "--instance", "bench-shared"}})
	servers := []*testserver.Server{plain, shared}
	tokens := make([]string, len(servers))
	for i, srv := range servers {
		srv.OpenCase(b, "bench")
		tokens[i] = srv.Credential(b, "bench", "customer").Token
	}
	file := randomFile(b, big)
	smallData := bytes.Repeat([]byte("casedrop"), small/8)

	bigSecs := make([][]float64, len(servers))
	smallRates := make([][]float64, len(servers))
	b.ResetTimer()
	for round := range rg.rounds {
		for i, srv := range servers {
			url := srv.Create(b, tokens[i], fmt.Sprintf("big-%d", round), big, "")
			bigSecs[i] = append(bigSecs[i], timed(b, nil, "curl", "-sS", "--fail", "--http1.1",
				"--cacert", filepath.Join(srv.DataDir, "tls.crt"),
				"-X", "PATCH", "-H", "Authorization: Bearer "+tokens[i], "-H", "Tus-Resumable: 1.0.0",
				"-H", "Upload-Offset: 0", "-H", "Content-Type: application/offset+octet-stream",
				"-T", file, "-o", "/dev/null", url))
			start := time.Now()
			for n := range smallCount {
				url := srv.Create(b, tokens[i], fmt.Sprintf("small-%d-%d", round, n), small, "")
				if _, _, err := srv.Patch(context.Background(), tokens[i], url, 0, bytes.NewReader(smallData), small); err != nil {
					b.Fatal(err)
				}
			}
			smallRates[i] = append(smallRates[i], smallCount/time.Since(start).Seconds())
		}
	}
	b.StopTimer()
	fmt.Printf("\n--shared-lock against the default, same MinIO, median of %d interleaved rounds\n", rg.rounds)
	fmt.Printf("  %-26s %14s %18s %14s\n", "", "1 GiB (MB/s)", "1 MiB files (/s)", "peak RSS")
	for i, name := range []string{"casedrop (default)", "casedrop --shared-lock"} {
		rss, err := servers[i].PeakRSS()
		if err != nil {
			b.Fatal(err)
		}
		fmt.Printf("  %-26s %14.1f %18.1f %10.1f MiB\n", name, big/median(bigSecs[i])/1e6, median(smallRates[i]), float64(rss)/(1<<20))
	}
	fmt.Printf("  all runs: 1 GiB (s) %v; 1 MiB files (/s) %v\n\n", bigSecs, smallRates)
}
