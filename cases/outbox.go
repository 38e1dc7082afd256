package cases

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Notifications are the events the case system hears about (the webhook).
var notified = map[string]string{
	EventUploadFinished: "file.completed",
	EventUploadRejected: "file.rejected",
	EventFileRemoved:    "file.removed",
	EventCasePurged:     "case.purged",
}

const outboxPrefix = "outbox/"

// Notification is an event waiting in the outbox for delivery.
type Notification struct {
	ID    string `json:"id"`
	Type  string `json:"type"` // file.completed, file.rejected, file.removed, case.purged
	Event Event  `json:"event"`
	// Attempts and NextAttempt drive the retries.
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
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
		if err := getJSON(ctx, c.store, info.Key, &n); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // delivered meanwhile
			}
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// Delivered removes a notification from the outbox.
func (c *Catalog) Delivered(ctx context.Context, id string) error {
	return c.store.Delete(ctx, outboxPrefix+id+".json")
}

// Postpone records a failed attempt and when to try again.
func (c *Catalog) Postpone(ctx context.Context, n Notification) error {
	return putJSON(ctx, c.store, outboxPrefix+n.ID+".json", n)
}
