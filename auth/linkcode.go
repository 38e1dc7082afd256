package auth

import "crypto/rand"

// LinkCodeLength is the length of an upload link's code: 32 symbols of
// the password alphabet carry 32·log2(31) ≈ 158 bits, and need no escaping
// in a URL.
const LinkCodeLength = 32

// linkCodeDomain separates the hashes of link codes from those of SFTP
// passwords and every other SHA-256 in casedrop.
const linkCodeDomain = "casedrop upload link v1\x00"

// NewLinkCode returns a new upload link's code and its hash (64 hex
// digits), which is all that is stored of it: the record of the link is
// found by the hash of the code a browser presents.
func NewLinkCode() (code, hash string) {
	code, err := drawSymbols(rand.Reader, LinkCodeLength)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return code, domainHash(linkCodeDomain, code)
}

// LinkCodeHash returns the hash of code as NewLinkCode returned it, or ""
// for anything not shaped like a code, which is then looked up nowhere.
func LinkCodeHash(code string) string {
	if !symbolsShaped(code, LinkCodeLength) {
		return ""
	}
	return domainHash(linkCodeDomain, code)
}
