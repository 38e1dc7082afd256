package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// audience is the JWT "aud" of every case credential.
const audience = "casedrop"

// clockSkew is how far in the future a token's "iat" may lie, for instances
// whose clocks disagree a little.
const clockSkew = time.Minute

// tokenClaims is the JWT payload of a case credential.
type tokenClaims struct {
	jwt.RegisteredClaims
	Case string `json:"case"`
	Role string `json:"role"`
}

// Issuer signs case credentials.
type Issuer struct {
	// Keys signs, with its newest key.
	Keys *Keys
	// Issuer is the "iss" claim. casedrop's is fixed ("casedrop"), not
	// the public URL, so that instances behind different URLs accept each
	// other's credentials.
	Issuer string
	// Now is the clock.
	Now func() time.Time
}

// Issue signs a credential for c, valid for ttl from now (ttl <= 0 means
// MaxTTL; a longer ttl is an error). The empty role means RoleCustomer. It
// returns the token and c as signed, with its times filled in.
func (i *Issuer) Issue(c Claims, ttl time.Duration) (token string, claims Claims, err error) {
	if i.Keys == nil || i.Now == nil || i.Issuer == "" {
		return "", Claims{}, errors.New("auth: issuer needs Keys, Issuer and Now")
	}
	if ttl > MaxTTL {
		return "", Claims{}, fmt.Errorf("auth: credential lifetime %s exceeds %s", ttl, MaxTTL)
	}
	if ttl <= 0 {
		ttl = MaxTTL
	}
	if c.Case == "" || c.CredentialID == "" || c.Username == "" {
		return "", Claims{}, errors.New("auth: credential needs a case, an id and a username")
	}
	if c.Role, err = ParseRole(string(c.Role)); err != nil {
		return "", Claims{}, err
	}
	// JWT times are whole seconds; truncate so the claims returned are the
	// claims a verifier will see.
	c.IssuedAt = i.Now().UTC().Truncate(time.Second)
	c.ExpiresAt = c.IssuedAt.Add(ttl).Truncate(time.Second)

	kid, private, err := i.Keys.signer()
	if err != nil {
		return "", Claims{}, err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.Issuer,
			Subject:   c.Username,
			Audience:  jwt.ClaimStrings{audience},
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ID:        c.CredentialID,
		},
		Case: c.Case,
		Role: string(c.Role),
	})
	t.Header["kid"] = kid
	token, err = t.SignedString(private)
	if err != nil {
		return "", Claims{}, fmt.Errorf("auth: signing credential: %w", err)
	}
	return token, c, nil
}

// RevocationChecker tells whether a credential has been revoked. The cases
// package implements it; it is asked on every request.
type RevocationChecker interface {
	Revoked(ctx context.Context, caseID, credentialID string) (bool, error)
}

// Verifier checks case credentials.
type Verifier struct {
	// Keys holds every key whose signatures are accepted.
	Keys *Keys
	// Issuer is the "iss" claim required.
	Issuer string
	// Now is the clock.
	Now func() time.Time
	// Revocations, if not nil, is asked whether a credential was revoked.
	Revocations RevocationChecker
	// Accounts, if not nil, finds the records Login and LoginWithKey check
	// a short password or an SSH key against.
	Accounts AccountLookup
}

// Verify checks that token is a genuine, unexpired, unrevoked credential
// issued by this service and returns its claims. A refused token gets
// ErrInvalid, ErrExpired or ErrRevoked (test with errors.Is); any other error
// means the check itself failed (misconfiguration, revocation lookup).
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if v.Keys == nil || v.Now == nil || v.Issuer == "" {
		return Claims{}, errors.New("auth: verifier needs Keys, Issuer and Now")
	}
	if !wellFormed(token) {
		return Claims{}, ErrInvalid
	}
	var tc tokenClaims
	expired, err := v.parse(ctx, token, audience, "", &tc)
	if err != nil {
		return Claims{}, err
	}
	c, ok := v.claims(&tc)
	if !ok {
		return Claims{}, ErrInvalid
	}
	if expired {
		return Claims{}, ErrExpired
	}
	if v.Revocations != nil {
		revoked, err := v.Revocations.Revoked(ctx, c.Case, c.CredentialID)
		if err != nil {
			return Claims{}, fmt.Errorf("auth: checking revocation: %w", err)
		}
		if revoked {
			return Claims{}, ErrRevoked
		}
	}
	return c, nil
}

// parse checks token's signature (EdDSA, by a key of ours, named by its
// kid), its issuer, audience aud and typ header (any when typ is ""), and
// decodes its claims into into. expired says the token is genuine but its
// "exp" has passed. A token that fails any other check is ErrInvalid; any
// other error means a store failure while looking for its key.
func (v *Verifier) parse(ctx context.Context, token, aud, typ string, into jwt.Claims) (expired bool, err error) {
	// A store failure while looking for the token's key is a failed check,
	// not a refused token; the library would only say "unverifiable".
	var keyErr error
	keyfunc := func(t *jwt.Token) (any, error) {
		if h, _ := t.Header["typ"].(string); typ != "" && h != typ {
			return nil, ErrInvalid
		}
		pub, err := v.key(ctx, t)
		if err != nil && !errors.Is(err, ErrInvalid) {
			keyErr = err
		}
		return pub, err
	}
	_, err = jwt.ParseWithClaims(token, into, keyfunc,
		jwt.WithStrictDecoding(),
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(v.Issuer),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(v.Now),
	)
	switch {
	case err == nil:
		return false, nil
	case onlyExpired(err):
		return true, nil
	case keyErr != nil:
		return false, fmt.Errorf("auth: reloading signing keys: %w", keyErr)
	default:
		// The library's message may quote decoded parts of the token.
		return false, ErrInvalid
	}
}

// maxTokenLen bounds what is parsed at all: casedrop's tokens are about
// 400 characters.
const maxTokenLen = 4096

// wellFormed reports whether token is three base64url segments joined by
// dots and nothing else: no padding, no whitespace, no newline. The one
// spelling of a token is the one issued; anything else (a pasted token with
// a line break in it, spaces around it) is refused before it is parsed.
func wellFormed(token string) bool {
	if len(token) > maxTokenLen {
		return false
	}
	dots := 0
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c == '.':
			dots++
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2
}

// VerifyForCase is Verify for a credential that must open caseID; a genuine
// credential for another case gets ErrWrongCase.
func (v *Verifier) VerifyForCase(ctx context.Context, token, caseID string) (Claims, error) {
	c, err := v.Verify(ctx, token)
	if err != nil {
		return Claims{}, err
	}
	if c.Case != caseID {
		return Claims{}, ErrWrongCase
	}
	return c, nil
}

// key is the jwt.Keyfunc: the public key named by the token's kid, which
// may be one another instance rotated in.
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	if _, ok := t.Method.(*jwt.SigningMethodEd25519); !ok {
		return nil, ErrInvalid
	}
	kid, _ := t.Header["kid"].(string)
	pub, err := v.Keys.verifyingKey(ctx, kid)
	if err != nil {
		return nil, err
	}
	return pub, nil
}

// claims checks what the library does not (custom claims, issue time,
// lifetime) on a well-signed token and converts them.
func (v *Verifier) claims(tc *tokenClaims) (Claims, bool) {
	if tc.Case == "" || tc.Role == "" || tc.ID == "" || tc.Subject == "" {
		return Claims{}, false
	}
	role, err := ParseRole(tc.Role)
	if err != nil {
		return Claims{}, false
	}
	if tc.IssuedAt == nil || tc.ExpiresAt == nil {
		return Claims{}, false
	}
	iat, exp := tc.IssuedAt.Time, tc.ExpiresAt.Time
	if iat.After(v.Now().Add(clockSkew)) {
		return Claims{}, false
	}
	// A token claiming a longer life than we ever grant was not issued by
	// this code, however well it is signed.
	if !exp.After(iat) || exp.Sub(iat) > MaxTTL {
		return Claims{}, false
	}
	return Claims{
		Case:         tc.Case,
		CredentialID: tc.ID,
		Username:     tc.Subject,
		Role:         role,
		IssuedAt:     iat.UTC(),
		ExpiresAt:    exp.UTC(),
	}, true
}

// onlyExpired reports whether err says the token is well signed and its only
// fault among the claims the library checks is being expired.
func onlyExpired(err error) bool {
	if !errors.Is(err, jwt.ErrTokenInvalidClaims) || !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	for _, other := range []error{
		jwt.ErrTokenRequiredClaimMissing,
		jwt.ErrTokenNotValidYet,
		jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenInvalidIssuer,
		jwt.ErrTokenInvalidAudience,
		jwt.ErrTokenInvalidSubject,
		jwt.ErrTokenInvalidId,
	} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}
