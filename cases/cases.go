// Package cases is casedrop's domain core: support cases, their lifecycle,
// the catalog of their files and the credentials issued for them. All state
// lives as small JSON records in the object store (see docs/storage-layout.md);
// there is no second database.
package cases

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/casedrop/casedrop/storage"
)

// Errors callers decide on.
var (
	ErrNotFound     = errors.New("not found")
	ErrInvalidCase  = errors.New("invalid case id: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	ErrCaseClosed   = errors.New("case is closed")
	ErrInvalidName  = errors.New("invalid file name")
	ErrNameConflict = errors.New("a file of that name exists")
)

// State is where a case is in its life.
type State string

// The states of a case.
const (
	StateOpen   State = "open"
	StateClosed State = "closed"
)

// PurgeDelay is how long a closed case's files are kept.
const PurgeDelay = 30 * 24 * time.Hour

// Case is the record of one support case.
type Case struct {
	ID       string     `json:"id"`
	State    State      `json:"state"`
	OpenedAt time.Time  `json:"opened_at"`
	ClosedAt *time.Time `json:"closed_at,omitempty"`
	PurgeAt  *time.Time `json:"purge_at,omitempty"`
	// RevokedBefore: every credential issued before this instant is revoked
	// (set when the case closes, so one write revokes all of them).
	RevokedBefore *time.Time `json:"revoked_before,omitempty"`
	// PurgedAt is when the case's files were last purged.
	PurgedAt *time.Time `json:"purged_at,omitempty"`
}

// closedIndexKey lists a closed case whose purge is pending, so that
// finding the purges due reads one short listing, not every case.
func closedIndexKey(caseID string) string { return "index/closed/" + caseID }

// objectStore is the part of storage.Store the catalog uses.
type objectStore interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error
	PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) error
	Open(ctx context.Context, key string) (storage.Object, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]storage.Info, error)
}

// Catalog keeps cases, their files and their credentials in the object store.
type Catalog struct {
	store  objectStore
	now    func() time.Time
	outbox bool
}

// New returns a catalog over store, telling time with now.
func New(store objectStore, now func() time.Time) *Catalog {
	return &Catalog{store: store, now: now}
}

var caseIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidCaseID reports whether id can name a case.
func ValidCaseID(id string) error {
	if !caseIDPattern.MatchString(id) {
		return ErrInvalidCase
	}
	return nil
}

// Prefix is the object key prefix under which everything of a case is kept.
func Prefix(caseID string) string { return "cases/" + caseID + "/" }

func caseKey(caseID string) string { return Prefix(caseID) + "case.json" }

// Open opens the case, or returns the existing record unchanged (opening is
// idempotent; a closed case stays closed: reopen it with Reopen).
func (c *Catalog) Open(ctx context.Context, id string) (Case, bool, error) {
	if err := ValidCaseID(id); err != nil {
		return Case{}, false, err
	}
	rec := Case{ID: id, State: StateOpen, OpenedAt: c.now().UTC()}
	// The index entry first: a case record never exists unlisted.
	if err := putJSON(ctx, c.store, caseIndexKey(id), struct{}{}); err != nil {
		return Case{}, false, err
	}
	err := putJSONIfAbsent(ctx, c.store, caseKey(id), rec)
	if errors.Is(err, storage.ErrExists) {
		existing, err := c.Get(ctx, id)
		return existing, false, err
	}
	if err != nil {
		return Case{}, false, err
	}
	return rec, true, nil
}

func caseIndexKey(caseID string) string { return "index/cases/" + caseID }

// Cases lists every case, sorted by id.
func (c *Catalog) Cases(ctx context.Context) ([]Case, error) {
	infos, err := c.store.List(ctx, "index/cases/")
	if err != nil {
		return nil, err
	}
	out := make([]Case, 0, len(infos))
	for _, info := range infos {
		rec, err := c.Get(ctx, strings.TrimPrefix(info.Key, "index/cases/"))
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidCase) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// Get returns the case record, or ErrNotFound.
func (c *Catalog) Get(ctx context.Context, id string) (Case, error) {
	if err := ValidCaseID(id); err != nil {
		return Case{}, err
	}
	var rec Case
	if err := getJSON(ctx, c.store, caseKey(id), &rec); err != nil {
		return Case{}, err
	}
	return rec, nil
}

// Close closes an open case: every credential issued so far is revoked at
// once and the purge is scheduled PurgeDelay later. Closing a closed case
// changes nothing.
func (c *Catalog) Close(ctx context.Context, id string) (Case, error) {
	rec, err := c.Get(ctx, id)
	if err != nil || rec.State == StateClosed {
		return rec, err
	}
	now := c.now().UTC()
	purge := now.Add(PurgeDelay)
	rec.State, rec.ClosedAt, rec.PurgeAt, rec.RevokedBefore = StateClosed, &now, &purge, &now
	if err := putJSON(ctx, c.store, caseKey(id), rec); err != nil {
		return rec, err
	}
	if err := putJSON(ctx, c.store, closedIndexKey(id), struct{}{}); err != nil {
		return rec, err
	}
	// RevokedBefore already refuses every credential recorded before now;
	// marking each one too makes the record say so.
	creds, err := c.credentialRecords(ctx, Prefix(id)+"credentials/")
	if err != nil {
		return rec, err
	}
	for _, cred := range creds {
		if cred.RevokedAt == nil {
			cred.RevokedAt = &now
			if err := putJSON(ctx, c.store, credentialKey(id, cred.ID), cred); err != nil {
				return rec, err
			}
		}
	}
	return rec, nil
}

// Reopen reopens a closed case and cancels its purge. Credentials revoked at
// close stay revoked; issue new ones.
func (c *Catalog) Reopen(ctx context.Context, id string) (Case, error) {
	rec, err := c.Get(ctx, id)
	if err != nil || rec.State == StateOpen {
		return rec, err
	}
	rec.State, rec.ClosedAt, rec.PurgeAt = StateOpen, nil, nil
	if err := putJSON(ctx, c.store, caseKey(id), rec); err != nil {
		return rec, err
	}
	return rec, c.store.Delete(ctx, closedIndexKey(id))
}

// RequireOpen returns the case if it is open, ErrCaseClosed if it is closed.
func (c *Catalog) RequireOpen(ctx context.Context, id string) (Case, error) {
	rec, err := c.Get(ctx, id)
	if err != nil {
		return rec, err
	}
	if rec.State != StateOpen {
		return rec, ErrCaseClosed
	}
	return rec, nil
}

// getJSON reads the record under key. A record another instance replaces
// meanwhile reads as the version opened (the storage contract).
func getJSON(ctx context.Context, s objectStore, key string, v any) error {
	_, err := readJSON(ctx, s, key, v)
	return err
}

// readJSON is getJSON that also tells what it read: its ETag is what a
// conditional replace of that version names (putJSONIfMatch).
func readJSON(ctx context.Context, s objectStore, key string, v any) (storage.Info, error) {
	obj, err := s.Open(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Info{}, ErrNotFound
	}
	if err != nil {
		return storage.Info{}, err
	}
	defer obj.Close()
	// Records are small; a cap keeps a corrupt or hostile object from
	// exhausting memory.
	data, err := io.ReadAll(io.LimitReader(obj, 1<<20))
	if err != nil {
		return storage.Info{}, fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return storage.Info{}, fmt.Errorf("decode %s: %w", key, err)
	}
	return obj.Info(), nil
}

func putJSON(ctx context.Context, s objectStore, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
}

func putJSONIfAbsent(ctx context.Context, s objectStore, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.PutIfAbsent(ctx, key, bytes.NewReader(data), int64(len(data)))
}

func putJSONIfMatch(ctx context.Context, s objectStore, key, etag string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.PutIfMatch(ctx, key, etag, bytes.NewReader(data), int64(len(data)))
}
