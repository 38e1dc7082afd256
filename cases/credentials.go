package cases

import (
	"context"
	"errors"
	"sort"
	"time"
)

// Credential is the record of a credential issued for a case. The token
// itself is never stored.
type Credential struct {
	ID        string     `json:"id"`
	Case      string     `json:"case"`
	Username  string     `json:"username"`
	Role      string     `json:"role"`
	IssuedAt  time.Time  `json:"issued_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// RecordedAt is when the record was written, at full precision (the
	// token's own times are whole seconds); closing a case revokes every
	// credential recorded before the close.
	RecordedAt time.Time `json:"recorded_at"`
}

func credentialKey(caseID, id string) string { return Prefix(caseID) + "credentials/" + id + ".json" }

// credentialIndexKey maps a credential id to its case, so that a credential
// can be revoked by id alone.
func credentialIndexKey(id string) string { return "credentials/" + id + ".json" }

type credentialIndex struct {
	Case string `json:"case"`
}

// AddCredential records a credential issued for a case.
func (c *Catalog) AddCredential(ctx context.Context, cred Credential) error {
	cred.RecordedAt = c.now().UTC()
	if err := putJSON(ctx, c.store, credentialIndexKey(cred.ID), credentialIndex{Case: cred.Case}); err != nil {
		return err
	}
	return putJSON(ctx, c.store, credentialKey(cred.Case, cred.ID), cred)
}

// Credential returns the record of credential id, or ErrNotFound.
func (c *Catalog) Credential(ctx context.Context, id string) (Credential, error) {
	if ValidCaseID(id) != nil {
		return Credential{}, ErrNotFound
	}
	var idx credentialIndex
	if err := getJSON(ctx, c.store, credentialIndexKey(id), &idx); err != nil {
		return Credential{}, err
	}
	var cred Credential
	err := getJSON(ctx, c.store, credentialKey(idx.Case, id), &cred)
	return cred, err
}

// Credentials lists the credentials issued for a case, oldest first.
func (c *Catalog) Credentials(ctx context.Context, caseID string) ([]Credential, error) {
	infos, err := c.store.List(ctx, Prefix(caseID)+"credentials/")
	if err != nil {
		return nil, err
	}
	creds := make([]Credential, 0, len(infos))
	for _, info := range infos {
		var cred Credential
		if err := getJSON(ctx, c.store, info.Key, &cred); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, err
		}
		creds = append(creds, cred)
	}
	sort.Slice(creds, func(i, j int) bool { return creds[i].IssuedAt.Before(creds[j].IssuedAt) })
	return creds, nil
}

// Revoke revokes credential id at once. Revoking twice keeps the first time.
func (c *Catalog) Revoke(ctx context.Context, id string) (Credential, error) {
	cred, err := c.Credential(ctx, id)
	if err != nil || cred.RevokedAt != nil {
		return cred, err
	}
	now := c.now().UTC()
	cred.RevokedAt = &now
	return cred, putJSON(ctx, c.store, credentialKey(cred.Case, cred.ID), cred)
}

// Revoked reports whether the credential can no longer be used: revoked by
// id, issued before its case was closed, unknown, or its case is gone. It is
// checked on every request, on every door.
func (c *Catalog) Revoked(ctx context.Context, caseID, id string) (bool, error) {
	rec, err := c.Get(ctx, caseID)
	if errors.Is(err, ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	var cred Credential
	err = getJSON(ctx, c.store, credentialKey(caseID, id), &cred)
	if errors.Is(err, ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if cred.RevokedAt != nil {
		return true, nil
	}
	return rec.RevokedBefore != nil && cred.RecordedAt.Before(*rec.RevokedBefore), nil
}

// MayIssue says whether a credential of role (customer or staff) may be
// issued for the case: customers only while it is open; staff also while
// it is closed, to download until the purge.
func MayIssue(c Case, role string) error {
	if c.State != StateOpen && role != "staff" {
		return ErrCaseClosed
	}
	return nil
}
