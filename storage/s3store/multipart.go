package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/casedrop/casedrop/storage"
)

// NewMultipart starts a multipart upload that will become the object key.
func (s *Store) NewMultipart(ctx context.Context, key string) (string, error) {
	if err := storage.ValidKey(key); err != nil {
		return "", err
	}
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, s.name(key), minio.PutObjectOptions{})
	if err != nil {
		return "", s.err(ctx, "new multipart", key, err)
	}
	return id, nil
}

// PutPart stores part number of the upload, streaming exactly size bytes
// from r, replacing any part stored under that number before.
func (s *Store) PutPart(ctx context.Context, key, uploadID string, number int, r io.Reader, size int64) (storage.Part, error) {
	if err := storage.ValidKey(key); err != nil {
		return storage.Part{}, err
	}
	if err := storage.ValidPart(number, size); err != nil {
		return storage.Part{}, fmt.Errorf("s3store: put part %d of %q: %w", number, key, err)
	}
	if !possibleID(uploadID) {
		return storage.Part{}, fmt.Errorf("s3store: put part %d of %q: upload %q: %w", number, key, uploadID, storage.ErrNotFound)
	}
	// DisableContentSha256: no SHA-256 over the body, which over plain HTTP
	// minio-go would otherwise compute chunk by chunk (aws-chunked signing).
	b := body(r, size)
	p, err := s.core.PutObjectPart(ctx, s.bucket, s.name(key), uploadID, number, b, size,
		minio.PutObjectPartOptions{DisableContentSha256: true})
	b.fence()
	if err != nil {
		return storage.Part{}, s.err(ctx, fmt.Sprintf("put part %d of", number), key, err)
	}
	return storage.Part{Number: number, ETag: strings.Trim(p.ETag, `"`), Size: size}, nil
}

// CopyPart stores as part number of the upload size bytes of the object
// srcKey from offset, copied by the server (UploadPartCopy).
func (s *Store) CopyPart(ctx context.Context, key, uploadID string, number int, srcKey string, offset, size int64) (storage.Part, error) {
	if err := storage.ValidKey(key); err != nil {
		return storage.Part{}, err
	}
	if err := storage.ValidKey(srcKey); err != nil {
		return storage.Part{}, err
	}
	if err := storage.ValidPart(number, size); err != nil {
		return storage.Part{}, fmt.Errorf("s3store: copy part %d of %q: %w", number, key, err)
	}
	if offset < 0 || size == 0 {
		return storage.Part{}, fmt.Errorf("s3store: copy part %d of %q: range %d+%d", number, key, offset, size)
	}
	if !possibleID(uploadID) {
		return storage.Part{}, fmt.Errorf("s3store: copy part %d of %q: upload %q: %w", number, key, uploadID, storage.ErrNotFound)
	}
	p, err := s.core.CopyObjectPart(ctx, s.bucket, s.name(srcKey), s.bucket, s.name(key), uploadID, number, offset, size, nil)
	if err != nil {
		return storage.Part{}, s.err(ctx, fmt.Sprintf("copy part %d of", number), key, err)
	}
	return storage.Part{Number: number, ETag: strings.Trim(p.ETag, `"`), Size: size}, nil
}

// CompleteMultipart joins parts, in order, into the object key and ends the
// upload. The server checks the parts (ETags, MinPartSize) and this their
// order; when they are refused the upload stays as it was.
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []storage.Part) (storage.Info, error) {
	if err := storage.ValidKey(key); err != nil {
		return storage.Info{}, err
	}
	if !possibleID(uploadID) {
		return storage.Info{}, fmt.Errorf("s3store: complete %q: upload %q: %w", key, uploadID, storage.ErrNotFound)
	}
	complete := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		// MinIO takes a part listed twice; S3 and diskstore do not.
		if i > 0 && p.Number <= parts[i-1].Number {
			return storage.Info{}, fmt.Errorf("s3store: complete %q: part %d listed after part %d: parts must be in ascending order", key, p.Number, parts[i-1].Number)
		}
		complete[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag}
	}
	_, err := s.core.CompleteMultipartUpload(ctx, s.bucket, s.name(key), uploadID, complete, minio.PutObjectOptions{})
	if err != nil {
		return storage.Info{}, s.err(ctx, "complete", key, err)
	}
	// The completion's answer has no size or time; ask for them.
	return s.Stat(ctx, key)
}

// AbortMultipart ends the upload and drops its parts; aborting an unknown
// upload is no error.
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	if err := storage.ValidKey(key); err != nil {
		return err
	}
	if !possibleID(uploadID) {
		return nil
	}
	err := s.core.AbortMultipartUpload(ctx, s.bucket, s.name(key), uploadID)
	if err != nil {
		if err := s.err(ctx, "abort", key, err); !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	return nil
}

// ListMultiparts returns the unfinished multipart uploads whose key starts
// with prefix, sorted by key and then by start.
//
// MinIO lists uploads by prefix only for a prefix that is a whole key; for
// any other prefix it lists nothing. Without a prefix it lists, from memory,
// the uploads that MinIO node started since it started itself. So this asks
// for both and keeps the union: on S3 that is every upload under prefix, on
// a single MinIO node every upload under prefix started since MinIO's last
// restart plus all uploads of prefix itself.
func (s *Store) ListMultiparts(ctx context.Context, prefix string) ([]storage.Multipart, error) {
	full := s.prefix + prefix
	seen := map[string]bool{}
	var ups []storage.Multipart
	add := func(u minio.ObjectMultipartInfo) {
		if strings.HasPrefix(u.Key, full) && !seen[u.UploadID] {
			seen[u.UploadID] = true
			ups = append(ups, storage.Multipart{
				Key:      strings.TrimPrefix(u.Key, s.prefix),
				UploadID: u.UploadID,
				Started:  u.Initiated,
			})
		}
	}
	for _, p := range slices.Compact([]string{full, ""}) {
		if err := s.listUploads(ctx, p, add); err != nil {
			return nil, s.err(ctx, "list multiparts", prefix, err)
		}
	}
	storage.SortMultiparts(ups)
	return ups, nil
}

// listUploads calls add with each upload ListMultipartUploads returns for
// prefix, page by page.
func (s *Store) listUploads(ctx context.Context, prefix string, add func(minio.ObjectMultipartInfo)) error {
	var keyMarker, idMarker string
	for {
		res, err := s.core.ListMultipartUploads(ctx, s.bucket, prefix, keyMarker, idMarker, "", 1000)
		if err != nil {
			return err
		}
		for _, u := range res.Uploads {
			add(u)
		}
		if !res.IsTruncated || res.NextKeyMarker == "" && res.NextUploadIDMarker == "" {
			return nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}

// possibleID reports whether id could be an upload id: S3's and MinIO's
// are URL-safe tokens. MinIO refuses others with an error of its own rather
// than NoSuchUpload, and none of them names an upload.
func possibleID(id string) bool {
	if id == "" || len(id) > 1024 || strings.Contains(id, "..") {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~+=", c) >= 0) {
			return false
		}
	}
	return true
}
