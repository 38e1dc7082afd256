package upload

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Errors of the checksum extension.
var (
	ErrChecksumMismatch    = errors.New("checksum mismatch")
	ErrChecksumUnsupported = errors.New("unsupported checksum algorithm")
)

// ChecksumAlgorithms are the algorithms WriteChecked takes, as tus names
// them in Tus-Checksum-Algorithm.
var ChecksumAlgorithms = []string{"sha256", "sha1", "md5"}

// Checksum is the digest a client sends with one request's bytes.
type Checksum struct {
	Algorithm string // one of ChecksumAlgorithms
	Sum       []byte
}

func (c Checksum) newHash() (hash.Hash, error) {
	var h hash.Hash
	switch strings.ToLower(c.Algorithm) {
	case "sha256":
		h = sha256.New()
	case "sha1":
		h = sha1.New()
	case "md5":
		h = md5.New()
	default:
		return nil, fmt.Errorf("%w: %q (use %s)", ErrChecksumUnsupported, c.Algorithm, strings.Join(ChecksumAlgorithms, ", "))
	}
	if len(c.Sum) != h.Size() {
		return nil, fmt.Errorf("%w: a %s checksum has %d bytes, not %d", ErrChecksumMismatch, c.Algorithm, h.Size(), len(c.Sum))
	}
	return h, nil
}
