// Package webhook tells the case system what happened to its cases: it
// delivers the catalog's outbox (file.completed, file.rejected, file.removed,
// file.scanned, file.released, case.purged) as HTTP POSTs signed the Standard Webhooks way
// (https://www.standardwebhooks.com/), at least once, retrying with backoff.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/casedrop/casedrop/cases"
)

// The Standard Webhooks headers of a delivery.
const (
	// IDHeader is the notification's id, the same on every retry:
	// receivers dedupe by it.
	IDHeader = "webhook-id"
	// TimestampHeader is the attempt's time in Unix seconds; receivers
	// refuse one too far from their clock, so a recorded delivery cannot
	// be replayed later.
	TimestampHeader = "webhook-timestamp"
	// SignatureHeader is "v1,<base64 HMAC-SHA256>" of id, timestamp and body.
	SignatureHeader = "webhook-signature"
)

// SecretPrefix starts a Standard Webhooks secret: "whsec_" and the
// base64 of the key.
const SecretPrefix = "whsec_"

// MinKeyBytes is the shortest key ParseSecret takes (the Standard Webhooks
// specification asks for 24 to 64 bytes).
const MinKeyBytes = 24

// ErrSecret: a secret not in the whsec_<base64> form, or too short.
var ErrSecret = errors.New("the webhook secret must be whsec_ and the base64 of 24 to 64 random bytes; make one with: echo whsec_$(openssl rand -base64 32)")

// ParseSecret returns the key of a Standard Webhooks secret, the form the
// receivers' libraries take: "whsec_" and the base64 of the key.
func ParseSecret(secret string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w (it does not start with %s)", ErrSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("%w (what follows %s is not base64)", ErrSecret, SecretPrefix)
	}
	if len(key) < MinKeyBytes || len(key) > 64 {
		return nil, fmt.Errorf("%w (it holds %d bytes)", ErrSecret, len(key))
	}
	return key, nil
}

// Sign returns the webhook-signature value of a delivery: "v1," and the
// base64 HMAC-SHA256, keyed with key, of "<id>.<unix seconds>.<body>".
func Sign(key []byte, id string, timestamp time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Outbox is the part of cases.Catalog the deliverer works through.
type Outbox interface {
	Outbox(ctx context.Context) ([]cases.Notification, error)
	Delivered(ctx context.Context, id string) error
	Postpone(ctx context.Context, n cases.Notification) error
	Claim(ctx context.Context, n cases.Notification, instance string, lease time.Duration) (cases.Notification, bool, error)
}

// Config configures a Deliverer.
type Config struct {
	URL string
	// Key is the HMAC key, from ParseSecret.
	Key    []byte
	Outbox Outbox
	Client *http.Client // default: 10 s timeout
	Now    func() time.Time
	Logger *slog.Logger
	// MaxBackoff caps the wait between attempts (default 10 minutes).
	MaxBackoff time.Duration
	// Instance names this process in its claims on notifications; every
	// instance sharing the outbox needs its own name.
	Instance string
	// ClaimLease is how long a claim keeps other instances from sending a
	// notification (default 2 minutes); it must outlast one attempt
	// (Client's timeout). A claim whose instance died expires, and another
	// instance sends the notification again.
	ClaimLease time.Duration
}

// Deliverer sends the outbox to the case system.
type Deliverer struct {
	cfg Config
}

// New returns a Deliverer.
func New(cfg Config) *Deliverer {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Minute
	}
	if cfg.ClaimLease <= 0 {
		cfg.ClaimLease = 2 * time.Minute
	}
	return &Deliverer{cfg: cfg}
}

// Payload is the JSON body of a delivery.
type Payload struct {
	ID    string      `json:"id"` // the same on every retry: receivers dedupe by it
	Type  string      `json:"type"`
	Time  time.Time   `json:"time"`
	Case  string      `json:"case"`
	File  *FileFacts  `json:"file,omitempty"`
	Purge *PurgeFacts `json:"purge,omitempty"`
}

// FileFacts describe the file of a file.* event.
type FileFacts struct {
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"`
	Via        string `json:"via,omitempty"`
	UploadedBy string `json:"uploaded_by,omitempty"`
	// Verdict (clean, infected, too_large) and Signature are the malware
	// scanner's, in file.scanned.
	Verdict   string `json:"verdict,omitempty"`
	Signature string `json:"signature,omitempty"`
	// Reason is an admin's, in file.released (Signature: what the
	// scanner had found).
	Reason string `json:"reason,omitempty"`
}

// PurgeFacts describe what a case.purged event removed.
type PurgeFacts struct {
	Files []cases.PurgedFile `json:"files"`
}

func payload(n cases.Notification) Payload {
	p := Payload{ID: n.ID, Type: n.Type, Time: n.Event.Time, Case: n.Event.Case}
	if n.Type == "case.purged" {
		p.Purge = &PurgeFacts{Files: n.Event.Files}
	} else {
		p.File = &FileFacts{Name: n.Event.File, Size: n.Event.Size, SHA256: n.Event.SHA256, Via: n.Event.Door, UploadedBy: n.Event.Username,
			Verdict: n.Event.Verdict, Signature: n.Event.Signature}
		switch n.Type {
		case "file.scanned", "file.released": // the scanner or an admin: no door, nor an uploader
			p.File.Via, p.File.UploadedBy = "", ""
		}
		if n.Type == "file.released" {
			p.File.Reason = n.Event.Detail
		}
	}
	return p
}

// Run delivers until ctx ends, looking at the outbox every interval.
func (d *Deliverer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := d.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			d.cfg.Logger.WarnContext(ctx, "webhook: reading the outbox failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeliverDue sends every notification whose time has come, oldest first,
// claiming each before sending it, so that of several instances sharing the
// outbox one sends it. A failed delivery is postponed with exponential
// backoff; it is never dropped.
func (d *Deliverer) DeliverDue(ctx context.Context) error {
	pending, err := d.cfg.Outbox.Outbox(ctx)
	if err != nil {
		return err
	}
	now := d.cfg.Now()
	for _, n := range pending {
		if n.NextAttempt.After(now) {
			continue
		}
		n, mine, err := d.cfg.Outbox.Claim(ctx, n, d.cfg.Instance, d.cfg.ClaimLease)
		if err != nil {
			return err
		}
		if !mine {
			continue // another instance is sending it
		}
		if err := d.deliver(ctx, n); err != nil {
			n.Attempts++
			n.LastError = err.Error()
			n.NextAttempt = now.Add(d.backoff(n.Attempts))
			d.cfg.Logger.WarnContext(ctx, "webhook delivery failed; will retry", "id", n.ID, "type", n.Type, "attempts", n.Attempts, "next", n.NextAttempt, "err", err)
			if err := d.cfg.Outbox.Postpone(ctx, n); err != nil {
				return err
			}
			continue
		}
		d.cfg.Logger.InfoContext(ctx, "webhook delivered", "id", n.ID, "type", n.Type, "case", n.Event.Case)
		if err := d.cfg.Outbox.Delivered(ctx, n.ID); err != nil {
			return err
		}
	}
	return nil
}

func (d *Deliverer) backoff(attempts int) time.Duration {
	b := time.Second << min(attempts-1, 20)
	return min(b, d.cfg.MaxBackoff)
}

func (d *Deliverer) deliver(ctx context.Context, n cases.Notification) error {
	body, err := json.Marshal(payload(n))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	// Each attempt is signed at its own time, so that a retry an hour
	// later is not refused as a replay.
	at := d.cfg.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "casedrop-webhook")
	req.Header.Set(IDHeader, n.ID)
	req.Header.Set(TimestampHeader, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(SignatureHeader, Sign(d.cfg.Key, n.ID, at, body))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
