package cases

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/casedrop/casedrop/auth"
)

// Credential is the record of a credential issued for a case. The token
// itself is never stored, nor its short SFTP password: only that
// password's hash, which stays inside the catalog (credentialRecord).
type Credential struct {
	ID        string     `json:"id"`
	Case      string     `json:"case"`
	Username  string     `json:"username"`
	Role      auth.Role  `json:"role"`
	IssuedAt  time.Time  `json:"issued_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// RecordedAt is when the record was written, at full precision (the
	// token's own times are whole seconds); closing a case revokes every
	// credential recorded before the close.
	RecordedAt time.Time `json:"recorded_at"`
	// SSHPublicKey is the SSH public key attached when the credential was
	// issued (authorized_keys form), SSHKeyFingerprint its SHA256
	// fingerprint; both empty for none.
	SSHPublicKey      string `json:"ssh_public_key,omitempty"`
	SSHKeyFingerprint string `json:"ssh_key_fingerprint,omitempty"`
}

// credentialRecord is a credential as stored: the record and the hash of
// its short SFTP password, which only logins read (Accounts); whatever the
// catalog hands out is the Credential alone.
type credentialRecord struct {
	Credential
	PasswordHash string `json:"password_hash,omitempty"`
}

func credentialKey(caseID, id string) string { return Prefix(caseID) + "credentials/" + id + ".json" }

// credentialIndexKey maps a credential id to its case, so that a credential
// can be revoked by id alone.
func credentialIndexKey(id string) string { return "credentials/" + id + ".json" }

type credentialIndex struct {
	Case string `json:"case"`
}

// AddCredential records a credential issued for a case, with the hash of
// its short SFTP password (auth.NewPassword).
func (c *Catalog) AddCredential(ctx context.Context, cred Credential, passwordHash string) error {
	cred.RecordedAt = c.now().UTC()
	if err := putJSON(ctx, c.store, credentialIndexKey(cred.ID), credentialIndex{Case: cred.Case}); err != nil {
		return err
	}
	return putJSON(ctx, c.store, credentialKey(cred.Case, cred.ID), credentialRecord{Credential: cred, PasswordHash: passwordHash})
}

// Credential returns the record of credential id, or ErrNotFound.
func (c *Catalog) Credential(ctx context.Context, id string) (Credential, error) {
	rec, err := c.credentialRecord(ctx, id)
	return rec.Credential, err
}

func (c *Catalog) credentialRecord(ctx context.Context, id string) (credentialRecord, error) {
	if ValidCaseID(id) != nil {
		return credentialRecord{}, ErrNotFound
	}
	var idx credentialIndex
	if err := getJSON(ctx, c.store, credentialIndexKey(id), &idx); err != nil {
		return credentialRecord{}, err
	}
	var rec credentialRecord
	err := getJSON(ctx, c.store, credentialKey(idx.Case, id), &rec)
	return rec, err
}

// Credentials lists the credentials issued for a case, oldest first.
func (c *Catalog) Credentials(ctx context.Context, caseID string) ([]Credential, error) {
	recs, err := c.credentialRecords(ctx, Prefix(caseID)+"credentials/")
	if err != nil {
		return nil, err
	}
	creds := make([]Credential, len(recs))
	for i, rec := range recs {
		creds[i] = rec.Credential
	}
	sort.Slice(creds, func(i, j int) bool { return creds[i].IssuedAt.Before(creds[j].IssuedAt) })
	return creds, nil
}

// credentialRecords reads the credential records whose keys start with
// prefix, in key order.
func (c *Catalog) credentialRecords(ctx context.Context, prefix string) ([]credentialRecord, error) {
	infos, err := c.store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	recs := make([]credentialRecord, 0, len(infos))
	for _, info := range infos {
		var rec credentialRecord
		if err := getJSON(ctx, c.store, info.Key, &rec); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// Revoke revokes credential id at once. Revoking twice keeps the first time.
func (c *Catalog) Revoke(ctx context.Context, id string) (Credential, error) {
	rec, err := c.credentialRecord(ctx, id)
	if err != nil || rec.RevokedAt != nil {
		return rec.Credential, err
	}
	now := c.now().UTC()
	rec.RevokedAt = &now
	return rec.Credential, putJSON(ctx, c.store, credentialKey(rec.Case, rec.ID), rec)
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
func MayIssue(c Case, role auth.Role) error {
	if c.State != StateOpen && role != auth.RoleStaff {
		return ErrCaseClosed
	}
	return nil
}
