package cases

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/casedrop/casedrop/auth"
)

// The operations the case system and the operator ask for, on any door
// (the admin API, the CLI on the data): each changes the catalog and then
// records who did it in the case's trail, only once the change is made.

// ErrNotAudited: the operation was done, but its audit record could not be
// written. What is returned with it is valid: callers log it and carry on,
// as an audit outage must not hide what was done (a credential issued and
// never shown would be lost).
var ErrNotAudited = errors.New("done, but its audit record was lost")

// audited records ev, as ErrNotAudited when that fails.
func (c *Catalog) audited(ctx context.Context, ev Event) error {
	if err := c.Audit(ctx, ev); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotAudited, ev.Type, err)
	}
	return nil
}

// OpenCase opens case id, as Open does, and records case.opened by actor
// when this call created it. It reports whether it did.
func (c *Catalog) OpenCase(ctx context.Context, id string, by Actor) (Case, bool, error) {
	rec, created, err := c.Open(ctx, id)
	if err != nil || !created {
		return rec, created, err
	}
	return rec, true, c.audited(ctx, Event{Type: EventCaseOpened, Case: id, Actor: by})
}

// CloseCase closes case id, as Close does, and records case.closed by
// actor.
func (c *Catalog) CloseCase(ctx context.Context, id string, by Actor) (Case, error) {
	rec, err := c.Close(ctx, id)
	if err != nil {
		return rec, err
	}
	return rec, c.audited(ctx, Event{Type: EventCaseClosed, Case: id, Actor: by})
}

// ReopenCase reopens case id, as Reopen does, and records case.reopened
// by actor.
func (c *Catalog) ReopenCase(ctx context.Context, id string, by Actor) (Case, error) {
	rec, err := c.Reopen(ctx, id)
	if err != nil {
		return rec, err
	}
	return rec, c.audited(ctx, Event{Type: EventCaseReopened, Case: id, Actor: by})
}

// RevokeCredential revokes credential id, as Revoke does, and records
// credential.revoked by actor in its case's trail.
func (c *Catalog) RevokeCredential(ctx context.Context, id string, by Actor) (Credential, error) {
	cred, err := c.Revoke(ctx, id)
	if err != nil {
		return cred, err
	}
	return cred, c.audited(ctx, Event{Type: EventCredentialRevoked, Case: cred.Case, Actor: by, Detail: "credential " + cred.ID})
}

// Signer signs a new credential's token (auth.Issuer): the catalog
// records credentials, it never signs them.
type Signer interface {
	Issue(c auth.Claims, ttl time.Duration) (token string, claims auth.Claims, err error)
}

// CredentialRequest is a credential to issue.
type CredentialRequest struct {
	Case string
	Role auth.Role
	// TTL shortens the credential's life below auth.MaxTTL; 0 is the most.
	TTL time.Duration
	// SSHKey is attached to the credential when not the zero SSHKey.
	SSHKey auth.SSHKey
}

// IssuedCredential is a credential just issued, with its secrets: the
// token and the short SFTP password, which are shown this once and never
// stored (only the password's hash is).
type IssuedCredential struct {
	Credential
	Token    string
	Password string
}

// IssueCredential issues a credential of the case as req asks, signed by
// signer, records it, then records credential.issued by actor. A customer
// credential needs an open case (MayIssue).
func (c *Catalog) IssueCredential(ctx context.Context, signer Signer, req CredentialRequest, by Actor) (IssuedCredential, error) {
	return c.issue(ctx, signer, req, auth.NewCredential(req.Case, req.Role), by, "")
}

// issue is IssueCredential with the new credential's claims made already
// (an upload link names its credential before it is issued); note, if
// any, ends the audit record's detail.
func (c *Catalog) issue(ctx context.Context, signer Signer, req CredentialRequest, claims auth.Claims, by Actor, note string) (IssuedCredential, error) {
	cs, err := c.Get(ctx, req.Case)
	if err != nil {
		return IssuedCredential{}, err
	}
	if err := MayIssue(cs, req.Role); err != nil {
		return IssuedCredential{}, err
	}
	token, claims, err := signer.Issue(claims, req.TTL)
	if err != nil {
		return IssuedCredential{}, err
	}
	password, passwordHash := auth.NewPassword()
	cred := Credential{
		ID: claims.CredentialID, Case: req.Case, Username: claims.Username, Role: claims.Role,
		IssuedAt: claims.IssuedAt, ExpiresAt: claims.ExpiresAt,
		SSHPublicKey: req.SSHKey.AuthorizedKey, SSHKeyFingerprint: req.SSHKey.Fingerprint,
	}
	if err := c.AddCredential(ctx, cred, passwordHash); err != nil {
		return IssuedCredential{}, err
	}
	issued := IssuedCredential{Credential: cred, Token: token, Password: password}
	detail := fmt.Sprintf("credential %s (%s, %s) expires %s", cred.ID, cred.Role, cred.Username, cred.ExpiresAt.Format(time.RFC3339))
	if cred.SSHKeyFingerprint != "" {
		detail += ", SSH key " + cred.SSHKeyFingerprint
	}
	if note != "" {
		detail += ", " + note
	}
	return issued, c.audited(ctx, Event{Type: EventCredentialIssued, Case: req.Case, Actor: by, Detail: detail})
}
