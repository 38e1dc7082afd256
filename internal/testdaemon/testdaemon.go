// Package testdaemon runs a real daemon for tests: with a configuration
// generated for a free port on 127.0.0.1, started in the foreground,
// waited for until it answers, and stopped when the test ends. The
// scanners' test harnesses (clamdtest, icaptest) are built on it.
package testdaemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/loopback"
)

// Spec says how to run a daemon.
type Spec struct {
	// Name names the daemon in errors ("clamd").
	Name string
	// Args is the command line, the binary first.
	Args []string
	// Configure writes the daemon's configuration for port, before each
	// first start on that port.
	Configure func(port int) error
	// Ready asks the daemon at hostPort whether it serves.
	Ready        func(hostPort string) error
	ReadyTimeout time.Duration
	// Output is the file the daemon's standard output and error are
	// appended to; Log, if not empty, is the log whose last lines explain
	// an early exit (else Output).
	Output, Log string
	// Group runs the daemon in a process group of its own, stopped with
	// SIGTERM (then SIGKILL after StopTimeout), so that its children go
	// with it. Without it, Stop kills the daemon.
	Group       bool
	StopTimeout time.Duration
}

// Daemon is a running daemon.
type Daemon struct {
	// HostPort is 127.0.0.1:port.
	HostPort string

	spec   Spec
	cmd    *exec.Cmd
	exited chan struct{}
}

// ErrExited says that the daemon exited before it was ready.
var ErrExited = errors.New("exited before it was ready")

// Start configures the daemon for a free port, starts it and returns once
// it is ready; the test's end stops it. A probed port may be taken before
// the daemon binds it: a daemon that exits before it is ready gets a new
// port, twice at most.
func Start(t testing.TB, spec Spec) (*Daemon, error) {
	d := &Daemon{spec: spec}
	t.Cleanup(d.Stop)
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		ports, perr := loopback.FreePorts(1)
		if perr != nil {
			return nil, perr
		}
		d.HostPort = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		if err = spec.Configure(ports[0]); err != nil {
			return nil, err
		}
		if err = d.start(); !errors.Is(err, ErrExited) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Restart starts the daemon again on the same port after Stop.
func (d *Daemon) Restart() error { return d.start() }

// Stop ends the daemon and waits for it; harmless when it is not running.
func (d *Daemon) Stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.exited:
		return
	default:
	}
	if !d.spec.Group {
		_ = d.cmd.Process.Kill()
		<-d.exited
		return
	}
	pgid := -d.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(d.spec.StopTimeout):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-d.exited
	}
	// Children that outlived their parent go with the group.
	_ = syscall.Kill(pgid, syscall.SIGKILL)
}

func (d *Daemon) start() error {
	out, err := os.OpenFile(d.spec.Output, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own descriptor
	fmt.Fprintf(out, "=== testdaemon: %s (%s)\n", strings.Join(d.spec.Args, " "), d.HostPort)
	cmd := exec.Command(d.spec.Args[0], d.spec.Args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	// The kernel kills the daemon when the test binary dies, even by a
	// panic or a signal that skips the cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: d.spec.Group, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.spec.Args[0], err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	d.cmd, d.exited = cmd, exited
	return d.waitReady()
}

// waitReady asks Ready until the daemon answers.
func (d *Daemon) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), d.spec.ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = d.spec.Ready(d.HostPort); last == nil {
			return nil
		}
		select {
		case <-d.exited:
			log := d.spec.Log
			if log == "" {
				log = d.spec.Output
			}
			return fmt.Errorf("%s %w; last lines of %s:\n%s", d.spec.Name, ErrExited, log, Tail(log, 20))
		case <-ctx.Done():
			d.Stop()
			return fmt.Errorf("%s not ready within %v: %v", d.spec.Name, d.spec.ReadyTimeout, last)
		case <-tick.C:
		}
	}
}

// Tail returns the last lines of the file at path (nothing if unreadable).
func Tail(path string, lines int) string {
	data, _ := os.ReadFile(path)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
