package bench

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/miniotest"
)

// contender is one line of a table: one way of moving the same bytes, its
// runs, and what they cost the server that served them.
type contender struct {
	name string
	// metric names its MB/s in the benchmark's metrics; empty: not reported.
	metric string
	// server is the process whose CPU and peak RSS the line reports; nil
	// when there is none besides MinIO (mc cp).
	server *proc
	// tree: the server forks per connection; its children are waited for
	// before its CPU time is read.
	tree bool
	// ref is the contender this one's ratio is to; nil: the table's.
	ref *contender

	secs  []float64
	bytes int64   // moved over all runs
	cpu   float64 // the server's CPU seconds over all runs
	minio float64 // MinIO's CPU seconds over all runs
	peak  int64   // the server's peak RSS over all runs, bytes
}

// measure times do, which moves n bytes, and adds its wall time, the CPU
// seconds of the server and of MinIO (when minio is not nil), and the
// server's peak RSS to c.
func (c *contender) measure(b *testing.B, minio *proc, n int64, do func()) {
	b.Helper()
	var watch *rssWatch
	var cpu0, minio0 float64
	if c.server != nil {
		watch = watchRSS(b, *c.server)
		cpu0 = cpuOf(b, *c.server)
	}
	if minio != nil {
		minio0 = cpuOf(b, *minio)
	}
	start := time.Now()
	do()
	c.secs = append(c.secs, time.Since(start).Seconds())
	c.bytes += n
	if minio != nil {
		c.minio += cpuOf(b, *minio) - minio0
	}
	if c.server == nil {
		return
	}
	c.peak = max(c.peak, watch.peak(b))
	if c.tree {
		if err := c.server.waitChildless(10 * time.Second); err != nil {
			b.Fatal(err)
		}
	}
	c.cpu += cpuOf(b, *c.server) - cpu0
}

func cpuOf(b *testing.B, p proc) float64 {
	b.Helper()
	s, err := p.cpuSeconds()
	if err != nil {
		b.Fatalf("CPU time of pid %d: %v", p.pid, err)
	}
	return s
}

// rate is the MB/s of the median run.
func (c *contender) rate() float64 {
	return float64(c.bytes) / float64(len(c.secs)) / median(c.secs) / 1e6
}

// table prints the contenders under title, each with its ratio to its own
// ref or else to ref, and reports their MB/s as the benchmark's metrics.
func table(b *testing.B, title string, ref *contender, rows ...*contender) {
	width := len("who")
	for _, c := range rows {
		width = max(width, len(c.name))
	}
	fmt.Printf("\n%s\n", title)
	fmt.Printf("  %-*s %9s %7s %10s %11s %9s\n", width, "who", "MB/s", "ratio", "CPU s/GiB", "MinIO s/GiB", "peak RSS")
	perGiB := func(secs float64, c *contender) string {
		if secs == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", secs/(float64(c.bytes)/(1<<30)))
	}
	for _, c := range rows {
		cpu, peak := "-", "-"
		if c.server != nil {
			cpu = perGiB(c.cpu, c)
			peak = fmt.Sprintf("%.0f MiB", float64(c.peak)/(1<<20))
		}
		to := ref
		if c.ref != nil {
			to = c.ref
		}
		ratio := fmt.Sprintf("%.2fx", c.rate()/to.rate())
		if c == to {
			ratio = "ref"
		}
		fmt.Printf("  %-*s %9.1f %7s %10s %11s %9s\n", width, c.name, c.rate(), ratio, cpu, perGiB(c.minio, c), peak)
		if c.metric != "" {
			b.ReportMetric(c.rate(), c.metric)
		}
	}
	var runs []string
	for _, c := range rows {
		runs = append(runs, fmt.Sprintf("%s %.2f", c.name, c.secs))
	}
	fmt.Printf("  all runs (s): %s\n", strings.Join(runs, "; "))
}

// minioProc finds the process of the shared MinIO, a child of this test
// binary, by the address on its command line.
func minioProc(b *testing.B, m *miniotest.Server) *proc {
	b.Helper()
	kids, err := children(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	for _, pid := range kids {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmdline), "\x00"+m.Endpoint+"\x00") {
			return &proc{pid: pid}
		}
	}
	b.Fatalf("no child process serves MinIO at %s", m.Endpoint)
	return nil
}
