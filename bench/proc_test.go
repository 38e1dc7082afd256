package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: 100 on every
// Linux Go runs on (sysconf(_SC_CLK_TCK) would need cgo).
const userHZ = 100

// proc is a server process whose cost the bench reports: CPU seconds and
// peak resident memory. Both count its whole tree, for a server that forks
// per connection (sshd): its children's CPU, which the kernel adds to the
// parent's cutime and cstime once they are reaped, and their memory by
// sampling, as a child's own peak is gone with it.
type proc struct {
	pid int
}

// cpuSeconds returns the CPU time of the process and all its descendants,
// the exited ones included once reaped.
func (p proc) cpuSeconds() (float64, error) {
	return treeCPU(p.pid)
}

func treeCPU(pid int) (float64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	// Fields 14 to 17 of stat(5): utime, stime, cutime, cstime; f[0] is
	// field 3.
	var ticks int64
	for _, s := range f[11:15] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	secs := float64(ticks) / userHZ
	kids, err := children(pid)
	if err != nil {
		return 0, err
	}
	for _, k := range kids {
		s, err := treeCPU(k)
		if err != nil {
			continue // it exited between the listing and the read
		}
		secs += s
	}
	return secs, nil
}

// statFields returns the fields of /proc/PID/stat after the command name,
// which is in parentheses and may hold spaces: f[0] is field 3, the state.
func statFields(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// children returns the pids of the process's children, over all its
// threads.
func children(pid int) ([]int, error) {
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			continue // the thread ended
		}
		for _, s := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(s); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids, nil
}

// waitChildless waits until the process has no children left, so that
// their CPU time has reached its cutime and cstime.
func (p proc) waitChildless(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		kids, err := children(p.pid)
		if err != nil {
			return err
		}
		if len(kids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d still has children %v after %v", p.pid, kids, timeout)
		}
		<-tick.C
	}
}

// resetPeak sets the process's peak RSS (VmHWM) back to its current RSS.
func (p proc) resetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.pid), []byte("5"), 0)
}

// statusKiB returns the number after key in /proc/PID/status, in KiB.
func statusKiB(pid int, key string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", key, pid)
}

// treeRSS returns the resident memory of the process and its descendants
// in bytes. Pages two of them share count twice: for sshd's few small
// processes that is a small overstatement.
func treeRSS(pid int) int64 {
	kib, err := statusKiB(pid, "VmRSS:")
	if err != nil {
		return 0
	}
	kids, _ := children(pid)
	total := kib << 10
	for _, k := range kids {
		total += treeRSS(k)
	}
	return total
}

// rssWatch follows a process's peak memory over one run: the kernel's own
// peak (VmHWM, exact, reset at the start) of the process, and the largest
// sum over its tree sampled every 20 ms (which is what catches sshd's
// per-connection children).
type rssWatch struct {
	p       proc
	stop    chan struct{}
	done    sync.WaitGroup
	sampled int64
}

func watchRSS(b *testing.B, p proc) *rssWatch {
	b.Helper()
	if err := p.resetPeak(); err != nil {
		b.Fatalf("resetting the peak RSS of pid %d: %v", p.pid, err)
	}
	w := &rssWatch{p: p, stop: make(chan struct{})}
	w.done.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			w.sampled = max(w.sampled, treeRSS(p.pid))
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	})
	return w
}

// peak ends the watch and returns the peak in bytes.
func (w *rssWatch) peak(b *testing.B) int64 {
	b.Helper()
	close(w.stop)
	w.done.Wait()
	hwm, err := statusKiB(w.p.pid, "VmHWM:")
	if err != nil {
		b.Fatalf("peak RSS of pid %d: %v", w.p.pid, err)
	}
	return max(hwm<<10, w.sampled)
}
