package cases

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/casedrop/casedrop/auth"
)

// Audit event types.
const (
	EventCaseOpened         = "case.opened"
	EventCaseClosed         = "case.closed"
	EventCaseReopened       = "case.reopened"
	EventCasePurged         = "case.purged"
	EventCredentialIssued   = "credential.issued"
	EventCredentialRevoked  = "credential.revoked"
	EventLinkIssued         = "link.issued"
	EventLinkRedeemed       = "link.redeemed"
	EventLoginFailed        = "login.failed"
	EventUploadStarted      = "upload.started"
	EventUploadFinished     = "upload.finished"
	EventUploadRejected     = "upload.rejected"
	EventUploadTerminated   = "upload.terminated"
	EventUploadReopened     = "upload.reopened"
	EventFileRemoved        = "file.removed"
	EventFileRenamed        = "file.renamed"
	EventFileDownloaded     = "file.downloaded"
	EventFilesListed        = "files.listed"
	EventArchiveDownloaded  = "archive.downloaded"
	EventManifestDownloaded = "manifest.downloaded"
	// The store's outages, in the server-wide trail, recorded once over.
	EventStorageUnavailable = "storage.unavailable"
	EventStorageFull        = "storage.full"
)

// Actor is who did something, as the door that let them in saw them.
type Actor struct {
	CredentialID string    `json:"credential_id,omitempty"`
	Role         auth.Role `json:"role,omitempty"` // customer, staff or admin
	Username     string    `json:"username,omitempty"`
	Door         string    `json:"door,omitempty"` // tus, sftp, api, cli
	Remote       string    `json:"remote,omitempty"`
}

// ActorOf is the holder of a credential with claims, come in through door
// (tus, sftp, api) from remote.
func ActorOf(claims auth.Claims, door, remote string) Actor {
	return Actor{CredentialID: claims.CredentialID, Role: claims.Role, Username: claims.Username, Door: door, Remote: remote}
}

// AdminActor is the admin token's holder, come in through door from remote
// ("" for the CLI working on the data directly).
func AdminActor(door, remote string) Actor {
	return Actor{Role: auth.RoleAdmin, Door: door, Remote: remote}
}

// Event is one record of the audit trail. It never holds a secret.
type Event struct {
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Case   string    `json:"case,omitempty"`
	Actor            // who
	File   string    `json:"file,omitempty"`
	Size   int64     `json:"size,omitempty"`
	SHA256 string    `json:"sha256,omitempty"`
	Detail string    `json:"detail,omitempty"`
	// Verdict and Signature are a scanner's (file.scanned).
	Verdict   string `json:"verdict,omitempty"`
	Signature string `json:"signature,omitempty"`
	// Files lists what a purge removed.
	Files []PurgedFile `json:"files,omitempty"`
}

// PurgedFile is a file as it was when its case was purged.
type PurgedFile struct {
	Name   string    `json:"name"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256,omitempty"`
	State  FileState `json:"state"`
}

// noCase is the server-wide trail: events that belong to no case, such as
// refused logins. A refused login is never filed under the case its request
// named: that would let anyone write into any case's trail, even one that
// does not exist. "_" is no valid case id, so no case can share it.
const noCase = "_"

// auditPrefix keeps the trail outside cases/{case}/, so that it outlives
// the purge of the case's files.
func auditPrefix(caseID string) string {
	if caseID == "" {
		caseID = noCase
	}
	return "audit/" + caseID + "/"
}

// auditKey sorts by time: keys of one case list in the order of events.
func auditKey(ev Event) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return auditPrefix(ev.Case) + ev.Time.UTC().Format("20060102T150405.000000000Z") + "-" + ev.Type + "-" + hex.EncodeToString(b) + ".json"
}

// Audit appends ev to the trail (Time defaults to now). The trail lives in
// the object store, so every instance writes to and reads the same one.
// A failure to record is returned; callers log it and carry on, as an
// audit outage must not stop a customer's upload.
func (c *Catalog) Audit(ctx context.Context, ev Event) error {
	if ev.Time.IsZero() {
		ev.Time = c.now()
	}
	ev.Time = ev.Time.UTC()
	key := auditKey(ev)
	if err := putJSON(ctx, c.store, key, ev); err != nil {
		return err
	}
	return c.notify(ctx, ev, key)
}

// AuditFilter selects events of a trail; zero fields select everything.
type AuditFilter struct {
	Since, Until time.Time
	Types        []string // event types, or prefixes ending in "." (e.g. "upload.")
	CredentialID string
	File         string
	Limit        int
}

func (f AuditFilter) match(ev Event) bool {
	if !f.Since.IsZero() && ev.Time.Before(f.Since) || !f.Until.IsZero() && !ev.Time.Before(f.Until) {
		return false
	}
	if f.CredentialID != "" && ev.CredentialID != f.CredentialID || f.File != "" && ev.File != f.File {
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if ev.Type == t || strings.HasSuffix(t, ".") && strings.HasPrefix(ev.Type, t) {
			return true
		}
	}
	return false
}

// maxDetail bounds the text CleanDetail keeps.
const maxDetail = 300

// CleanDetail makes text that a client chose (a request path, a user name)
// fit for an event's Detail: control characters and bidirectional
// overrides become '?', and it is cut to a few hundred bytes.
func CleanDetail(text string) string {
	cut := len(text) > maxDetail
	if cut {
		text = strings.ToValidUTF8(text[:maxDetail], "")
	}
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return '?'
		}
		return r
	}, text)
	if cut {
		text += "…"
	}
	return text
}

// AuditTrail returns the events of the case that match f, oldest first;
// the empty caseID reads the server-wide trail (refused logins).
func (c *Catalog) AuditTrail(ctx context.Context, caseID string, f AuditFilter) ([]Event, error) {
	infos, err := c.store.List(ctx, auditPrefix(caseID))
	if err != nil {
		return nil, err
	}
	events := make([]Event, len(infos))
	found := make([]bool, len(infos))
	// Records are small and many: read them a few at a time.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, 16)
	)
	for i, info := range infos {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := getJSON(ctx, c.store, info.Key, &events[i])
			switch {
			case err == nil:
				found[i] = true
			case !errors.Is(err, ErrNotFound):
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	out := events[:0]
	for i, ev := range events {
		if found[i] && f.match(ev) {
			out = append(out, ev)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out, nil
}

// PruneAudit removes the audit events recorded before cutoff, in every
// case (the trail is kept past a case's purge for as long as the operator
// sets, then goes). Times come from the keys, so no record is read.
func (c *Catalog) PruneAudit(ctx context.Context, cutoff time.Time) (int, error) {
	infos, err := c.store.List(ctx, "audit/")
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, info := range infos {
		t, ok := auditKeyTime(info.Key)
		if !ok {
			// A purge record's key names its closure, not its time: the
			// few of them are read.
			var ev Event
			if getJSON(ctx, c.store, info.Key, &ev) != nil {
				continue
			}
			t = ev.Time
		}
		if !t.Before(cutoff) {
			continue
		}
		if err := c.store.Delete(ctx, info.Key); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

// auditKeyTime reads an event's time out of its key; a purge record's key
// has none.
func auditKeyTime(key string) (time.Time, bool) {
	name := key[strings.LastIndexByte(key, '/')+1:]
	const layout = "20060102T150405.000000000Z"
	if len(name) < len(layout) {
		return time.Time{}, false
	}
	t, err := time.Parse(layout, name[:len(layout)])
	return t, err == nil
}

// RecordRefusal records a refused login in the server-wide trail
// (auth.RefusalTrail), never under the case its request named.
func (c *Catalog) RecordRefusal(ctx context.Context, r auth.Refusal) error {
	return c.Audit(ctx, Event{Type: EventLoginFailed, Detail: r.Detail,
		Actor: Actor{Username: CleanDetail(r.User), Door: r.Door, Remote: r.Remote.String()}})
}
