package cases

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/casedrop/casedrop/storage"
)

// Notifications are the events the case system hears about (the webhook).
var notified = map[string]string{
	EventUploadFinished: "file.completed",
	EventUploadRejected: "file.rejected",
	EventFileRemoved:    "file.removed",
	EventFileScanned:    "file.scanned",
	EventFileReleased:   "file.released",
	EventCasePurged:     "case.purged",
}

const outboxPrefix = "outbox/"

// Notification is an event waiting in the outbox for delivery.
type Notification struct {
	ID    string `json:"id"`
	Type  string `json:"type"` // file.completed, file.rejected, file.removed, file.scanned, file.released, case.purged
	Event Event  `json:"event"`
	// Attempts and NextAttempt drive the retries.
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
	// ClaimedBy is the instance delivering it until ClaimedUntil; after
	// that, any instance may claim it (see Claim).
	ClaimedBy    string    `json:"claimed_by,omitempty"`
	ClaimedUntil time.Time `json:"claimed_until"`

	etag string // of the version Outbox read: what Claim replaces
}

// EnableOutbox makes the catalog put every notified event (file.completed,
// file.rejected, file.removed, case.purged) into a durable outbox in the object store as
// it records it, for a deliverer to send. The outbox is in the store, so
// an event waits there across restarts until it is delivered.
func (c *Catalog) EnableOutbox() { c.outbox = true }

// notify queues ev if it is a notified event.
func (c *Catalog) notify(ctx context.Context, ev Event, key string) error {
	typ, ok := notified[ev.Type]
	if !c.outbox || !ok {
		return nil
	}
	id := strings.TrimSuffix(strings.TrimPrefix(key, auditPrefix(ev.Case)), ".json")
	n := Notification{ID: ev.Case + "-" + id, Type: typ, Event: ev, NextAttempt: ev.Time}
	return putJSONIfAbsent(ctx, c.store, outboxPrefix+n.ID+".json", n)
}

// Outbox returns the notifications waiting for delivery, oldest first.
func (c *Catalog) Outbox(ctx context.Context) ([]Notification, error) {
	infos, err := c.store.List(ctx, outboxPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Notification, 0, len(infos))
	for _, info := range infos {
		var n Notification
		seen, err := readJSON(ctx, c.store, info.Key, &n)
		if errors.Is(err, ErrNotFound) {
			continue // delivered meanwhile
		}
		if err != nil {
			return nil, err
		}
		n.etag = seen.ETag
		out = append(out, n)
	}
	return out, nil
}

// Claim makes instance the one deliverer of n, as Outbox read it, for the
// next lease, so that of several instances sharing the outbox one sends it.
// It reports false while any claim on n has not expired (its own too: two
// deliverers given one name must still not both send), or if another
// instance claimed, postponed or delivered n since it was read. A
// claim not released by Delivered or Postpone (its instance died) expires,
// and the notification is sent again: delivery is at least once.
func (c *Catalog) Claim(ctx context.Context, n Notification, instance string, lease time.Duration) (Notification, bool, error) {
	now := c.now()
	if n.ClaimedBy != "" && now.Before(n.ClaimedUntil) {
		return n, false, nil
	}
	claimed := n
	claimed.ClaimedBy, claimed.ClaimedUntil, claimed.etag = instance, now.Add(lease).UTC(), ""
	err := putJSONIfMatch(ctx, c.store, outboxPrefix+n.ID+".json", n.etag, claimed)
	if errors.Is(err, storage.ErrChanged) {
		return n, false, nil
	}
	if err != nil {
		return n, false, err
	}
	return claimed, true, nil
}

// Delivered removes a notification from the outbox.
func (c *Catalog) Delivered(ctx context.Context, id string) error {
	return c.store.Delete(ctx, outboxPrefix+id+".json")
}

// Postpone records a failed attempt and when to try again, and releases
// the claim. If the claim n carries is no longer the stored one (it expired
// and another instance took the notification over, or delivered it),
// Postpone leaves the notification to that instance.
func (c *Catalog) Postpone(ctx context.Context, n Notification) error {
	key := outboxPrefix + n.ID + ".json"
	var stored Notification
	seen, err := readJSON(ctx, c.store, key, &stored)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if stored.ClaimedBy != n.ClaimedBy || !stored.ClaimedUntil.Equal(n.ClaimedUntil) {
		return nil
	}
	n.ClaimedBy, n.ClaimedUntil, n.etag = "", time.Time{}, ""
	err = putJSONIfMatch(ctx, c.store, key, seen.ETag, n)
	if errors.Is(err, storage.ErrChanged) {
		return nil
	}
	return err
}
