package bench

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDownload1GiB downloads a 1 GiB file stored in MinIO through
// casedrop (curl, HTTPS, HTTP/1.1 and HTTP/2) and, interleaved in the same
// run, the same file with `mc cp` straight out of the same MinIO; each
// writes to a local file. It prints the median MB/s of each, their ratio
// and casedrop's peak RSS; then it streams the archive.zip of a 2 GiB case
// (the file and a second one) and prints its MB/s and the peak RSS while
// streaming. BENCH_ROUNDS sets the number of rounds (default 3).
func BenchmarkDownload1GiB(b *testing.B) {
	const size = 1 << 30
	rg := newRig(b)
	cd, refBucket, mcEnv, rounds := rg.cd, rg.refBucket, rg.mcEnv, rg.rounds
	cd.OpenCase(b, "bench")
	token := cd.Credential(b, "bench", "staff").Token
	file := randomFile(b, size)
	cacert := filepath.Join(cd.DataDir, "tls.crt")
	upload := func(name string) {
		u := cd.Create(b, token, name, size, "")
		timed(b, nil, "curl", "-sS", "--fail", "--cacert", cacert, "-X", "PATCH", "-H", "Authorization: Bearer "+token,
			"-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0", "-H", "Content-Type: application/offset+octet-stream",
			"-T", file, "-o", "/dev/null", u)
	}
	upload("core.1")
	upload("core.2")
	timed(b, mcEnv, mcBin(b), "cp", "--quiet", file, "bench/"+refBucket+"/core.1")
	// A fresh process: the peak RSS is the downloads', not the uploads'
	// (whose part buffers stay for reuse).
	if err := cd.Stop(); err != nil {
		b.Fatal(err)
	}
	cd.Restart(b)
	out := filepath.Join(b.TempDir(), "out")
	get := func(path string, proto string) float64 {
		defer os.Remove(out)
		return timed(b, nil, "curl", "-sS", "--fail", proto, "--cacert", cacert, "-H", "Authorization: Bearer "+token,
			"-o", out, cd.URL+path)
	}

	var mc, h1, h2 []float64
	b.ResetTimer()
	for range rounds {
		mc = append(mc, timed(b, mcEnv, mcBin(b), "cp", "--quiet", "bench/"+refBucket+"/core.1", out))
		os.Remove(out)
		h1 = append(h1, get("/api/v1/cases/bench/files/core.1", "--http1.1"))
		h2 = append(h2, get("/api/v1/cases/bench/files/core.1", "--http2"))
	}
	b.StopTimer()
	rss, err := cd.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	mbps := func(bytes int64, secs float64) float64 { return float64(bytes) / secs / 1e6 }
	mcRate, h1Rate, h2Rate := mbps(size, median(mc)), mbps(size, median(h1)), mbps(size, median(h2))
	fmt.Printf("\n1 GiB download out of MinIO on 127.0.0.1 into a local file, median of %d interleaved rounds\n", rounds)
	fmt.Printf("  %-38s %8.1f MB/s\n", "mc cp (reference)", mcRate)
	fmt.Printf("  %-38s %8.1f MB/s  %.2fx mc cp\n", "casedrop GET, HTTPS HTTP/1.1 (curl)", h1Rate, h1Rate/mcRate)
	fmt.Printf("  %-38s %8.1f MB/s  %.2fx mc cp\n", "casedrop GET, HTTPS HTTP/2 (curl)", h2Rate, h2Rate/mcRate)
	fmt.Printf("  casedrop peak RSS over the downloads: %.1f MiB\n", float64(rss)/(1<<20))
	fmt.Printf("  all runs (s): mc %v  h1 %v  h2 %v\n", mc, h1, h2)
	b.ReportMetric(mcRate, "mc-MB/s")
	b.ReportMetric(h1Rate, "h1-MB/s")
	b.ReportMetric(h2Rate, "h2-MB/s")
	b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")

	// The archive of the 2 GiB case.
	before, err := cd.ResetPeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	var zipSecs []float64
	var zipSize int64
	for range rounds {
		zipSecs = append(zipSecs, timed(b, nil, "curl", "-sS", "--fail", "--http2", "--cacert", cacert,
			"-H", "Authorization: Bearer "+token, "-o", out, cd.URL+"/api/v1/cases/"+url.PathEscape("bench")+"/archive.zip"))
		st, err := os.Stat(out)
		if err != nil {
			b.Fatal(err)
		}
		zipSize = st.Size()
		os.Remove(out)
	}
	zipRSS, err := cd.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	zipRate := mbps(zipSize, median(zipSecs))
	fmt.Printf("archive.zip of a 2 GiB case (%d bytes), HTTPS HTTP/2 (curl), median of %d\n", zipSize, rounds)
	fmt.Printf("  %-38s %8.1f MB/s  %.2fx mc cp of one file\n", "casedrop archive.zip", zipRate, zipRate/mcRate)
	fmt.Printf("  casedrop RSS %.1f MiB before, peak %.1f MiB while streaming\n\n", float64(before)/(1<<20), float64(zipRSS)/(1<<20))
	b.ReportMetric(zipRate, "zip-MB/s")
	b.ReportMetric(float64(zipRSS)/(1<<20), "zip-peak-RSS-MiB")
}
