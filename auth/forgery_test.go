package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifyRefusesForgeries checks that everything but a genuine credential
// is refused with ErrInvalid, and that the refusal quotes nothing of it.
func TestVerifyRefusesForgeries(t *testing.T) {
	tests := []struct {
		name  string
		forge func(t *testing.T, env *testEnv, good string) string
	}{
		{"a token with a character flipped in its payload", func(t *testing.T, env *testEnv, good string) string {
			p := strings.Split(good, ".")
			return p[0] + "." + flipMiddle(p[1]) + "." + p[2]
		}},
		{"a token whose case claim was changed and re-encoded without re-signing", func(t *testing.T, env *testEnv, good string) string {
			p := strings.Split(good, ".")
			var payload map[string]any
			decodeSegment(t, p[1], &payload)
			payload["case"] = "case-2"
			return p[0] + "." + encodeSegment(t, payload) + "." + p[2]
		}},
		{"a token with a character flipped in its signature", func(t *testing.T, env *testEnv, good string) string {
			p := strings.Split(good, ".")
			return p[0] + "." + p[1] + "." + flipMiddle(p[2])
		}},
		{"a token without its signature", func(t *testing.T, env *testEnv, good string) string {
			p := strings.Split(good, ".")
			return p[0] + "." + p[1] + "."
		}},
		{"a truncated token", func(t *testing.T, env *testEnv, good string) string {
			return good[:len(good)-10]
		}},
		{"a token cut in half", func(t *testing.T, env *testEnv, good string) string {
			return good[:len(good)/2]
		}},
		{"garbage", func(t *testing.T, env *testEnv, good string) string {
			return "this-is-not-a-token-at-all"
		}},
		{"three garbage segments", func(t *testing.T, env *testEnv, good string) string {
			return "Zm9vYmFy.YmF6cXV4.cXV1eGZyb2I"
		}},
		{"an empty token", func(t *testing.T, env *testEnv, good string) string {
			return ""
		}},
		{"an alg none token", func(t *testing.T, env *testEnv, good string) string {
			header := map[string]any{"alg": "none", "typ": "JWT", "kid": kidOf(t, good)}
			return encodeSegment(t, header) + "." + strings.Split(good, ".")[1] + "."
		}},
		{"an HS256 token keyed with the Ed25519 public key (key confusion)", func(t *testing.T, env *testEnv, good string) string {
			kid := kidOf(t, good)
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, env.validClaims())
			tok.Header["kid"] = kid
			s, err := tok.SignedString([]byte(env.keys.PublicKeys()[kid]))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"a token with an unknown kid", func(t *testing.T, env *testEnv, good string) string {
			return signWithNewKey(t, env.validClaims(), "0123456789abcdef")
		}},
		{"a token with no kid", func(t *testing.T, env *testEnv, good string) string {
			return signWithNewKey(t, env.validClaims(), "")
		}},
		{"a token signed by another key under one of our kids", func(t *testing.T, env *testEnv, good string) string {
			return signWithNewKey(t, env.validClaims(), kidOf(t, good))
		}},
		{"a token from another key set", func(t *testing.T, env *testEnv, good string) string {
			other := newTestEnv(t)
			return other.issue(t, Claims{Case: "case-1", CredentialID: "cred-1", Username: "u"}, 0)
		}},
		{"a well-signed token claiming a life over 120h", func(t *testing.T, env *testEnv, good string) string {
			c := env.validClaims()
			c.ExpiresAt = jwt.NewNumericDate(c.IssuedAt.Add(MaxTTL + time.Second))
			return env.sign(t, c)
		}},
		{"a well-signed token that expires before it was issued", func(t *testing.T, env *testEnv, good string) string {
			c := env.validClaims()
			c.ExpiresAt = jwt.NewNumericDate(c.IssuedAt.Add(time.Hour))
			c.IssuedAt = jwt.NewNumericDate(c.IssuedAt.Add(2 * time.Hour))
			return env.sign(t, c)
		}},
		{"a well-signed token issued in the future", func(t *testing.T, env *testEnv, good string) string {
			c := env.validClaims()
			c.IssuedAt = jwt.NewNumericDate(c.IssuedAt.Add(time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(c.IssuedAt.Add(time.Hour))
			return env.sign(t, c)
		}},
		{"a well-signed token from another issuer", func(t *testing.T, env *testEnv, good string) string {
			c := env.validClaims()
			c.Issuer = "https://elsewhere.example"
			return env.sign(t, c)
		}},
		{"a well-signed token for another audience", func(t *testing.T, env *testEnv, good string) string {
			c := env.validClaims()
			c.Audience = jwt.ClaimStrings{"someone-else"}
			return env.sign(t, c)
		}},
		{"a well-signed expired token from another issuer", func(t *testing.T, env *testEnv, good string) string {
			c := env.validClaims()
			c.Issuer = "https://elsewhere.example"
			c.IssuedAt = jwt.NewNumericDate(c.IssuedAt.Add(-3 * time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(c.IssuedAt.Add(time.Hour))
			return env.sign(t, c)
		}},
		{"a well-signed token with an unknown role", func(t *testing.T, env *testEnv, good string) string {
			c := env.validClaims()
			c.Role = "admin"
			return env.sign(t, c)
		}},
		{"a well-signed token with a future nbf", func(t *testing.T, env *testEnv, good string) string {
			c := env.validClaims()
			c.NotBefore = jwt.NewNumericDate(c.IssuedAt.Add(30 * time.Minute))
			return env.sign(t, c)
		}},
		{"a token whose signature's last character is a non-canonical spelling", func(t *testing.T, env *testEnv, good string) string {
			p := strings.Split(good, ".")
			return p[0] + "." + p[1] + "." + nonCanonical(t, p[2])
		}},
		{"a token whose header's last character is a non-canonical spelling", func(t *testing.T, env *testEnv, good string) string {
			p := strings.Split(good, ".")
			return nonCanonical(t, p[0]) + "." + p[1] + "." + p[2]
		}},
		{"a token with a newline inside its signature", func(t *testing.T, env *testEnv, good string) string {
			return good[:len(good)-10] + "\n" + good[len(good)-10:]
		}},
		{"a token with a space inside", func(t *testing.T, env *testEnv, good string) string {
			return good[:40] + " " + good[40:]
		}},
		{"a token with a trailing newline", func(t *testing.T, env *testEnv, good string) string {
			return good + "\n"
		}},
		{"a token with leading and trailing spaces", func(t *testing.T, env *testEnv, good string) string {
			return " " + good + " "
		}},
		{"a token with padding after its signature", func(t *testing.T, env *testEnv, good string) string {
			return good + "=="
		}},
		{"a token with a fourth segment", func(t *testing.T, env *testEnv, good string) string {
			return good + ".e30"
		}},
		{"a well-signed token without a case", missing(func(c *tokenClaims) { c.Case = "" })},
		{"a well-signed token without a role", missing(func(c *tokenClaims) { c.Role = "" })},
		{"a well-signed token without a jti", missing(func(c *tokenClaims) { c.ID = "" })},
		{"a well-signed token without a sub", missing(func(c *tokenClaims) { c.Subject = "" })},
		{"a well-signed token without an iat", missing(func(c *tokenClaims) { c.IssuedAt = nil })},
		{"a well-signed token without an exp", missing(func(c *tokenClaims) { c.ExpiresAt = nil })},
		{"a well-signed token without an iss", missing(func(c *tokenClaims) { c.Issuer = "" })},
		{"a well-signed token without an aud", missing(func(c *tokenClaims) { c.Audience = nil })},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is invalid", func(t *testing.T) {
			env := newTestEnv(t)
			good := env.issue(t, Claims{Case: "case-1", CredentialID: "cred-1", Username: "u"}, 0)
			if _, err := env.verifier.Verify(context.Background(), good); err != nil {
				t.Fatalf("the genuine token is refused: %v", err)
			}
			forged := tt.forge(t, env, good)
			_, err := env.verifier.Verify(context.Background(), forged)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify: %v, want ErrInvalid", err)
			}
			assertNoLeak(t, err, forged)
			_, err = env.verifier.VerifyForCase(context.Background(), forged, "case-1")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("VerifyForCase: %v, want ErrInvalid", err)
			}
		})
	}
}

// nonCanonical respells the last character of a base64url segment whose
// length leaves unused low bits in it (an Ed25519 signature's 86
// characters leave 4): same bytes when decoded leniently, another string.
func nonCanonical(t *testing.T, seg string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	unused := map[int]int{2: 4, 3: 2}[len(seg)%4]
	if unused == 0 {
		t.Fatalf("a segment of %d characters has no unused bits", len(seg))
	}
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	respelled := seg[:len(seg)-1] + string(alphabet[last|1])
	if respelled == seg {
		respelled = seg[:len(seg)-1] + string(alphabet[last^1])
	}
	lenient, err1 := base64.RawURLEncoding.DecodeString(respelled)
	want, err2 := base64.RawURLEncoding.DecodeString(seg)
	if err1 != nil || err2 != nil || !bytes.Equal(lenient, want) {
		t.Fatalf("the respelled segment does not decode to the same bytes (%v, %v)", err1, err2)
	}
	return respelled
}

// missing forges a well-signed token whose claims were changed by drop.
func missing(drop func(*tokenClaims)) func(*testing.T, *testEnv, string) string {
	return func(t *testing.T, env *testEnv, _ string) string {
		c := env.validClaims()
		drop(&c)
		return env.sign(t, c)
	}
}

// signWithNewKey signs tc with a key of no known key set, under kid.
func signWithNewKey(t *testing.T, tc tokenClaims, kid string) string {
	t.Helper()
	_, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, tc)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
