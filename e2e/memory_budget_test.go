package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/testserver"
)

// budgetOverhead is what the process may hold besides the upload buffers
// of its memory budget, as the README states it: the 128 MiB of headroom
// the soft memory limit gives (runtime, TLS and SSH state, catalog reads,
// garbage not yet collected), what each upload waiting for a buffer lets
// its client send ahead (the 2 MiB stream window of each of the 30 HTTP/2
// uploads, the 2 MiB of writes each of the 10 SFTP clients keeps in
// flight), and the 128 KiB each of the 40 is read through.
const budgetOverhead = 128<<20 + 30*2<<20 + 10*2<<20 + 40*128<<10

func TestFortyThrottledUploadsStayWithinTheMemoryBudget(t *testing.T) {
	const (
		budgetMiB = 128
		size      = 24 << 20
		rate      = 8 << 20 // bytes per second per client, like the uploads measured in the field
	)
	srv := testserver.Start(t, testserver.Options{Args: []string{"--memory-budget-mib", fmt.Sprint(budgetMiB)}})
	srv.OpenCase(t, "busy")
	// Ten customers, each with three browser uploads (tus, a connection
	// each) and one SFTP upload.
	type job struct {
		name, want string
		sftp       bool
		cred       testserver.Credential
		seed       uint64
	}
	var jobs []job
	for c := range 10 {
		cred := srv.Credential(t, "busy", "customer")
		for i := range 4 {
			seed := uint64(c*10 + i + 1)
			jobs = append(jobs, job{name: fmt.Sprintf("c%d-%d.bin", c, i), sftp: i == 3, cred: cred, seed: seed, want: patternSHA(size, seed)})
		}
	}
	if _, err := srv.ResetPeakRSS(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for _, j := range jobs {
		wg.Go(func() {
			body := &throttled{r: patternReader(size, j.seed), rate: rate, start: time.Now()}
			if j.sftp {
				c := goSFTP(t, loginOf(srv, j.cred))
				f, err := c.Create(j.name)
				if err != nil {
					t.Errorf("%s: %v", j.name, err)
					return
				}
				if _, err := f.ReadFrom(body); err != nil {
					t.Errorf("%s: %v", j.name, err)
				}
				if err := f.Close(); err != nil {
					t.Errorf("%s: close: %v", j.name, err)
				}
				return
			}
			url := srv.Create(t, j.cred.Token, j.name, size, j.want)
			client := srv.NewClient() // a connection of its own, as a browser
			defer client.CloseIdleConnections()
			if _, status, err := srv.PatchWith(ctx, client, j.cred.Token, url, 0, body, size); err != nil {
				t.Errorf("%s: %d %v", j.name, status, err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	peak, err := srv.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]testserver.File{}
	for _, f := range srv.Files(t, "busy") {
		files[f.Name] = f
	}
	for _, j := range jobs {
		if f := files[j.name]; f.State != "complete" || f.SHA256 != j.want {
			t.Errorf("%s: %s with sha256 %s, want complete with %s", j.name, f.State, f.SHA256, j.want)
		}
	}
	t.Logf("40 uploads of %d MiB (30 tus, 10 SFTP, %.0f MB/s each) in %.1fs: %.0f MB/s in all, peak RSS %d MiB under a %d MiB budget",
		size>>20, rate/1e6, elapsed.Seconds(), float64(len(jobs)*size)/elapsed.Seconds()/1e6, peak>>20, budgetMiB)
	if limit := int64(budgetMiB<<20) + budgetOverhead; peak > limit {
		t.Errorf("peak RSS %d MiB, over the %d MiB budget plus %d MiB overhead", peak>>20, budgetMiB, budgetOverhead>>20)
	}
}

// throttled reads r at no more than rate bytes a second, like a client on
// a slower link.
type throttled struct {
	r     io.Reader
	rate  float64
	start time.Time
	n     int64
}

func (t *throttled) Read(p []byte) (int, error) {
	p = p[:min(len(p), 64<<10)]
	if ahead := time.Duration(float64(t.n)/t.rate*float64(time.Second)) - time.Since(t.start); ahead > 0 {
		time.Sleep(ahead) // pacing the client, not waiting for the server
	}
	n, err := t.r.Read(p)
	t.n += int64(n)
	return n, err
}

// patternReader gives size bytes from a seeded generator, without holding
// them.
func patternReader(size int64, seed uint64) io.Reader {
	return io.LimitReader(&rngReader{r: rand.New(rand.NewPCG(seed, seed))}, size)
}

type rngReader struct{ r *rand.Rand }

func (g *rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(g.r.Uint32())
	}
	return len(p), nil
}

func patternSHA(size int64, seed uint64) string {
	h := sha256.New()
	if _, err := io.Copy(h, patternReader(size, seed)); err != nil {
		panic(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
