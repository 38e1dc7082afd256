package outage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/outage"
)

// tracked is a Tracker on a clock the test moves, logging into a buffer
// and collecting the outages it reports over.
type tracked struct {
	*outage.Tracker
	mu    sync.Mutex // guards now and logs
	now   time.Time
	logs  bytes.Buffer
	ended chan outage.Outage
}

func newTracked(t *testing.T) *tracked {
	tr := &tracked{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), ended: make(chan outage.Outage, 10)}
	log := slog.New(slog.NewTextHandler(lockedWriter{&tr.mu, &tr.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr.Tracker = outage.New(outage.Config{
		Now:    func() time.Time { tr.mu.Lock(); defer tr.mu.Unlock(); return tr.now },
		Logger: log,
		Ended:  func(o outage.Outage) { tr.ended <- o },
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", tr.log())
		}
	})
	return tr
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (tr *tracked) log() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.logs.String()
}

// at moves the clock d on and returns the time.
func (tr *tracked) at(d time.Duration) time.Time {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.now = tr.now.Add(d)
	return tr.now
}

// count returns how many log lines hold s.
func (tr *tracked) count(s string) int { return strings.Count(tr.log(), s) }

// waitEnded returns the next outage reported over, failing after a while.
func (tr *tracked) waitEnded(t *testing.T) outage.Outage {
	t.Helper()
	select {
	case o := <-tr.ended:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("no outage was reported over")
		return outage.Outage{}
	}
}

func (tr *tracked) noneEnded(t *testing.T) {
	t.Helper()
	select {
	case o := <-tr.ended:
		t.Fatalf("an outage was reported over: %+v", o)
	default:
	}
}

var (
	errRefused = fmt.Errorf("s3store: put part 1 of %q: %w (dial tcp 127.0.0.1:9000: connection refused)", "k", storage.ErrUnavailable)
	errFull    = fmt.Errorf("diskstore: put part 1 of %q: %w: write: no space left on device", "k", storage.ErrNoSpace)
)

func TestAnOutageIsLoggedWhenItStartsAndWhenItEndsAndReportedOnce(t *testing.T) {
	tr := newTracked(t)
	start := tr.at(0)
	tr.Observe("put_part", true, start, errRefused)
	for range 20 {
		tr.Observe("stat", false, tr.at(time.Second), errRefused)
	}
	if got := tr.Current(); got != storage.ErrUnavailable {
		t.Fatalf("Current during the outage = %v, want storage.ErrUnavailable", got)
	}
	tr.noneEnded(t)
	tr.Observe("stat", false, tr.at(time.Second), nil)

	if tr.Current() != nil {
		t.Errorf("Current after a success = %v, want nil", tr.Current())
	}
	o := tr.waitEnded(t)
	if o.Fault != storage.ErrUnavailable || o.Failures != 21 || o.End.Sub(o.Start) != 21*time.Second || !o.Start.Equal(start) || o.First != errRefused {
		t.Errorf("reported %+v; want ErrUnavailable from %v for 21s with 21 failures, the first %v", o, start, errRefused)
	}
	if n := tr.count("storage unavailable: "); n != 1 {
		t.Errorf("the start is logged %d times, want once", n)
	}
	if n := tr.count("level=ERROR"); n != 1 {
		t.Errorf("%d error lines for one outage, want 1", n)
	}
	if n := tr.count(`msg="storage available again" after=21s failed_operations=21`); n != 1 {
		t.Errorf("the end is logged %d times with its duration and failures, want once", n)
	}
	if !strings.Contains(o.String(), "storage unavailable from 2026-12-01T09:00:00Z for 21s, 21 operations failed") {
		t.Errorf("the outage reads %q", o.String())
	}
	tr.Observe("stat", false, tr.at(time.Second), nil)
	tr.noneEnded(t)
}

func TestOperationsBegunBeforeAChangeDoNotUndoIt(t *testing.T) {
	tr := newTracked(t)
	before := tr.at(0)
	tr.Observe("put_part", true, tr.at(time.Second), errRefused)
	// A read answered just before the store went away reports after.
	tr.Observe("open", false, before, nil)
	if tr.Current() != storage.ErrUnavailable {
		t.Fatal("a success of an operation begun before the outage ended it")
	}
	tr.Observe("stat", false, tr.at(time.Second), nil)
	tr.waitEnded(t)
	// A failure of an operation begun during the outage reports after it.
	tr.Observe("put_part", true, before, errRefused)
	if tr.Current() != nil {
		t.Error("a failure of an operation begun before the recovery began another outage")
	}
	tr.noneEnded(t)
}

func TestAFullStoreHasSpaceAgainOnlyWhenAPartFits(t *testing.T) {
	tr := newTracked(t)
	tr.Observe("put_part", true, tr.at(0), errFull)
	// Small writes (audit records, upload states) may fit where a part
	// does not; reads say nothing of space.
	tr.Observe("put", false, tr.at(time.Second), nil)
	tr.Observe("open", false, tr.at(time.Second), nil)
	if tr.Current() != storage.ErrNoSpace {
		t.Fatalf("Current = %v after small writes and reads, want storage.ErrNoSpace", tr.Current())
	}
	tr.Observe("ping", true, tr.at(time.Second), nil)
	o := tr.waitEnded(t)
	if o.Fault != storage.ErrNoSpace || o.Failures != 1 || o.End.Sub(o.Start) != 3*time.Second {
		t.Errorf("reported %+v, want ErrNoSpace for 3s with 1 failure", o)
	}
	if tr.count("storage full: ") != 1 || tr.count("storage has space again") != 1 {
		t.Errorf("want one line for the start and one for the end")
	}
	if !strings.HasPrefix(o.String(), "storage full from ") {
		t.Errorf("the outage reads %q", o.String())
	}
}

func TestAStoreThatAnswersFullIsNoLongerUnavailable(t *testing.T) {
	tr := newTracked(t)
	tr.Observe("put_part", true, tr.at(0), errRefused)
	tr.Observe("put_part", true, tr.at(time.Second), errFull)
	if o := tr.waitEnded(t); o.Fault != storage.ErrUnavailable {
		t.Errorf("ended %v, want the unavailability", o.Fault)
	}
	if tr.Current() != storage.ErrNoSpace {
		t.Errorf("Current = %v, want storage.ErrNoSpace", tr.Current())
	}
}

func TestErrorsThatAreNotTheStoresChangeNothing(t *testing.T) {
	for _, err := range []error{
		context.Canceled,
		fmt.Errorf("s3store: put %q: %w", "k", context.DeadlineExceeded),
		storage.ErrInvalidKey,
		errors.New("some other failure"),
	} {
		t.Run(err.Error(), func(t *testing.T) {
			tr := newTracked(t)
			tr.Observe("put_part", true, tr.at(0), err)
			if tr.Current() != nil || tr.log() != "" {
				t.Errorf("Current = %v, log %q; want no outage and nothing logged", tr.Current(), tr.log())
			}
			tr.Observe("put_part", true, tr.at(0), errRefused)
			tr.Observe("put_part", true, tr.at(time.Second), err)
			if tr.Current() != storage.ErrUnavailable {
				t.Error("the error ended an outage")
			}
		})
	}
}

func TestAnAnswerAboutAKeyEndsAnOutage(t *testing.T) {
	tr := newTracked(t)
	tr.Observe("stat", false, tr.at(0), errRefused)
	tr.Observe("stat", false, tr.at(time.Second), fmt.Errorf("s3store: stat: %w", storage.ErrNotFound))
	if tr.Current() != nil {
		t.Error("the store answered \"not found\" and is still taken for unavailable")
	}
	tr.waitEnded(t)
}
