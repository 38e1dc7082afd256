package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A download link lets the browser's own download manager fetch one
// download of a case, where no Authorization header can go: a JWT in the
// URL, minted for one credential, one case and one download, that lives a
// few minutes. It is signed with the credentials' keys, so that every
// instance on the store verifies it, but has an audience and a type of its
// own: a credential is never taken for a link, nor a link for a
// credential. At each use the credential it names must still be valid.
const (
	downloadAudience = "casedrop-download"
	downloadType     = "casedrop-download+jwt"
	// DownloadLinkTTL is how long a download link lives (less when its
	// credential ends sooner).
	DownloadLinkTTL = 5 * time.Minute
)

// Errors a download link is refused with, besides those of a credential:
// ErrInvalid, ErrExpired and ErrRevoked (of the credential that minted it),
// ErrWrongCase.
var (
	// ErrDownloadExpired: a genuine download link whose few minutes are
	// over; its credential may mint another.
	ErrDownloadExpired = errors.New("download link expired")
	// ErrWrongDownload: a genuine download link of the case, for another
	// of its downloads.
	ErrWrongDownload = errors.New("download link is for another download")
)

// downloadClaims is the JWT payload of a download link: "sub" is the
// credential's id, "dl" what it downloads, and the credential's user name,
// role and end, so that a use needs no more store reads than a
// credential's (its revocation).
type downloadClaims struct {
	jwt.RegisteredClaims
	Case             string           `json:"case"`
	Download         string           `json:"dl"`
	Username         string           `json:"user"`
	Role             string           `json:"role"`
	CredentialExpiry *jwt.NumericDate `json:"cred_exp"`
}

// IssueDownload signs a download link for download of the case of c, the
// claims of a credential verified just now. download names what it opens
// as the caller chooses (casedrop's web door: "files/NAME", "archive.zip",
// ...); VerifyDownload must be asked for the same. The link lives
// DownloadLinkTTL, or until the credential ends if that is sooner.
func (i *Issuer) IssueDownload(c Claims, download string) (link string, expiresAt time.Time, err error) {
	if i.Keys == nil || i.Now == nil || i.Issuer == "" {
		return "", time.Time{}, errors.New("auth: issuer needs Keys, Issuer and Now")
	}
	if c.Case == "" || c.CredentialID == "" || c.Username == "" || download == "" {
		return "", time.Time{}, errors.New("auth: a download link needs a credential's case, id and username, and a download")
	}
	if _, err := ParseRole(string(c.Role)); err != nil || c.Role == "" {
		return "", time.Time{}, fmt.Errorf("auth: a download link needs a credential's role, not %q", c.Role)
	}
	now := i.Now().UTC().Truncate(time.Second)
	expiresAt = now.Add(DownloadLinkTTL)
	if end := c.ExpiresAt.Truncate(time.Second); end.Before(expiresAt) {
		expiresAt = end
	}
	if !expiresAt.After(now) {
		return "", time.Time{}, ErrExpired
	}
	kid, private, err := i.Keys.signer()
	if err != nil {
		return "", time.Time{}, err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, downloadClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.Issuer,
			Subject:   c.CredentialID,
			Audience:  jwt.ClaimStrings{downloadAudience},
			ExpiresAt: jwt.NewNumericDate(expiresAt),
			IssuedAt:  jwt.NewNumericDate(now),
		},
		Case:             c.Case,
		Download:         download,
		Username:         c.Username,
		Role:             string(c.Role),
		CredentialExpiry: jwt.NewNumericDate(c.ExpiresAt),
	})
	t.Header["kid"] = kid
	t.Header["typ"] = downloadType
	link, err = t.SignedString(private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: signing download link: %w", err)
	}
	return link, expiresAt, nil
}

// VerifyDownload checks that link is a genuine download link of this
// service, unexpired, for download of caseID, and that the credential it
// was minted for is still valid now (not expired, not revoked, its case
// not closed). It returns that credential's claims (IssuedAt zero). A
// refused link gets ErrInvalid, ErrDownloadExpired, ErrWrongCase,
// ErrWrongDownload, ErrExpired or ErrRevoked; any other error means the
// check itself failed.
func (v *Verifier) VerifyDownload(ctx context.Context, link, caseID, download string) (Claims, error) {
	if v.Keys == nil || v.Now == nil || v.Issuer == "" {
		return Claims{}, errors.New("auth: verifier needs Keys, Issuer and Now")
	}
	if !wellFormed(link) {
		return Claims{}, ErrInvalid
	}
	var dc downloadClaims
	expired, err := v.parse(ctx, link, downloadAudience, downloadType, &dc)
	if err != nil {
		return Claims{}, err
	}
	c, ok := v.downloadClaims(&dc)
	switch {
	case !ok:
		return Claims{}, ErrInvalid
	case expired:
		return Claims{}, ErrDownloadExpired
	case c.Case != caseID:
		return Claims{}, ErrWrongCase
	case dc.Download != download:
		return Claims{}, ErrWrongDownload
	}
	if err := v.stillValid(ctx, c); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// downloadClaims checks what the library does not on a well-signed link,
// and returns the claims of the credential it was minted for.
func (v *Verifier) downloadClaims(dc *downloadClaims) (Claims, bool) {
	if dc.Case == "" || dc.Download == "" || dc.Subject == "" || dc.Username == "" {
		return Claims{}, false
	}
	role, err := ParseRole(dc.Role)
	if err != nil || dc.Role == "" {
		return Claims{}, false
	}
	if dc.IssuedAt == nil || dc.ExpiresAt == nil || dc.CredentialExpiry == nil {
		return Claims{}, false
	}
	iat, exp := dc.IssuedAt.Time, dc.ExpiresAt.Time
	if iat.After(v.Now().Add(clockSkew)) {
		return Claims{}, false
	}
	// A link claiming a longer life than we ever grant, or one past its
	// credential's, was not issued by this code.
	if !exp.After(iat) || exp.Sub(iat) > DownloadLinkTTL || exp.After(dc.CredentialExpiry.Time) {
		return Claims{}, false
	}
	return Claims{
		Case:         dc.Case,
		CredentialID: dc.Subject,
		Username:     dc.Username,
		Role:         role,
		ExpiresAt:    dc.CredentialExpiry.UTC(),
	}, true
}

// DownloadLink checks a download link for download of caseID
// (Verifier.VerifyDownload), and refuses as Token does: a link is a
// secret offered like a credential, and a refused one counts against
// its source.
func (g *Gate) DownloadLink(ctx context.Context, k Knock, link, caseID, download string) (Claims, error) {
	c, err := g.Verifier.VerifyDownload(ctx, link, caseID, download)
	if err != nil {
		return Claims{}, g.refuse(ctx, k, err)
	}
	return c, nil
}
