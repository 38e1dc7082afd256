// Package auth issues and verifies case credentials: JWTs signed with
// Ed25519 keys (alg EdDSA, with a kid header) that open one case, on the
// HTTPS door as a bearer token and on the SFTP door as a password. On the
// SFTP door a credential also logs in with its short password (stored only
// as a hash) or an SSH public key attached to it (login.go). It also keeps
// the signing keys in the object store, loads the admin token, and rate
// limits failed logins.
package auth

import (
	"errors"
	"fmt"
	"time"
)

// Role is what a credential's holder may do in its case.
type Role string

// The roles a credential can carry.
const (
	// RoleCustomer uploads into the case and sees its files.
	RoleCustomer Role = "customer"
	// RoleStaff is a support engineer working the case.
	RoleStaff Role = "staff"
	// RoleAdmin is the admin token's holder, as the audit trail names
	// them. No credential carries it: ParseRole refuses it.
	RoleAdmin Role = "admin"
)

// ParseRole returns the role named s; the empty string means RoleCustomer.
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case "", RoleCustomer:
		return RoleCustomer, nil
	case RoleStaff:
		return RoleStaff, nil
	}
	return "", fmt.Errorf("auth: unknown role %q", s)
}

// MaxTTL is the longest a credential may live, counted from its issue.
const MaxTTL = 120 * time.Hour

// Claims of a case credential.
type Claims struct {
	// Case is the id of the one case the credential opens.
	Case string
	// CredentialID identifies the credential (the JWT "jti"); revocation is by it.
	CredentialID string
	// Username is the account name (the JWT "sub"), the SFTP user name.
	Username string
	// Role is what the holder may do in the case.
	Role Role
	// IssuedAt is when the credential was signed (whole seconds).
	IssuedAt time.Time
	// ExpiresAt is when the credential stops opening the case (whole seconds).
	ExpiresAt time.Time
}

// Errors a credential is refused with. Their messages say nothing about the
// token or what exactly was wrong with it, so they never help a guesser.
var (
	// ErrInvalid: the token is not a credential this server issued for this
	// service (malformed, tampered, badly signed, unknown key, wrong
	// algorithm, issuer or audience, claims missing or out of bounds).
	ErrInvalid = errors.New("invalid credential")
	// ErrExpired: a genuine credential whose lifetime is over.
	ErrExpired = errors.New("credential expired")
	// ErrRevoked: a genuine credential that has been revoked, one by one or
	// by closing its case.
	ErrRevoked = errors.New("credential revoked")
	// ErrWrongCase: a genuine credential for another case.
	ErrWrongCase = errors.New("credential is for another case")
)

// Reason names why a credential was refused, for logs and the audit
// trail, without any detail of the token; "" for an error that is not a
// refusal (the check itself failed).
func Reason(err error) string {
	for _, e := range []error{ErrExpired, ErrRevoked, ErrWrongCase, ErrWrongUser, ErrDownloadExpired, ErrWrongDownload, ErrInvalid} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return ""
}
