package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// progress draws a one-line progress bar on a terminal and nothing
// anywhere else, so that logs and pipes stay clean. It counts the bytes
// written to it.
type progress struct {
	w     io.Writer // nil: quiet
	label string
	done  int64
	total int64
	began time.Time
	drawn time.Time
	from  int64 // done at begin, for the rate
}

// newProgress returns a progress bar on f when f is a terminal, else a
// quiet one.
func newProgress(f *os.File) *progress {
	if f != nil && term.IsTerminal(int(f.Fd())) {
		return &progress{w: f}
	}
	return &progress{}
}

// begin starts a bar for label at done of total bytes.
func (p *progress) begin(label string, done, total int64) {
	p.label, p.done, p.total, p.from = label, done, total, done
	p.began, p.drawn = time.Now(), time.Time{}
	p.draw()
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if p.w != nil && time.Since(p.drawn) >= 200*time.Millisecond {
		p.draw()
	}
	return len(b), nil
}

// end draws the bar at its last value and ends its line.
func (p *progress) end() {
	if p.w == nil {
		return
	}
	p.draw()
	fmt.Fprintln(p.w)
}

func (p *progress) draw() {
	if p.w == nil {
		return
	}
	p.drawn = time.Now()
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	const width = 24
	filled := min(width, int(pct*width/100))
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = ' '
		if i < filled {
			bar[i] = '#'
		}
	}
	rate := ""
	if secs := time.Since(p.began).Seconds(); secs > 0.5 {
		rate = humanBytes(int64(float64(p.done-p.from)/secs)) + "/s"
	}
	label := p.label
	if len(label) > 40 {
		label = "..." + label[len(label)-37:]
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s [%s] %5.1f%% %s / %s %s", label, bar, pct, humanBytes(p.done), humanBytes(p.total), rate)
}

// humanBytes writes n with a binary unit: 1.5 GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
