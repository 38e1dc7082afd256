package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strings"
	"testing"
)

func TestAShortPasswordHasAtLeast128BitsAndFitsEveryLoginBox(t *testing.T) {
	if bits := float64(PasswordLength) * math.Log2(float64(len(passwordAlphabet))); bits < 128 {
		t.Errorf("%d symbols of %d carry %.1f bits, want at least 128", PasswordLength, len(passwordAlphabet), bits)
	}
	if PasswordLength > 64 {
		t.Errorf("passwords of %d characters, want at most 64", PasswordLength)
	}
	if strings.ContainsAny(passwordAlphabet, "0o1liIO") {
		t.Errorf("the alphabet %q holds look-alikes", passwordAlphabet)
	}
	seen := map[byte]bool{}
	for i := 0; i < len(passwordAlphabet); i++ {
		if c := passwordAlphabet[i]; seen[c] || !('a' <= c && c <= 'z' || '2' <= c && c <= '9') {
			t.Fatalf("the alphabet %q repeats %q or holds more than lowercase letters and digits", passwordAlphabet, c)
		}
		seen[passwordAlphabet[i]] = true
	}
}

func TestNewPasswordIsRandomShapedAndOnlyItsHashIsKept(t *testing.T) {
	p1, h1 := NewPassword()
	p2, h2 := NewPassword()
	for _, p := range []string{p1, p2} {
		if !passwordShaped(p) {
			t.Fatalf("password %q is not %d characters of the alphabet", p, PasswordLength)
		}
	}
	if p1 == p2 || h1 == h2 {
		t.Fatal("two passwords, or their hashes, are the same")
	}
	if strings.Contains(h1, p1) {
		t.Fatal("the hash holds the password")
	}
	if !passwordMatches(h1, p1) || passwordMatches(h1, p2) || passwordMatches(h2, p1) {
		t.Fatal("a password matches a hash that is not its own, or not its own")
	}
	plain := sha256.Sum256([]byte(p1))
	if strings.Contains(h1, hex.EncodeToString(plain[:])) {
		t.Fatal("the hash is the password's bare SHA-256: not separated from other digests")
	}
}

func TestNewPasswordDrawsAgainRatherThanFoldTheTopBytesOntoTheFirstSymbols(t *testing.T) {
	// 248 to 255 would fold onto the first 8 symbols (248 = 31·8) and make
	// them likelier: they are drawn again.
	var random []byte
	for b := 248; b <= 255; b++ {
		random = append(random, byte(b))
	}
	for b := range PasswordLength {
		random = append(random, byte(b))
	}
	random = append(random, bytes.Repeat([]byte{0}, PasswordLength)...) // what a second read may take
	got, err := newPassword(bytes.NewReader(random))
	if err != nil {
		t.Fatal(err)
	}
	if want := passwordAlphabet[:PasswordLength]; got != want {
		t.Fatalf("password %q, want %q: bytes over 247 were used", got, want)
	}
}

func TestOnlyWhatAPasswordLooksLikeIsLookedUp(t *testing.T) {
	good, _ := NewPassword()
	for s, want := range map[string]bool{
		good:                    true,
		strings.ToUpper(good):   false,
		good[:PasswordLength-1]: false,
		good + "a":              false,
		good[:25] + "0":         false,
		good[:25] + "l":         false,
		"":                      false,
		" " + good[1:]:          false,
	} {
		if passwordShaped(s) != want {
			t.Errorf("passwordShaped(%q) = %v, want %v", s, !want, want)
		}
	}
}
