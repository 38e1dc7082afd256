package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testIssuer = "https://casedrop.example"

// testEnv is one instance's auth: keys in a store, an issuer and a verifier
// sharing a fake clock, and a revocation list.
type testEnv struct {
	store       *memStore
	clock       *fakeClock
	keys        *Keys
	issuer      *Issuer
	verifier    *Verifier
	revocations *fakeRevocations
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	store, clock := newMemStore(), newFakeClock()
	keys := loadKeys(t, store, clock)
	rev := &fakeRevocations{revoked: map[string]bool{}}
	return &testEnv{
		store:       store,
		clock:       clock,
		keys:        keys,
		issuer:      &Issuer{Keys: keys, Issuer: testIssuer, Now: clock.Now},
		verifier:    &Verifier{Keys: keys, Issuer: testIssuer, Now: clock.Now, Revocations: rev},
		revocations: rev,
	}
}

func (e *testEnv) issue(t testing.TB, c Claims, ttl time.Duration) string {
	t.Helper()
	token, _, err := e.issuer.Issue(c, ttl)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return token
}

// sign signs tc as this environment's current key would, so tests can craft
// well-signed tokens that Issue would never produce.
func (e *testEnv) sign(t *testing.T, tc tokenClaims) string {
	t.Helper()
	kid, private, err := e.keys.signer()
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, tc)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validClaims are the claims Issue would sign now.
func (e *testEnv) validClaims() tokenClaims {
	now := e.clock.Now()
	return tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    testIssuer,
			Subject:   "c-1-alice",
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
			ID:        "cred-1",
		},
		Case: "case-1",
		Role: "customer",
	}
}

type fakeRevocations struct {
	revoked map[string]bool // by caseID + "/" + credentialID
	err     error
}

func (f *fakeRevocations) Revoked(_ context.Context, caseID, credentialID string) (bool, error) {
	return f.revoked[caseID+"/"+credentialID], f.err
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	var header struct {
		KID string `json:"kid"`
	}
	decodeSegment(t, strings.Split(token, ".")[0], &header)
	return header.KID
}

func decodeSegment(t *testing.T, seg string, v any) {
	t.Helper()
	data, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

func encodeSegment(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// flipMiddle changes one character in the middle of s.
func flipMiddle(s string) string {
	i := len(s) / 2
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// assertNoLeak fails if err's message contains token or any 8-character
// piece of it.
func assertNoLeak(t *testing.T, err error, token string) {
	t.Helper()
	msg := err.Error()
	if token != "" && strings.Contains(msg, token) {
		t.Fatalf("error %q contains the token", msg)
	}
	const piece = 8
	for i := 0; i+piece <= len(token); i++ {
		if strings.Contains(msg, token[i:i+piece]) {
			t.Fatalf("error %q contains part of the token: %q", msg, token[i:i+piece])
		}
	}
}

func sameClaims(a, b Claims) bool {
	return a.Case == b.Case && a.CredentialID == b.CredentialID && a.Username == b.Username &&
		a.Role == b.Role && a.IssuedAt.Equal(b.IssuedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func TestIssue(t *testing.T) {
	base := Claims{Case: "case-1", CredentialID: "cred-1", Username: "c-1-alice"}
	withRole := func(r Role) Claims { c := base; c.Role = r; return c }
	tests := []struct {
		name     string
		claims   Claims
		ttl      time.Duration
		wantTTL  time.Duration
		wantRole Role
		wantErr  bool
	}{
		{name: "a customer credential round-trips all its claims", claims: withRole(RoleCustomer), ttl: time.Hour, wantTTL: time.Hour, wantRole: RoleCustomer},
		{name: "a staff credential round-trips all its claims", claims: withRole(RoleStaff), ttl: time.Hour, wantTTL: time.Hour, wantRole: RoleStaff},
		{name: "no role means customer", claims: base, ttl: time.Hour, wantTTL: time.Hour, wantRole: RoleCustomer},
		{name: "ttl 0 gives exactly 120 hours", claims: base, ttl: 0, wantTTL: 120 * time.Hour, wantRole: RoleCustomer},
		{name: "a negative ttl gives exactly 120 hours", claims: base, ttl: -time.Minute, wantTTL: 120 * time.Hour, wantRole: RoleCustomer},
		{name: "ttl of exactly 120 hours is granted", claims: base, ttl: MaxTTL, wantTTL: MaxTTL, wantRole: RoleCustomer},
		{name: "ttl over 120 hours is refused", claims: base, ttl: MaxTTL + time.Second, wantErr: true},
		{name: "an unknown role is refused", claims: withRole("admin"), ttl: time.Hour, wantErr: true},
		{name: "a credential without a case is refused", claims: Claims{CredentialID: "cred-1", Username: "u"}, wantErr: true},
		{name: "a credential without an id is refused", claims: Claims{Case: "case-1", Username: "u"}, wantErr: true},
		{name: "a credential without a username is refused", claims: Claims{Case: "case-1", CredentialID: "cred-1"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			token, issued, err := env.issuer.Issue(tt.claims, tt.ttl)
			if tt.wantErr {
				if err == nil {
					t.Fatal("Issue succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			want := tt.claims
			want.Role = tt.wantRole
			want.IssuedAt = env.clock.Now().Truncate(time.Second)
			want.ExpiresAt = want.IssuedAt.Add(tt.wantTTL)
			if !sameClaims(issued, want) {
				t.Fatalf("Issue returned %+v, want %+v", issued, want)
			}
			got, err := env.verifier.Verify(context.Background(), token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !sameClaims(got, want) {
				t.Fatalf("Verify returned %+v, want %+v", got, want)
			}
		})
	}
}

func TestVerifyExpiry(t *testing.T) {
	tests := []struct {
		name  string
		after time.Duration
		want  error
	}{
		{name: "a token is accepted by a verifier whose clock is 30s behind", after: -30 * time.Second},
		{name: "a token is refused by a verifier whose clock is 2m behind", after: -2 * time.Minute, want: ErrInvalid},
		{name: "a token is accepted the moment it is issued", after: 0},
		{name: "a token is accepted at 119h59m", after: 119*time.Hour + 59*time.Minute},
		{name: "a token is accepted one second before it expires", after: MaxTTL - time.Second},
		{name: "a token is refused as expired at exactly 120h", after: MaxTTL, want: ErrExpired},
		{name: "a token is refused as expired long after", after: 30 * 24 * time.Hour, want: ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			token, issued, err := env.issuer.Issue(Claims{Case: "case-1", CredentialID: "cred-1", Username: "u"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			env.clock.Set(issued.IssuedAt.Add(tt.after))
			_, err = env.verifier.Verify(context.Background(), token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
			if err != nil {
				assertNoLeak(t, err, token)
			}
		})
	}
}

func TestVerifyRevocationAndCase(t *testing.T) {
	tests := []struct {
		name    string
		revoked bool
		revErr  error
		forCase string // "" means Verify, else VerifyForCase
		want    error
	}{
		{name: "an unrevoked credential is accepted"},
		{name: "a revoked credential is refused as revoked", revoked: true, want: ErrRevoked},
		{name: "a credential for its own case is accepted by VerifyForCase", forCase: "case-1"},
		{name: "a credential for another case is refused as wrong case", forCase: "case-2", want: ErrWrongCase},
		{name: "a failing revocation check refuses the credential", revErr: errStoreDown, want: errStoreDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			token := env.issue(t, Claims{Case: "case-1", CredentialID: "cred-1", Username: "u"}, 0)
			env.revocations.revoked["case-1/cred-1"] = tt.revoked
			env.revocations.err = tt.revErr
			var err error
			if tt.forCase == "" {
				_, err = env.verifier.Verify(context.Background(), token)
			} else {
				_, err = env.verifier.VerifyForCase(context.Background(), token, tt.forCase)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err != nil {
				assertNoLeak(t, err, token)
			}
		})
	}
}

var errStoreDown = errors.New("store down")
