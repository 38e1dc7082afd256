package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// mintFor issues a credential for case-1 and a download link for
// "files/core.bin" minted with its claims, as the web door does.
func mintFor(t *testing.T, env *testEnv, ttl time.Duration) (credential, link string, linkExp time.Time) {
	t.Helper()
	credential, claims, err := env.issuer.Issue(Claims{Case: "case-1", CredentialID: "cred-1", Username: "case-1-cred1a", Role: RoleStaff}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	link, linkExp, err = env.issuer.IssueDownload(claims, "files/core.bin")
	if err != nil {
		t.Fatalf("IssueDownload: %v", err)
	}
	return credential, link, linkExp
}

func TestADownloadLinkOpensItsOneDownloadAsItsCredential(t *testing.T) {
	env := newTestEnv(t)
	_, link, exp := mintFor(t, env, time.Hour)
	if want := env.clock.Now().Truncate(time.Second).Add(DownloadLinkTTL); !exp.Equal(want) {
		t.Fatalf("the link expires at %v, want %v (%v from now)", exp, want, DownloadLinkTTL)
	}
	got, err := env.verifier.VerifyDownload(context.Background(), link, "case-1", "files/core.bin")
	if err != nil {
		t.Fatalf("VerifyDownload: %v", err)
	}
	if got.Case != "case-1" || got.CredentialID != "cred-1" || got.Username != "case-1-cred1a" || got.Role != RoleStaff ||
		!got.ExpiresAt.Equal(env.clock.Now().Truncate(time.Second).Add(time.Hour)) {
		t.Fatalf("VerifyDownload returned %+v, want the credential's claims", got)
	}
}

func TestADownloadLinkIsRefusedForAnythingButItsDownloadWhileItsCredentialLives(t *testing.T) {
	tests := []struct {
		name     string
		after    time.Duration // from the mint
		credTTL  time.Duration
		revoked  bool
		caseID   string
		download string
		want     error
	}{
		{name: "a link is accepted a second before its end", after: DownloadLinkTTL - time.Second},
		{name: "a link is refused as expired at its end", after: DownloadLinkTTL, want: ErrDownloadExpired},
		{name: "a link is refused as expired long after", after: 24 * time.Hour, want: ErrDownloadExpired},
		{name: "a link ends with a credential that ends sooner", credTTL: time.Minute, after: time.Minute, want: ErrDownloadExpired},
		{name: "a link of a revoked credential is refused as revoked", revoked: true, want: ErrRevoked},
		{name: "a link is refused for another case", caseID: "case-2", want: ErrWrongCase},
		{name: "a link is refused for another file", download: "files/other.bin", want: ErrWrongDownload},
		{name: "a link for a file is refused for the case's zip", download: "archive.zip", want: ErrWrongDownload},
		{name: "a link is refused for a file whose name only differs in case", download: "files/CORE.bin", want: ErrWrongDownload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			ttl := time.Hour
			if tt.credTTL != 0 {
				ttl = tt.credTTL
			}
			_, link, _ := mintFor(t, env, ttl)
			env.revocations.revoked["case-1/cred-1"] = tt.revoked
			env.clock.Advance(tt.after)
			caseID, download := "case-1", "files/core.bin"
			if tt.caseID != "" {
				caseID = tt.caseID
			}
			if tt.download != "" {
				download = tt.download
			}
			_, err := env.verifier.VerifyDownload(context.Background(), link, caseID, download)
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyDownload: %v, want %v", err, tt.want)
			}
			if err != nil {
				assertNoLeak(t, err, link)
				if Reason(err) == "" {
					t.Fatalf("%v is no refusal Reason knows: the gate would not count it", err)
				}
			}
		})
	}
	t.Run("a failing revocation check fails the check, not the link", func(t *testing.T) {
		env := newTestEnv(t)
		_, link, _ := mintFor(t, env, time.Hour)
		env.revocations.err = errStoreDown
		if _, err := env.verifier.VerifyDownload(context.Background(), link, "case-1", "files/core.bin"); !errors.Is(err, errStoreDown) || Reason(err) != "" {
			t.Fatalf("VerifyDownload: %v, want the store's error", err)
		}
	})
}

func TestACredentialIsNeverADownloadLinkNorALinkACredential(t *testing.T) {
	env := newTestEnv(t)
	credential, link, _ := mintFor(t, env, time.Hour)
	if _, err := env.verifier.VerifyDownload(context.Background(), credential, "case-1", "files/core.bin"); !errors.Is(err, ErrInvalid) {
		t.Errorf("a credential taken as a download link: %v, want %v", err, ErrInvalid)
	}
	if _, err := env.verifier.Verify(context.Background(), link); !errors.Is(err, ErrInvalid) {
		t.Errorf("a download link taken as a credential: %v, want %v", err, ErrInvalid)
	}
	if _, err := env.verifier.Login(context.Background(), "case-1-cred1a", link); !errors.Is(err, ErrInvalid) {
		t.Errorf("a download link taken as an SFTP password: %v, want %v", err, ErrInvalid)
	}
}

func TestForgedDownloadLinksAreRefused(t *testing.T) {
	env := newTestEnv(t)
	_, good, _ := mintFor(t, env, time.Hour)
	var claims downloadClaims
	decodeSegment(t, strings.Split(good, ".")[1], &claims)
	kid, ours, err := env.keys.signer()
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signWith := func(private ed25519.PrivateKey, dc downloadClaims, typ string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, dc)
		tok.Header["kid"] = kid
		if typ != "" {
			tok.Header["typ"] = typ
		}
		s, err := tok.SignedString(private)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sign := func(dc downloadClaims, typ string) string { return signWith(ours, dc, typ) }
	changed := func(change func(dc *downloadClaims)) downloadClaims {
		dc := claims
		change(&dc)
		return dc
	}
	for _, tc := range []struct{ name, link string }{
		{"a link whose download was changed without signing again", func() string {
			p := strings.Split(good, ".")
			var payload map[string]any
			decodeSegment(t, p[1], &payload)
			payload["dl"] = "archive.zip"
			return p[0] + "." + encodeSegment(t, payload) + "." + p[2]
		}()},
		{"a link with a character flipped in its signature", func() string {
			p := strings.Split(good, ".")
			return p[0] + "." + p[1] + "." + flipMiddle(p[2])
		}()},
		{"a link signed by another key under our kid", signWith(other, claims, downloadType)},
		{"a well-signed link of the plain JWT type", sign(claims, "JWT")},
		{"a well-signed link without a type", sign(claims, "")},
		{"a well-signed link for the credentials' audience", sign(changed(func(dc *downloadClaims) { dc.Audience = jwt.ClaimStrings{audience} }), downloadType)},
		{"a well-signed link living longer than links do", sign(changed(func(dc *downloadClaims) {
			dc.ExpiresAt = jwt.NewNumericDate(dc.IssuedAt.Add(DownloadLinkTTL + time.Second))
		}), downloadType)},
		{"a well-signed link outliving its credential", sign(changed(func(dc *downloadClaims) {
			dc.CredentialExpiry = jwt.NewNumericDate(dc.ExpiresAt.Add(-time.Second))
		}), downloadType)},
		{"a well-signed link for the admin role", sign(changed(func(dc *downloadClaims) { dc.Role = string(RoleAdmin) }), downloadType)},
		{"a well-signed link without a credential", sign(changed(func(dc *downloadClaims) { dc.Subject = "" }), downloadType)},
	} {
		t.Run(tc.name+" is refused as invalid", func(t *testing.T) {
			_, err := env.verifier.VerifyDownload(context.Background(), tc.link, "case-1", "files/core.bin")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("VerifyDownload: %v, want %v", err, ErrInvalid)
			}
		})
	}
}

func TestADownloadLinkIsNotMintedForACredentialThatEnded(t *testing.T) {
	env := newTestEnv(t)
	_, claims, err := env.issuer.Issue(Claims{Case: "case-1", CredentialID: "cred-1", Username: "u", Role: RoleCustomer}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	env.clock.Advance(time.Minute)
	if _, _, err := env.issuer.IssueDownload(claims, "archive.zip"); !errors.Is(err, ErrExpired) {
		t.Fatalf("IssueDownload for an expired credential: %v, want %v", err, ErrExpired)
	}
}

func TestTheGateCountsARefusedDownloadLink(t *testing.T) {
	g, e, _, trail := newGate(t, 10)
	_, claims, err := e.issuer.Issue(Claims{Case: "c1", CredentialID: "cred-1", Username: "c1-cred1a", Role: RoleCustomer}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	link, _, err := e.issuer.IssueDownload(claims, "archive.zip")
	if err != nil {
		t.Fatal(err)
	}
	k := Knock{Door: "api", Remote: netip.MustParseAddr("198.51.100.4"), On: "GET /api/v1/cases/c1/SHA256SUMS"}
	if _, err := g.DownloadLink(context.Background(), k, link, "c1", "archive.zip"); err != nil {
		t.Fatalf("the link's own download: %v", err)
	}
	_, err = g.DownloadLink(context.Background(), k, link, "c1", "SHA256SUMS")
	var refused *Refused
	if !errors.As(err, &refused) || !errors.Is(err, ErrWrongDownload) {
		t.Fatalf("another download: %v, want a refusal for %v", err, ErrWrongDownload)
	}
	if trail.counted["api"] != 1 || len(trail.records) != 1 || strings.Contains(trail.records[0].Detail, link) {
		t.Fatalf("counted %v, recorded %+v; want one refusal, without the link", trail.counted, trail.records)
	}
}
