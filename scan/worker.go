package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/casedrop/casedrop/cases"
)

// Queue is the part of cases.Catalog the Worker works through: the scans
// waiting in the store, claimed one at a time.
type Queue interface {
	ScanQueue(ctx context.Context) ([]cases.ScanJob, error)
	ClaimScan(ctx context.Context, j cases.ScanJob, instance string, lease time.Duration) (cases.ScanJob, bool, error)
	RenewScan(ctx context.Context, j cases.ScanJob, lease time.Duration) (cases.ScanJob, error)
	PostponeScan(ctx context.Context, j cases.ScanJob) error
	ScanTarget(ctx context.Context, j cases.ScanJob) (cases.File, bool, error)
	DropScan(ctx context.Context, j cases.ScanJob) error
	RecordScan(ctx context.Context, j cases.ScanJob, v cases.ScanVerdict, actor cases.Actor) (cases.File, error)
}

// Metrics is what the Worker counts (metrics.Registry fills it).
type Metrics interface {
	// Scanned counts a verdict: clean, infected or too_large.
	Scanned(result string)
	// ScanFailed counts a scan that gave no verdict (it is retried).
	ScanFailed()
}

// Config configures a Worker.
type Config struct {
	Scanner Scanner
	Queue   Queue
	// Open opens the stored bytes of a file waiting for its scan
	// (upload.Ingest.OpenScan).
	Open   func(ctx context.Context, caseID string, f cases.File) (io.ReadCloser, error)
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics, if not nil, counts verdicts and failures.
	Metrics Metrics
	// Instance names this process in its claims on scans; every instance
	// sharing the store needs its own name.
	Instance string
	// ScanTimeout bounds one scan (default 10 minutes).
	ScanTimeout time.Duration
	// ClaimLease keeps other instances from scanning a file this one
	// scans (default 2 minutes). The claim is renewed every third of it
	// while the scan runs, so it is also how long a crashed instance's
	// scan holds its file.
	ClaimLease time.Duration
	// RenewTicks, if not nil, says when to renew a claim instead of a
	// ticker at a third of ClaimLease (tests renew when they choose).
	RenewTicks <-chan time.Time
	// MaxBackoff caps the wait between attempts of a scan (default 1 minute).
	MaxBackoff time.Duration
}

// Worker scans the files waiting in the queue.
type Worker struct {
	cfg     Config
	wake    chan struct{}
	waiting atomic.Int64
	// oldest is when the longest-waiting scan was queued (Unix
	// nanoseconds; 0 when none waits), at the last look.
	oldest atomic.Int64
}

// NewWorker returns a Worker.
func NewWorker(cfg Config) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ScanTimeout <= 0 {
		cfg.ScanTimeout = 10 * time.Minute
	}
	if cfg.ClaimLease <= 0 {
		cfg.ClaimLease = 2 * time.Minute
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	return &Worker{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Wake makes Run look at the queue now rather than at its next interval:
// a file was just queued for its scan. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default: // a look is due already
	}
}

// Waiting is how many scans waited in the queue at the last look, the ones
// this instance was about to do included.
func (w *Worker) Waiting() int { return int(w.waiting.Load()) }

// Backlog is how many scans waited at the last look at the queue and when
// the longest-waiting of them was queued (zero when none waited).
func (w *Worker) Backlog() (int, time.Time) {
	n, oldest := w.Waiting(), w.oldest.Load()
	if n == 0 || oldest == 0 {
		return n, time.Time{}
	}
	return n, time.Unix(0, oldest).UTC()
}

// Run scans until ctx ends, looking at the queue every interval and
// when woken (Wake).
func (w *Worker) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := w.ScanDue(ctx); err != nil && ctx.Err() == nil {
			w.cfg.Logger.WarnContext(ctx, "scan: reading the queue failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// actor is who records verdicts in the audit trail.
func (w *Worker) actor() cases.Actor {
	return cases.Actor{Door: "scanner", Username: w.cfg.Instance}
}

// ScanDue scans every queued file whose time has come, claiming each
// first, so that of several instances one scans it. A scan without a
// verdict is postponed with exponential backoff; it is never dropped, and
// the file stays scanning.
func (w *Worker) ScanDue(ctx context.Context) error {
	jobs, err := w.cfg.Queue.ScanQueue(ctx)
	if err != nil {
		return err
	}
	w.waiting.Store(int64(len(jobs)))
	var oldest int64
	for _, j := range jobs {
		if q := j.QueuedAt.UnixNano(); oldest == 0 || q < oldest {
			oldest = q
		}
	}
	w.oldest.Store(oldest)
	for _, j := range jobs {
		if j.NextAttempt.After(w.cfg.Now()) {
			continue
		}
		j, mine, err := w.cfg.Queue.ClaimScan(ctx, j, w.cfg.Instance, w.cfg.ClaimLease)
		if err != nil {
			return err
		}
		if !mine {
			continue // another instance scans it
		}
		j, err = w.scan(ctx, j)
		if errors.Is(err, cases.ErrClaimLost) {
			w.cfg.Logger.InfoContext(ctx, "scan stopped: another instance took it over", "case", j.Case, "file", j.File)
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // shutting down: the claim expires
			}
			if err := w.postpone(ctx, j, err); err != nil {
				return err
			}
			continue
		}
		w.waiting.Add(-1)
	}
	return nil
}

// scan scans the file of j and records the verdict, renewing its claim on
// j meanwhile; it returns j under its last claim. A claim lost to another
// instance stops the scan with cases.ErrClaimLost.
func (w *Worker) scan(ctx context.Context, j cases.ScanJob) (cases.ScanJob, error) {
	f, ok, err := w.cfg.Queue.ScanTarget(ctx, j)
	if err != nil {
		return j, err
	}
	if !ok {
		w.cfg.Logger.InfoContext(ctx, "scan dropped: the file no longer waits for it", "case", j.Case, "file", j.File)
		return j, w.cfg.Queue.DropScan(ctx, j)
	}
	lctx, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	claim := w.keepClaim(lctx, j, lost)
	sctx, cancel := context.WithTimeout(lctx, w.cfg.ScanTimeout)
	defer cancel()
	v, err := w.scanFile(sctx, j.Case, f)
	j = claim()
	if cause := context.Cause(lctx); errors.Is(cause, cases.ErrClaimLost) {
		return j, cause
	}
	if err != nil {
		return j, err
	}
	cv := cases.ScanVerdict{Verdict: string(v.Result), Signature: v.Signature}
	if _, err := w.cfg.Queue.RecordScan(ctx, j, cv, w.actor()); err != nil {
		return j, fmt.Errorf("recording the verdict: %w", err)
	}
	if w.cfg.Metrics != nil {
		w.cfg.Metrics.Scanned(string(v.Result))
	}
	log := w.cfg.Logger.InfoContext
	if v.Result != Clean {
		log = w.cfg.Logger.WarnContext
	}
	log(ctx, "file scanned", "case", j.Case, "file", f.Name, "size", f.Size, "sha256", f.SHA256, "verdict", v.Result, "signature", v.Signature)
	return j, nil
}

// scanFile streams the stored bytes of f to the scanner.
func (w *Worker) scanFile(ctx context.Context, caseID string, f cases.File) (Verdict, error) {
	obj, err := w.cfg.Open(ctx, caseID, f)
	if err != nil {
		return Verdict{}, err
	}
	defer obj.Close()
	return w.cfg.Scanner.Scan(ctx, obj, f.Size)
}

// keepClaim renews the claim on j until ctx ends or the returned function
// is called, which returns j under its latest claim. A renewal refused
// because the job went to another instance calls lost with
// cases.ErrClaimLost; one that fails otherwise is tried again at the next
// tick, while the claim may still hold.
func (w *Worker) keepClaim(ctx context.Context, j cases.ScanJob, lost context.CancelCauseFunc) (stop func() cases.ScanJob) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		ticks := w.cfg.RenewTicks
		if ticks == nil {
			t := time.NewTicker(max(w.cfg.ClaimLease/3, time.Millisecond))
			defer t.Stop()
			ticks = t.C
		}
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-ticks:
			}
			renewed, err := w.cfg.Queue.RenewScan(ctx, j, w.cfg.ClaimLease)
			if errors.Is(err, cases.ErrClaimLost) {
				lost(err)
				return
			}
			if err != nil {
				w.cfg.Logger.WarnContext(ctx, "scan: renewing the claim failed", "case", j.Case, "file", j.File, "err", err)
				continue
			}
			j = renewed
		}
	}()
	return func() cases.ScanJob {
		close(quit)
		<-done
		return j
	}
}

// postpone records a failed attempt on j and when to try again.
func (w *Worker) postpone(ctx context.Context, j cases.ScanJob, cause error) error {
	if w.cfg.Metrics != nil {
		w.cfg.Metrics.ScanFailed()
	}
	j.Attempts++
	j.LastError = cause.Error()
	j.NextAttempt = w.cfg.Now().Add(w.backoff(j.Attempts)).UTC()
	w.cfg.Logger.WarnContext(ctx, "scan failed; the file stays held and is scanned again later", "case", j.Case, "file", j.File,
		"attempts", j.Attempts, "next", j.NextAttempt, "err", cause)
	if err := w.cfg.Queue.PostponeScan(ctx, j); err != nil {
		return errors.Join(cause, err)
	}
	return nil
}

func (w *Worker) backoff(attempts int) time.Duration {
	b := time.Second << min(attempts-1, 20)
	return min(b, w.cfg.MaxBackoff)
}
