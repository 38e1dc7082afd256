package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"regexp"
	"strings"
	"testing"
)

func TestALinkCodeHasOver128BitsAndOnlyItsDomainSeparatedHashIsKept(t *testing.T) {
	if bits := float64(LinkCodeLength) * math.Log2(float64(len(passwordAlphabet))); bits < 128 {
		t.Errorf("%d symbols carry %.1f bits, want at least 128", LinkCodeLength, bits)
	}
	c1, h1 := NewLinkCode()
	c2, h2 := NewLinkCode()
	if c1 == c2 || h1 == h2 {
		t.Fatal("two codes, or their hashes, are the same")
	}
	if !regexp.MustCompile(`^[a-z0-9]{32}$`).MatchString(c1) || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(h1) {
		t.Fatalf("code %q, hash %q: want 32 URL-safe characters and 64 hex digits", c1, h1)
	}
	if LinkCodeHash(c1) != h1 || LinkCodeHash(c2) != h2 {
		t.Fatal("LinkCodeHash does not give the hash NewLinkCode returned")
	}
	plain := sha256.Sum256([]byte(c1))
	if h1 == hex.EncodeToString(plain[:]) || strings.Contains(hashPassword(c1), h1) {
		t.Fatal("a code's hash is its bare SHA-256, or equals a password's hash of the same text")
	}
}

func TestOnlyWhatALinkCodeLooksLikeIsHashed(t *testing.T) {
	good, _ := NewLinkCode()
	for _, s := range []string{"", strings.ToUpper(good), good[:31], good + "a", good[:31] + "0", good[:31] + "/", " " + good[1:]} {
		if h := LinkCodeHash(s); h != "" {
			t.Errorf("LinkCodeHash(%q) = %q, want \"\"", s, h)
		}
	}
}
