package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// ErrWrongUser: a genuine token offered under a user name that is not its
// credential's.
var ErrWrongUser = errors.New("user name is not the credential's")

// Account is a credential's stored record, as far as a login without its
// token needs it: the claims the token would carry, and what its other
// secret forms are checked against.
type Account struct {
	Claims
	// PasswordHash is what NewPassword returned for its short password;
	// empty for a credential issued before there were short passwords.
	PasswordHash string
	// SSHKey is its public key in authorized_keys form; empty for none.
	SSHKey string
}

// AccountLookup finds credentials by the parts of their SFTP user name.
// The cases package implements it.
type AccountLookup interface {
	// Accounts returns the records of caseID's credentials whose id begins
	// with idPrefix; none for an unknown case.
	Accounts(ctx context.Context, caseID, idPrefix string) ([]Account, error)
}

// Login checks a secret offered with a user name on the SFTP door: the
// credential's token or its short password. It returns the credential's
// claims, or refuses as Verify does (ErrInvalid, ErrExpired, ErrRevoked,
// and ErrWrongUser for a token under another user name).
func (v *Verifier) Login(ctx context.Context, username, secret string) (Claims, error) {
	if wellFormed(secret) {
		c, err := v.Verify(ctx, secret)
		if err == nil && c.Username != username {
			return Claims{}, ErrWrongUser
		}
		return c, err
	}
	if !passwordShaped(secret) {
		return Claims{}, ErrInvalid
	}
	return v.account(ctx, username, func(a Account) bool {
		return a.PasswordHash != "" && passwordMatches(a.PasswordHash, secret)
	})
}

// LoginWithKey checks that key is the SSH public key attached to the
// credential named username, and that the credential still opens its
// case. It proves nothing about who offers the key: the SSH server checks
// the signature that does, after this.
func (v *Verifier) LoginWithKey(ctx context.Context, username string, key ssh.PublicKey) (Claims, error) {
	return v.account(ctx, username, func(a Account) bool { return sameKey(a.SSHKey, key) })
}

// account returns the claims of the credential named username whose record
// matches, if it is still valid. Two credentials of a case may share a
// user name (their ids share six characters): each is tried.
func (v *Verifier) account(ctx context.Context, username string, matches func(Account) bool) (Claims, error) {
	if v.Accounts == nil || v.Now == nil {
		return Claims{}, errors.New("auth: verifier needs Accounts and Now for logins without a token")
	}
	caseID, idPrefix, ok := splitUsername(username)
	if !ok {
		return Claims{}, ErrInvalid
	}
	accounts, err := v.Accounts.Accounts(ctx, caseID, idPrefix)
	if err != nil {
		return Claims{}, fmt.Errorf("auth: looking up %s: %w", idPrefix, err)
	}
	refusal := ErrInvalid
	for _, a := range accounts {
		if a.Username != username || a.Case != caseID || !matches(a) {
			continue
		}
		if err := v.stillValid(ctx, a.Claims); err != nil {
			if Reason(err) == "" {
				return Claims{}, err
			}
			refusal = err
			continue
		}
		return a.Claims, nil
	}
	return Claims{}, refusal
}

// stillValid checks a credential known from its record: not expired, not
// revoked, its case not closed.
func (v *Verifier) stillValid(ctx context.Context, c Claims) error {
	if !v.Now().Before(c.ExpiresAt) {
		return ErrExpired
	}
	if v.Revocations == nil {
		return nil
	}
	revoked, err := v.Revocations.Revoked(ctx, c.Case, c.CredentialID)
	if err != nil {
		return fmt.Errorf("auth: checking revocation: %w", err)
	}
	if revoked {
		return ErrRevoked
	}
	return nil
}

// usernameIDLen is how much of the credential id a user name carries.
const usernameIDLen = 6

// Username is the SFTP user name of credential id of caseID.
func Username(caseID, id string) string { return caseID + "-" + id[:usernameIDLen] }

// splitUsername undoes Username: the case id (which may itself hold '-')
// and the credential id's first characters, checked to be what NewCredential
// makes (lowercase base32), so that nothing else reaches the store.
func splitUsername(username string) (caseID, idPrefix string, ok bool) {
	i := strings.LastIndexByte(username, '-')
	if i < 1 || len(username)-i-1 != usernameIDLen {
		return "", "", false
	}
	caseID, idPrefix = username[:i], username[i+1:]
	for j := 0; j < len(idPrefix); j++ {
		if c := idPrefix[j]; !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return "", "", false
		}
	}
	return caseID, idPrefix, true
}
