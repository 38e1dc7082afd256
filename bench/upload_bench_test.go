// Package bench measures casedrop against a reference in the same run.
// Run with `make bench`; figures are printed, not asserted.
package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/miniotest"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// BenchmarkUpload1GiB uploads a 1 GiB file through casedrop's tus endpoint
// (curl, HTTPS, HTTP/1.1 and HTTP/2) into MinIO and, interleaved in the
// same run, `mc cp` of the same file into the same MinIO; it prints the
// median MB/s of each, their ratio and casedrop's peak RSS. BENCH_ROUNDS
// sets the number of rounds (default 3).
func BenchmarkUpload1GiB(b *testing.B) {
	const size = 1 << 30
	rg := newRig(b)
	cd, refBucket, mcEnv, rounds := rg.cd, rg.refBucket, rg.mcEnv, rg.rounds
	cd.OpenCase(b, "bench")
	cred := cd.Credential(b, "bench", "customer")
	file := randomFile(b, size)

	var mc, h1, h2 []float64
	b.ResetTimer()
	for round := range rounds {
		mc = append(mc, timed(b, mcEnv, mcBin(b), "cp", "--quiet", file, fmt.Sprintf("bench/%s/ref-%d", refBucket, round)))
		for _, proto := range []string{"--http1.1", "--http2"} {
			url := cd.Create(b, cred.Token, fmt.Sprintf("big-%d%s", round, proto), size, "")
			secs := timed(b, nil, "curl", "-sS", "--fail", proto, "--cacert", filepath.Join(cd.DataDir, "tls.crt"),
				"-X", "PATCH", "-H", "Authorization: Bearer "+cred.Token, "-H", "Tus-Resumable: 1.0.0",
				"-H", "Upload-Offset: 0", "-H", "Content-Type: application/offset+octet-stream",
				"-T", file, "-o", "/dev/null", url)
			if proto == "--http1.1" {
				h1 = append(h1, secs)
			} else {
				h2 = append(h2, secs)
			}
		}
	}
	b.StopTimer()
	rss, err := cd.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	mbps := func(secs float64) float64 { return size / secs / 1e6 }
	mcRate, h1Rate, h2Rate := mbps(median(mc)), mbps(median(h1)), mbps(median(h2))
	fmt.Printf("\n1 GiB upload into MinIO on 127.0.0.1, median of %d interleaved rounds\n", rounds)
	fmt.Printf("  %-34s %8.1f MB/s\n", "mc cp (reference)", mcRate)
	fmt.Printf("  %-34s %8.1f MB/s  %.2fx mc cp\n", "casedrop tus, HTTPS HTTP/1.1 (curl)", h1Rate, h1Rate/mcRate)
	fmt.Printf("  %-34s %8.1f MB/s  %.2fx mc cp\n", "casedrop tus, HTTPS HTTP/2 (curl)", h2Rate, h2Rate/mcRate)
	fmt.Printf("  casedrop peak RSS over all uploads: %.1f MiB\n", float64(rss)/(1<<20))
	fmt.Printf("  all runs (s): mc %v  h1 %v  h2 %v\n\n", mc, h1, h2)
	b.ReportMetric(mcRate, "mc-MB/s")
	b.ReportMetric(h1Rate, "h1-MB/s")
	b.ReportMetric(h2Rate, "h2-MB/s")
	b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
}

func mcBin(b *testing.B) string {
	if p, err := exec.LookPath("mc"); err == nil {
		return p
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(string(gopath[:len(gopath)-1]), "bin", "mc")
	if _, err := os.Stat(p); err != nil {
		b.Fatalf("mc not found: run `make test-deps`")
	}
	return p
}

// timed runs a command and returns its wall time in seconds.
func timed(b *testing.B, env []string, name string, args ...string) float64 {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%s: %v\n%s", name, err, out)
	}
	return time.Since(start).Seconds()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// randomFile writes size pseudo-random (incompressible) bytes to a file.
func randomFile(b *testing.B, size int) string {
	path := filepath.Join(b.TempDir(), "big.bin")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	for written := 0; written < size; written += len(buf) {
		for i := 0; i < len(buf); i += 8 {
			v := r.Uint64()
			for j := range 8 {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	return path
}
