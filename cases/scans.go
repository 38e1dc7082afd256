package cases

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/casedrop/casedrop/storage"
)

// The states of a file a scanner checks (see Catalog.QueueScan).
const (
	// FileScanning: every byte is stored and its digest known, and the
	// scanner has not given its verdict yet. Nothing serves it.
	FileScanning FileState = "scanning"
	// FileQuarantined: the scanner found something (File.Finding), or the
	// file is over what the scanner reads (File.Reason). Nothing serves it;
	// staff see it listed with the finding.
	FileQuarantined FileState = "quarantined"
)

// Refusals of a file that is not to be served.
var (
	ErrFileScanning    = errors.New("the file is being checked for malware: it can be downloaded once the check is done")
	ErrFileQuarantined = errors.New("the file is quarantined: the malware check did not pass it")
)

// Servable returns nil for a file whose bytes may be served, and for one
// held back by the scanner the error that says why (ErrFileScanning,
// ErrFileQuarantined). Files still uploading, or rejected, are for the
// caller to refuse as it does.
func (f File) Servable() error {
	switch f.State {
	case FileScanning:
		return fmt.Errorf("%w (%s)", ErrFileScanning, f.Name)
	case FileQuarantined:
		return fmt.Errorf("%w (%s: %s)", ErrFileQuarantined, f.Name, f.finding())
	}
	return nil
}

func (f File) finding() string {
	if f.Finding != "" {
		return "found " + f.Finding
	}
	return f.Reason
}

// EventFileScanned records a scanner's verdict on a file.
const EventFileScanned = "file.scanned"

// The verdicts of a file.scanned event (Event.Verdict).
const (
	VerdictClean    = "clean"
	VerdictInfected = "infected"
	// VerdictTooLarge: over the scanner's size limit, so not scanned
	// whole; quarantined like an infected file.
	VerdictTooLarge = "too_large"
)

// ReasonTooLarge is the Reason of a file quarantined for its size.
const ReasonTooLarge = "over the malware scanner's size limit: it could not be checked"

const scanPrefix = "scans/"

// ScanJob is a scan waiting in the store's queue: the file holding Object,
// with the digest SHA256, in case Case. Several instances share the queue:
// one claims a job for a lease, as with the webhook outbox.
type ScanJob struct {
	ID     string `json:"id"`
	Case   string `json:"case"`
	Object string `json:"object"`
	SHA256 string `json:"sha256"`
	// File is the file's name when it was queued; it may be renamed since.
	File     string    `json:"file"`
	Size     int64     `json:"size"`
	QueuedAt time.Time `json:"queued_at"`
	// Attempts and NextAttempt drive the retries.
	Attempts     int       `json:"attempts"`
	NextAttempt  time.Time `json:"next_attempt"`
	LastError    string    `json:"last_error,omitempty"`
	ClaimedBy    string    `json:"claimed_by,omitempty"`
	ClaimedUntil time.Time `json:"claimed_until"`

	etag string
}

// scanKey names the job of one content of one object: a file continued
// after its scan is queued again under another key, so that the verdict on
// its earlier bytes can never be taken for the new ones.
func scanKey(caseID, object, digest string) string {
	return scanPrefix + caseID + "/" + object + "-" + digest[:min(len(digest), 32)] + ".json"
}

// QueueScan puts the scan of f, a file of caseID whose bytes are all
// stored, into the queue kept in the store. The upload commits f as
// FileScanning only after this, so that no file waits for a scan that
// was never queued.
func (c *Catalog) QueueScan(ctx context.Context, caseID string, f File) error {
	now := c.now().UTC()
	job := ScanJob{Case: caseID, Object: f.Object, SHA256: f.SHA256, File: f.Name, Size: f.Size, QueuedAt: now, NextAttempt: now}
	key := scanKey(caseID, f.Object, f.SHA256)
	job.ID = key[len(scanPrefix) : len(key)-len(".json")]
	return putJSON(ctx, c.store, key, job)
}

// ScanQueue returns the scans waiting, in key order.
func (c *Catalog) ScanQueue(ctx context.Context) ([]ScanJob, error) {
	infos, err := c.store.List(ctx, scanPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]ScanJob, 0, len(infos))
	for _, info := range infos {
		var j ScanJob
		seen, err := readJSON(ctx, c.store, info.Key, &j)
		if errors.Is(err, ErrNotFound) {
			continue // done meanwhile
		}
		if err != nil {
			return nil, err
		}
		j.etag = seen.ETag
		out = append(out, j)
	}
	return out, nil
}

// ClaimScan makes instance the one scanner of j, as ScanQueue read it,
// for the next lease. It reports false while another claim holds, or if j
// changed since it was read. A claim whose instance died expires and the
// file is scanned again.
func (c *Catalog) ClaimScan(ctx context.Context, j ScanJob, instance string, lease time.Duration) (ScanJob, bool, error) {
	now := c.now()
	if j.ClaimedBy != "" && now.Before(j.ClaimedUntil) {
		return j, false, nil
	}
	claimed := j
	claimed.ClaimedBy, claimed.ClaimedUntil, claimed.etag = instance, now.Add(lease).UTC(), ""
	err := putJSONIfMatch(ctx, c.store, scanPrefix+j.ID+".json", j.etag, claimed)
	if errors.Is(err, storage.ErrChanged) || errors.Is(err, storage.ErrNotFound) {
		return j, false, nil
	}
	if err != nil {
		return j, false, err
	}
	return claimed, true, nil
}

// ErrClaimLost says that a claim on a scan ran out and the job went to
// another instance, or left the queue: the scan under it is to be stopped.
var ErrClaimLost = errors.New("the claim on the scan is lost: another instance took the job, or it left the queue")

// RenewScan extends the claim on j, as ClaimScan or an earlier RenewScan
// returned it, to the next lease, with a conditional write, so that a scan
// that outlasts its lease keeps its job. It returns ErrClaimLost when the
// stored job is no longer under that claim.
func (c *Catalog) RenewScan(ctx context.Context, j ScanJob, lease time.Duration) (ScanJob, error) {
	key := scanPrefix + j.ID + ".json"
	var stored ScanJob
	seen, err := readJSON(ctx, c.store, key, &stored)
	if errors.Is(err, ErrNotFound) {
		return j, ErrClaimLost
	}
	if err != nil {
		return j, err
	}
	if stored.ClaimedBy != j.ClaimedBy || !stored.ClaimedUntil.Equal(j.ClaimedUntil) {
		return j, ErrClaimLost
	}
	stored.ClaimedUntil = c.now().Add(lease).UTC()
	err = putJSONIfMatch(ctx, c.store, key, seen.ETag, stored)
	if errors.Is(err, storage.ErrChanged) || errors.Is(err, storage.ErrNotFound) {
		return j, ErrClaimLost
	}
	if err != nil {
		return j, err
	}
	return stored, nil
}

// PostponeScan records a failed attempt on j and when to try again, and
// releases the claim; a claim that expired and went to another instance
// is left to it.
func (c *Catalog) PostponeScan(ctx context.Context, j ScanJob) error {
	key := scanPrefix + j.ID + ".json"
	var stored ScanJob
	seen, err := readJSON(ctx, c.store, key, &stored)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if stored.ClaimedBy != j.ClaimedBy || !stored.ClaimedUntil.Equal(j.ClaimedUntil) {
		return nil
	}
	j.ClaimedBy, j.ClaimedUntil, j.etag = "", time.Time{}, ""
	err = putJSONIfMatch(ctx, c.store, key, seen.ETag, j)
	if errors.Is(err, storage.ErrChanged) {
		return nil
	}
	return err
}

// ScanTarget returns the catalog entry j is the scan of: the file of the
// case holding j.Object with j's digest, still scanning. It reports false
// when there is none any more (purged, removed, continued since): the job
// is then dropped with DropScan.
func (c *Catalog) ScanTarget(ctx context.Context, j ScanJob) (File, bool, error) {
	files, err := c.Files(ctx, j.Case)
	if err != nil {
		return File{}, false, err
	}
	for _, f := range files {
		if f.Object == j.Object {
			return f, f.State == FileScanning && f.SHA256 == j.SHA256, nil
		}
	}
	return File{}, false, nil
}

// DropScan removes j from the queue.
func (c *Catalog) DropScan(ctx context.Context, j ScanJob) error {
	return c.store.Delete(ctx, scanPrefix+j.ID+".json")
}

// ScanVerdict is what a scan of a file concluded: one of the Verdict...
// values, and the signature found in an infected file.
type ScanVerdict struct {
	Verdict   string
	Signature string
}

// RecordScan applies v to the file j scanned, if it still waits for it:
// audited (file.scanned, which the case system hears), then the file
// becomes complete (clean) or quarantined, and j leaves the queue. The
// event comes first: a crash in between scans the file again and the case
// system may hear of it twice (delivery is at least once), but never not
// at all. It returns the file as it now is.
func (c *Catalog) RecordScan(ctx context.Context, j ScanJob, v ScanVerdict, actor Actor) (File, error) {
	f, ok, err := c.ScanTarget(ctx, j)
	if err != nil {
		return f, err
	}
	if !ok {
		return f, c.DropScan(ctx, j)
	}
	now := c.now().UTC()
	ev := Event{Time: now, Type: EventFileScanned, Case: j.Case, Actor: actor, File: f.Name, Size: f.Size, SHA256: f.SHA256,
		Verdict: v.Verdict, Signature: v.Signature}
	switch v.Verdict {
	case VerdictClean:
		f.State = FileComplete
	case VerdictInfected:
		f.State, f.Finding = FileQuarantined, v.Signature
		ev.Detail = "found " + v.Signature
	case VerdictTooLarge:
		f.State, f.Finding, f.Reason = FileQuarantined, v.Signature, ReasonTooLarge
		ev.Detail = ReasonTooLarge
	default:
		return f, fmt.Errorf("unknown scan verdict %q", v.Verdict)
	}
	f.ScannedAt = &now
	if err := c.Audit(ctx, ev); err != nil {
		return f, err
	}
	if err := c.UpdateFile(ctx, j.Case, f); err != nil {
		return f, err
	}
	return f, c.DropScan(ctx, j)
}
