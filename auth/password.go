package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"strings"
)

// passwordAlphabet is what a short SFTP password is written in: lowercase
// letters and digits without the look-alikes 0, o, 1, l and i, so that it
// survives being read aloud, copied by hand and pasted.
const passwordAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// PasswordLength is the length of a short SFTP password: 26 symbols of 31
// carry 26·log2(31) ≈ 128.8 bits, well inside the 100 characters WinSCP's
// login box takes.
const PasswordLength = 26

// passwordHashPrefix names the scheme of a stored password hash.
const passwordHashPrefix = "sha256:"

// passwordDomain separates these hashes from every other SHA-256 in
// casedrop (file digests, manifests): the same bytes hashed for another
// purpose never equal a password hash.
const passwordDomain = "casedrop sftp password v1\x00"

// NewPassword returns a new short SFTP password and the hash to store
// instead of it.
func NewPassword() (password, hash string) {
	password, err := newPassword(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return password, hashPassword(password)
}

// newPassword draws a password from random.
func newPassword(random io.Reader) (string, error) {
	return drawSymbols(random, PasswordLength)
}

// drawSymbols draws n symbols of passwordAlphabet from random, uniformly:
// a byte of 248 or more (31·8) is drawn again rather than folded onto
// the first symbols.
func drawSymbols(random io.Reader, n int) (string, error) {
	const limit = 256 - 256%len(passwordAlphabet)
	var b strings.Builder
	buf := make([]byte, n)
	for b.Len() < n {
		if _, err := io.ReadFull(random, buf); err != nil {
			return "", err
		}
		for _, x := range buf {
			if int(x) < limit && b.Len() < n {
				b.WriteByte(passwordAlphabet[int(x)%len(passwordAlphabet)])
			}
		}
	}
	return b.String(), nil
}

// hashPassword is what is stored of a password. One SHA-256 is enough for
// a secret of 128 random bits (docs/decisions.md).
func hashPassword(password string) string {
	return passwordHashPrefix + domainHash(passwordDomain, password)
}

// domainHash is the hex SHA-256 of secret prefixed with domain, which
// says what the secret is for: the same bytes hashed for another purpose
// never give the same hash.
func domainHash(domain, secret string) string {
	sum := sha256.Sum256([]byte(domain + secret))
	return hex.EncodeToString(sum[:])
}

// passwordMatches reports whether password hashes to stored, in time that
// does not depend on where they differ.
func passwordMatches(stored, password string) bool {
	return subtle.ConstantTimeCompare([]byte(stored), []byte(hashPassword(password))) == 1
}

// passwordShaped reports whether s could be a short password: the length
// and alphabet of one. Anything else is refused without a lookup.
func passwordShaped(s string) bool {
	return symbolsShaped(s, PasswordLength)
}

// symbolsShaped reports whether s is n symbols of passwordAlphabet.
func symbolsShaped(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(passwordAlphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}
