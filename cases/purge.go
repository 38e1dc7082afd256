package cases

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/casedrop/casedrop/storage"
)

// Errors of the purge.
var (
	ErrPurgeNotDue     = errors.New("case is not due for purge")
	ErrPurgeInProgress = errors.New("another instance is purging this case")
)

// UploadAborter drops a case's unfinished uploads: their multipart uploads
// in the store and their saved states (the upload package implements it).
type UploadAborter interface {
	AbortUploads(ctx context.Context, caseID string) (int, error)
}

// Purger removes the files of closed cases 30 days after their close. It
// is safe to run in several instances on one bucket at once (a claim
// object decides who purges a case) and to kill at any point (the next run
// finishes the work, and the one purge record lists everything removed).
type Purger struct {
	Catalog *Catalog
	Uploads UploadAborter
	// Instance names this process in claims (host name and pid, say).
	Instance string
	// Lease is how long a claim holds without being finished before
	// another instance may take the purge over (default 10 minutes).
	Lease time.Duration
	// AuditRetention, when positive, is how long audit events are kept;
	// each pass of Run drops older ones. Zero keeps the trail forever.
	AuditRetention time.Duration
	Logger         *slog.Logger
	// Sleep pauses between attempts to delete an object: it waits d, or
	// until ctx ends and then returns ctx's error. Nil waits on a timer;
	// tests pass one that does not wait.
	Sleep func(ctx context.Context, d time.Duration) error
	// Metrics, if not nil, is told of each pass of PurgeDue (metrics.Registry
	// fills it).
	Metrics PurgeMetrics
}

// PurgeMetrics is what a Purger counts: each pass, ok or error, and the
// objects it removed.
type PurgeMetrics interface {
	PurgeRun(result string, objects int)
}

// PurgeReport says what a purge removed (or, dry, would remove).
type PurgeReport struct {
	Case     string       `json:"case"`
	DryRun   bool         `json:"dry_run,omitempty"`
	Files    []PurgedFile `json:"files"`
	Objects  int          `json:"objects_removed"`
	Uploads  int          `json:"uploads_aborted"`
	PurgeAt  time.Time    `json:"purge_at"`
	PurgedAt time.Time    `json:"purged_at,omitzero"`
}

// purgeClaim is the object that makes one instance the purger of one
// closure of a case; it also keeps the list of files taken before the
// first deletion, so that a purge resumed after a crash reports them all.
type purgeClaim struct {
	Instance string       `json:"instance"`
	Started  time.Time    `json:"started"`
	Files    []PurgedFile `json:"files"`
	Done     bool         `json:"done"`
}

// A case closed, reopened and closed again is purged once per closure.
func claimKey(rec Case) string {
	return "purges/" + rec.ID + "/" + strconv.FormatInt(rec.ClosedAt.UnixNano(), 10) + ".json"
}

func (p *Purger) log() *slog.Logger {
	if p.Logger == nil {
		return slog.Default()
	}
	return p.Logger
}

// Due lists the closed cases whose purge time has come by asOf.
func (p *Purger) Due(ctx context.Context, asOf time.Time) ([]Case, error) {
	infos, err := p.Catalog.store.List(ctx, "index/closed/")
	if err != nil {
		return nil, err
	}
	var due []Case
	for _, info := range infos {
		rec, err := p.Catalog.Get(ctx, strings.TrimPrefix(info.Key, "index/closed/"))
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidCase) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if isDue(rec, asOf) {
			due = append(due, rec)
		}
	}
	return due, nil
}

func isDue(rec Case, asOf time.Time) bool {
	return rec.State == StateClosed && rec.PurgeAt != nil && !rec.PurgeAt.After(asOf) &&
		(rec.PurgedAt == nil || rec.PurgedAt.Before(*rec.ClosedAt))
}

// PurgeDue purges every case due by asOf. It goes on past a case that
// fails and returns the reports of those purged and the first error.
func (p *Purger) PurgeDue(ctx context.Context, asOf time.Time, dryRun bool) ([]PurgeReport, error) {
	due, err := p.Due(ctx, asOf)
	if err != nil {
		return nil, err
	}
	var (
		reports  []PurgeReport
		firstErr error
		objects  int
	)
	defer func() {
		result := "ok"
		if firstErr != nil {
			result = "error"
		}
		if p.Metrics != nil {
			p.Metrics.PurgeRun(result, objects)
		}
	}()
	for _, rec := range due {
		r, err := p.Purge(ctx, rec.ID, asOf, dryRun)
		switch {
		case err == nil:
			reports = append(reports, r)
			objects += r.Objects
		case errors.Is(err, ErrPurgeInProgress), errors.Is(err, ErrPurgeNotDue):
			// Another instance holds it, or finished it since Due.
			p.log().InfoContext(ctx, "purge skipped", "case", rec.ID, "reason", err)
		default:
			p.log().ErrorContext(ctx, "purge failed; it will be retried", "case", rec.ID, "err", err)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return reports, firstErr
}

// Purge removes the files, unfinished uploads and catalog of one case
// whose purge is due by asOf, then records what it removed in the audit
// trail and on the case. Credentials and the case record stay.
func (p *Purger) Purge(ctx context.Context, caseID string, asOf time.Time, dryRun bool) (PurgeReport, error) {
	rec, err := p.Catalog.Get(ctx, caseID)
	if err != nil {
		return PurgeReport{}, err
	}
	if !isDue(rec, asOf) {
		return PurgeReport{}, fmt.Errorf("%w: %s", ErrPurgeNotDue, caseID)
	}
	report := PurgeReport{Case: caseID, DryRun: dryRun, PurgeAt: *rec.PurgeAt}
	if dryRun {
		files, err := p.Catalog.Files(ctx, caseID)
		report.Files = purgedFiles(files)
		return report, err
	}
	claim, err := p.claim(ctx, rec)
	if err != nil {
		return report, err
	}
	report.Files = claim.Files
	if report.Uploads, err = p.Uploads.AbortUploads(ctx, caseID); err != nil {
		return report, fmt.Errorf("purge %s: abort uploads: %w", caseID, err)
	}
	if report.Objects, err = p.deleteFiles(ctx, caseID); err != nil {
		return report, fmt.Errorf("purge %s: %w", caseID, err)
	}
	now := p.Catalog.now().UTC()
	report.PurgedAt = now
	// One record per closure, whoever finishes: the key is the claim's.
	ev := Event{Time: now, Type: EventCasePurged, Case: caseID, Actor: Actor{Door: "purge", Username: p.Instance},
		Files: claim.Files, Detail: fmt.Sprintf("%d objects removed, %d unfinished uploads aborted", report.Objects, report.Uploads)}
	key := auditPrefix(caseID) + "purge-" + strconv.FormatInt(rec.ClosedAt.UnixNano(), 10) + ".json"
	err = putJSONIfAbsent(ctx, p.Catalog.store, key, ev)
	if err != nil && !errors.Is(err, storage.ErrExists) {
		return report, err
	}
	// The notification's id derives from the record's key: a purge finished
	// twice queues it once.
	if err := p.Catalog.notify(ctx, ev, key); err != nil && !errors.Is(err, storage.ErrExists) {
		return report, err
	}
	rec.PurgedAt = &now
	if err := putJSON(ctx, p.Catalog.store, caseKey(caseID), rec); err != nil {
		return report, err
	}
	claim.Done = true
	if err := putJSON(ctx, p.Catalog.store, claimKey(rec), claim); err != nil {
		return report, err
	}
	p.log().InfoContext(ctx, "case purged", "case", caseID, "files", len(claim.Files), "objects", report.Objects, "uploads_aborted", report.Uploads)
	return report, p.Catalog.store.Delete(ctx, closedIndexKey(caseID))
}

// claim makes this instance the purger of the case's current closure: the
// first to write the claim wins; a claim older than the lease and not done
// belongs to a purger that died, and is taken over.
func (p *Purger) claim(ctx context.Context, rec Case) (purgeClaim, error) {
	files, err := p.Catalog.Files(ctx, rec.ID)
	if err != nil {
		return purgeClaim{}, err
	}
	now := p.Catalog.now().UTC()
	claim := purgeClaim{Instance: p.Instance, Started: now, Files: purgedFiles(files)}
	err = putJSONIfAbsent(ctx, p.Catalog.store, claimKey(rec), claim)
	if err == nil {
		return claim, nil
	}
	if !errors.Is(err, storage.ErrExists) {
		return purgeClaim{}, err
	}
	var held purgeClaim
	seen, err := readJSON(ctx, p.Catalog.store, claimKey(rec), &held)
	if err != nil {
		return purgeClaim{}, err
	}
	if held.Done {
		return purgeClaim{}, fmt.Errorf("%w: %s was purged by %s", ErrPurgeNotDue, rec.ID, held.Instance)
	}
	lease := p.Lease
	if lease <= 0 {
		lease = 10 * time.Minute
	}
	if held.Instance != p.Instance && now.Sub(held.Started) < lease {
		return purgeClaim{}, fmt.Errorf("%w: %s since %s", ErrPurgeInProgress, held.Instance, held.Started.Format(time.RFC3339))
	}
	// Take over with the list the first purger took before deleting, on
	// condition that the claim is still the one read: of instances taking
	// over at once, one wins and the others see the purge in progress.
	held.Instance, held.Started = p.Instance, now
	err = putJSONIfMatch(ctx, p.Catalog.store, claimKey(rec), seen.ETag, held)
	if errors.Is(err, storage.ErrChanged) {
		return purgeClaim{}, fmt.Errorf("%w: %s: another instance took the claim over first", ErrPurgeInProgress, rec.ID)
	}
	if err != nil {
		return purgeClaim{}, err
	}
	return held, nil
}

func purgedFiles(files []File) []PurgedFile {
	out := make([]PurgedFile, 0, len(files))
	for _, f := range files {
		out = append(out, PurgedFile{Name: f.Name, Size: f.Size, SHA256: f.SHA256, State: f.State})
	}
	return out
}

// deleteFiles removes everything of the case but its record and its
// credentials, trying each object a few times; it fails if any is left.
func (p *Purger) deleteFiles(ctx context.Context, caseID string) (int, error) {
	infos, err := p.Catalog.store.List(ctx, Prefix(caseID))
	if err != nil {
		return 0, err
	}
	removed, failed := 0, 0
	var lastErr error
	for _, info := range infos {
		rest := strings.TrimPrefix(info.Key, Prefix(caseID))
		if rest == "case.json" || strings.HasPrefix(rest, "credentials/") {
			continue
		}
		if err := p.deleteWithRetry(ctx, info.Key); err != nil {
			failed, lastErr = failed+1, err
			continue
		}
		removed++
	}
	if failed > 0 {
		return removed, fmt.Errorf("%d objects could not be deleted, last: %w", failed, lastErr)
	}
	return removed, nil
}

// deleteWithRetry deletes key in up to three attempts, pausing 200 ms
// after the first failure and 400 ms after the second.
func (p *Purger) deleteWithRetry(ctx context.Context, key string) error {
	const attempts = 3
	var err error
	for attempt := 1; ; attempt++ {
		if err = p.Catalog.store.Delete(ctx, key); err == nil {
			return nil
		}
		if attempt == attempts {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		if err := p.sleep(ctx, time.Duration(attempt)*200*time.Millisecond); err != nil {
			return err
		}
	}
}

// sleep is p.Sleep, or a timer.
func (p *Purger) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Run purges what is due every interval until ctx ends (the loop of
// `casedrop serve`; several instances may run it on one bucket).
func (p *Purger) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		now := p.Catalog.now()
		if _, err := p.PurgeDue(ctx, now, false); err != nil && ctx.Err() == nil {
			p.log().ErrorContext(ctx, "purge pass failed; next pass retries", "err", err)
		}
		if p.AuditRetention > 0 {
			if n, err := p.Catalog.PruneAudit(ctx, now.Add(-p.AuditRetention)); err != nil && ctx.Err() == nil {
				p.log().ErrorContext(ctx, "pruning the audit trail failed; next pass retries", "err", err)
			} else if n > 0 {
				p.log().InfoContext(ctx, "audit events past their retention removed", "events", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
