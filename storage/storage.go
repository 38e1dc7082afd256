// Package storage is casedrop's object store: whole objects and multipart
// uploads, behind one interface with two implementations (S3-compatible via
// minio-go in storage/s3store, local disk in storage/diskstore). Nothing in
// this package knows about cases, files or credentials; keys are opaque
// slash-separated paths chosen by the callers.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Errors callers decide on. Implementations wrap them with %w.
var (
	// ErrNotFound: no object (or multipart upload) under that key or id.
	ErrNotFound = errors.New("storage: not found")
	// ErrExists: PutIfAbsent found an object already stored under the key.
	ErrExists = errors.New("storage: object exists")
	// ErrChanged: PutIfMatch found the key holding another object than the
	// one whose ETag it was given, or none at all.
	ErrChanged = errors.New("storage: object changed")
	// ErrInvalidKey: the key is not a valid object key (see ValidKey).
	ErrInvalidKey = errors.New("storage: invalid key")

	// ErrUnavailable: the store could not be reached or did not answer (a
	// refused or reset connection, a timeout, a failed name lookup, an S3
	// 5xx such as ServiceUnavailable or SlowDown, a local disk answering
	// I/O errors). The same operation may succeed later.
	ErrUnavailable = errors.New("storage: unavailable")
	// ErrNoSpace: the store has no room for what was written (a full file
	// system or disk quota, MinIO's XMinioStorageFull, a bucket quota).
	// Writes succeed again once space is freed.
	ErrNoSpace = errors.New("storage: no space left")
)

// Fault returns ErrUnavailable or ErrNoSpace when err is one of them: a
// fault of the store itself rather than an answer about a key, which
// callers turn into "try again later". Otherwise it returns nil.
func Fault(err error) error {
	switch {
	case errors.Is(err, ErrUnavailable):
		return ErrUnavailable
	case errors.Is(err, ErrNoSpace):
		return ErrNoSpace
	}
	return nil
}

// Answered reports whether err is the store's answer about a key rather
// than a failure: no object there (ErrNotFound), or a condition of a
// conditional write that did not hold (ErrExists, ErrChanged). The store
// was reached and did its job.
func Answered(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) || errors.Is(err, ErrChanged)
}

// MinPartSize is the smallest size of a multipart upload's part other than
// the last, as S3 requires. Callers keep any smaller tail themselves.
const MinPartSize = 5 << 20

// MaxParts is the most parts one multipart upload may have (S3's limit).
const MaxParts = 10000

// MaxPartSize is the largest part of a multipart upload (S3's limit).
// Every implementation refuses larger parts, so that code working on one
// store works on S3.
const MaxPartSize = 5 << 30

// ValidPart reports whether part number of size bytes may be stored:
// number in 1..MaxParts, size in 0..MaxPartSize.
func ValidPart(number int, size int64) error {
	if number < 1 || number > MaxParts {
		return fmt.Errorf("part number %d outside 1..%d", number, MaxParts)
	}
	if size < 0 || size > MaxPartSize {
		return fmt.Errorf("part size %d outside 0..%d", size, int64(MaxPartSize))
	}
	return nil
}

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
	ETag    string
}

// Object is an open stored object: readable, seekable (for ranged reads)
// and closable. Reads are streamed from the store, never buffered whole.
type Object interface {
	io.ReadSeekCloser
	Info() Info
}

// Part is one stored part of a multipart upload.
type Part struct {
	Number int
	ETag   string
	Size   int64
}

// Multipart names an unfinished multipart upload.
type Multipart struct {
	Key      string
	UploadID string
	Started  time.Time
}

// SortMultiparts sorts uploads as ListMultiparts returns them: by key,
// then by start, then by upload id.
func SortMultiparts(ups []Multipart) {
	slices.SortFunc(ups, func(a, b Multipart) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.UploadID, b.UploadID)
	})
}

// Store is what every object store implements, and what every wrapper of
// one (metrics, fault injection in tests) passes through: whole objects,
// the multipart uploads the ingest streams files into, and a readiness
// check. Consumers declare the few methods they use as interfaces of their
// own. What only some stores can do is an optional interface of its own
// (Digester), found by a type assertion. Every method is safe for
// concurrent use.
type Store interface {
	// Put stores r (exactly size bytes) under key, replacing any object there.
	// Readers never see a partly written object.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// PutIfAbsent is Put that fails with ErrExists when key already holds an
	// object; of two racing callers exactly one succeeds.
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error
	// PutIfMatch is Put that replaces only the object whose Info.ETag is
	// etag: when key holds another object, or none, it fails with
	// ErrChanged and stores nothing. Of racing callers naming the same
	// ETag, exactly one succeeds, provided they store different bytes: on
	// S3 an ETag is the content's MD5, so a replacement with the same bytes
	// keeps it. Some S3-compatible stores ignore the condition (If-Match)
	// and replace unconditionally; casedrop's are checked by the contract.
	PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) error
	// Open opens the object under key for reading, or fails with ErrNotFound.
	Open(ctx context.Context, key string) (Object, error)
	// Stat describes the object under key, or fails with ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object under key; deleting a missing key is no error.
	Delete(ctx context.Context, key string) error
	// List returns every object whose key starts with prefix, sorted by key.
	// Unfinished multipart uploads are not objects and are not listed.
	List(ctx context.Context, prefix string) ([]Info, error)

	// NewMultipart starts a multipart upload that will become the object key.
	NewMultipart(ctx context.Context, key string) (uploadID string, err error)
	// PutPart stores part number (1..MaxParts) of the upload, exactly size
	// bytes from r. Storing the same number again replaces that part.
	PutPart(ctx context.Context, key, uploadID string, number int, r io.Reader, size int64) (Part, error)
	// CopyPart stores as part number of the upload size bytes of the object
	// srcKey from offset, copied inside the store (S3's UploadPartCopy); a
	// part copied is at most 5 GiB. The source may be the upload's own key:
	// it is read as it is before the upload completes.
	CopyPart(ctx context.Context, key, uploadID string, number int, srcKey string, offset, size int64) (Part, error)
	// CompleteMultipart joins parts, in order, into the object key and ends
	// the upload. Every part but the last must be at least MinPartSize.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) (Info, error)
	// AbortMultipart ends the upload and drops its parts; aborting an
	// unknown upload is no error.
	AbortMultipart(ctx context.Context, key, uploadID string) error
	// ListMultiparts returns the unfinished multipart uploads whose key
	// starts with prefix, sorted (SortMultiparts).
	ListMultiparts(ctx context.Context, prefix string) ([]Multipart, error)

	// Ping reports whether the store takes writes now, failing with
	// ErrUnavailable or ErrNoSpace when it does not; /readyz asks it.
	Ping(ctx context.Context) error
}

// Digester is an optional capability of a store: it keeps a file's SHA-256
// on the stored object itself (S3 object tagging), so that the store's own
// tools can tell what the bytes should hash to without casedrop's catalog.
// s3store has it; diskstore has not (a file has no tags). A wrapper has it
// only when the store it wraps has it.
type Digester interface {
	SetDigest(ctx context.Context, key, sha256hex string) error
	// Digest returns what SetDigest kept, or "" when nothing was.
	Digest(ctx context.Context, key string) (string, error)
}

// maxKey is the most bytes a key may have; maxSegment the most one segment
// may have: each segment is a file or directory name on disk, for diskstore
// and for MinIO's drives alike (Linux's NAME_MAX).
const (
	maxKey     = 900
	maxSegment = 255
)

// ValidKey reports whether key is a well-formed object key: slash-separated
// segments, each non-empty, of printable ASCII without backslash, not
// starting with "." (which also refuses "." and ".."), at most 255 bytes;
// at most 900 bytes in all. These are the rules of every implementation:
// each refuses other keys with ErrInvalidKey, so a key that works on one
// works on the others. The dot keeps diskstore's hidden directories (and
// any a store keeps beside the objects) out of reach of every key.
func ValidKey(key string) error {
	if key == "" || len(key) > maxKey {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" {
			return fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
		if seg[0] == '.' {
			return fmt.Errorf("%w: %q: a segment starts with a dot", ErrInvalidKey, key)
		}
		if len(seg) > maxSegment {
			return fmt.Errorf("%w: %q: a segment is longer than %d bytes", ErrInvalidKey, key, maxSegment)
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; c < 0x21 || c > 0x7e || c == '\\' {
				return fmt.Errorf("%w: %q", ErrInvalidKey, key)
			}
		}
	}
	return nil
}

// ValidPrefix reports whether some valid key could start with prefix: the
// segments before its last slash make a valid key, and its last segment
// does not start with a dot. Listing any other prefix finds nothing.
func ValidPrefix(prefix string) bool {
	last := prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		if ValidKey(prefix[:i]) != nil {
			return false
		}
		last = prefix[i+1:]
	}
	return !strings.HasPrefix(last, ".")
}
