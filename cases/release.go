package cases

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// EventFileReleased records an admin's release of a quarantined file.
const EventFileReleased = "file.released"

// Refusals of a release.
var (
	ErrNotQuarantined = errors.New("only a quarantined file can be released")
	ErrReleaseReason  = errors.New("a release needs a reason, for the audit trail")
)

// ReleaseFile serves a quarantined file after all, on an admin's word:
// audited first (file.released, with who released it, why, and what the
// scanner had found), then the file is complete. Its finding stays on it,
// with the release's time and reason beside it.
func (c *Catalog) ReleaseFile(ctx context.Context, caseID, name, reason string, actor Actor) (File, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return File{}, ErrReleaseReason
	}
	f, err := c.File(ctx, caseID, name)
	if err != nil {
		return f, err
	}
	if f.State != FileQuarantined {
		return f, fmt.Errorf("%w: %s is %s", ErrNotQuarantined, f.Name, f.State)
	}
	now := c.now().UTC()
	ev := Event{Time: now, Type: EventFileReleased, Case: caseID, Actor: actor, File: f.Name, Size: f.Size, SHA256: f.SHA256,
		Signature: f.Finding, Detail: reason}
	if err := c.Audit(ctx, ev); err != nil {
		return f, err
	}
	f.State, f.ReleasedAt, f.ReleaseReason = FileComplete, &now, reason
	return f, c.UpdateFile(ctx, caseID, f)
}
