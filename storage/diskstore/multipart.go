package diskstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/casedrop/casedrop/storage"
)

// An upload's directory, <root>/.multipart/<uploadID>, holds the target key
// in keyFile and part n in fmt.Sprintf(partFile, n).
const (
	keyFile  = "key"
	partFile = "part.%05d"
)

// NewMultipart starts a multipart upload that will become the object key.
func (s *Store) NewMultipart(ctx context.Context, key string) (string, error) {
	if err := storage.ValidKey(key); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	id := base64.RawURLEncoding.EncodeToString(b[:])
	dir := filepath.Join(s.multipart, id)
	if err := os.Mkdir(dir, dirPerm); err != nil {
		return "", fmt.Errorf("diskstore: new multipart %q: %w", key, fault(err))
	}
	// The key file appears whole or not at all; an upload directory without
	// one is ignored.
	tmp, _, err := writeTemp(ctx, dir, "tmp-*", strings.NewReader(key), int64(len(key)))
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, keyFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err == nil {
		err = syncDir(s.multipart)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("diskstore: new multipart %q: %w", key, fault(err))
	}
	return id, nil
}

// PutPart stores part number of the upload, exactly size bytes from r,
// replacing any part stored under that number before.
func (s *Store) PutPart(ctx context.Context, key, uploadID string, number int, r io.Reader, size int64) (storage.Part, error) {
	if err := storage.ValidKey(key); err != nil {
		return storage.Part{}, err
	}
	if err := storage.ValidPart(number, size); err != nil {
		return storage.Part{}, fmt.Errorf("diskstore: put part %d of %q: %w", number, key, err)
	}
	dir, err := s.upload(key, uploadID)
	if err != nil {
		return storage.Part{}, err
	}
	// The part is written inside the upload's directory, so an abort
	// meanwhile takes it along and the rename below fails.
	tmp, fi, err := writeTemp(ctx, dir, "tmp-*", r, size)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, fmt.Sprintf(partFile, number)))
		if err != nil {
			_ = os.Remove(tmp)
		}
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return storage.Part{}, uploadErr("put part", key, uploadID, err)
	}
	return storage.Part{Number: number, ETag: etag(fi), Size: fi.Size()}, nil
}

// CopyPart stores as part number of the upload size bytes of the object
// srcKey from offset. io.Copy between two files uses copy_file_range, so
// the bytes stay in the kernel (or are shared, on file systems that clone).
func (s *Store) CopyPart(ctx context.Context, key, uploadID string, number int, srcKey string, offset, size int64) (storage.Part, error) {
	if err := storage.ValidKey(srcKey); err != nil {
		return storage.Part{}, err
	}
	if offset < 0 || size < 0 {
		return storage.Part{}, fmt.Errorf("diskstore: copy part %d of %q: range %d+%d", number, key, offset, size)
	}
	src, err := os.Open(s.path(srcKey))
	if err != nil {
		return storage.Part{}, notFound("copy part from", srcKey, err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return storage.Part{}, notFound("copy part from", srcKey, err)
	}
	if offset+size > fi.Size() {
		return storage.Part{}, fmt.Errorf("diskstore: copy part %d of %q: range %d+%d beyond the %d bytes of %q", number, key, offset, size, fi.Size(), srcKey)
	}
	if _, err := src.Seek(offset, io.SeekStart); err != nil {
		return storage.Part{}, fmt.Errorf("diskstore: copy part %d of %q: %w", number, key, fault(err))
	}
	return s.PutPart(ctx, key, uploadID, number, src, size)
}

// CompleteMultipart joins parts, in order, into the object key and ends the
// upload. As S3 does, it refuses parts out of order, parts whose ETag is not
// the stored part's, and parts but the last smaller than MinPartSize; the
// upload stays as it was then.
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []storage.Part) (storage.Info, error) {
	if err := storage.ValidKey(key); err != nil {
		return storage.Info{}, err
	}
	dir, err := s.upload(key, uploadID)
	if err != nil {
		return storage.Info{}, err
	}
	if err := checkParts(dir, parts); err != nil {
		return storage.Info{}, fmt.Errorf("diskstore: complete %q: %w", key, fault(err))
	}
	f, err := os.CreateTemp(s.tmp, "complete-*")
	if err != nil {
		return storage.Info{}, fmt.Errorf("diskstore: complete %q: %w", key, fault(err))
	}
	fi, err := s.join(ctx, f, dir, parts)
	if err == nil {
		err = s.placeLocked(f.Name(), key, os.Rename)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return storage.Info{}, uploadErr("complete", key, uploadID, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return storage.Info{}, fmt.Errorf("diskstore: complete %q: drop upload: %w", key, fault(err))
	}
	return info(key, fi), nil
}

// join concatenates the parts into f, syncs and closes it. Each part is
// checked again once open, in case it was replaced after checkParts.
func (s *Store) join(ctx context.Context, f *os.File, dir string, parts []storage.Part) (fs.FileInfo, error) {
	err := func() error {
		for _, p := range parts {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := appendPart(f, dir, p); err != nil {
				return err
			}
		}
		return f.Sync()
	}()
	var fi fs.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return fi, err
}

// appendPart copies part p to the end of f; io.Copy between two *os.File
// uses copy_file_range, so the bytes need not pass through user space.
func appendPart(f *os.File, dir string, p storage.Part) error {
	pf, err := os.Open(filepath.Join(dir, fmt.Sprintf(partFile, p.Number)))
	if err != nil {
		return err
	}
	defer pf.Close()
	fi, err := pf.Stat()
	if err != nil {
		return err
	}
	if etag(fi) != strings.Trim(p.ETag, `"`) {
		return fmt.Errorf("part %d was replaced while completing", p.Number)
	}
	_, err = io.Copy(f, pf)
	return err
}

// checkParts applies S3's rules for a CompleteMultipartUpload request.
func checkParts(dir string, parts []storage.Part) error {
	if len(parts) == 0 {
		return errors.New("no parts")
	}
	for i, p := range parts {
		if p.Number < 1 || p.Number > storage.MaxParts {
			return fmt.Errorf("part number %d outside 1..%d", p.Number, storage.MaxParts)
		}
		if i > 0 && p.Number <= parts[i-1].Number {
			return fmt.Errorf("part %d listed after part %d: parts must be in ascending order", p.Number, parts[i-1].Number)
		}
		fi, err := os.Stat(filepath.Join(dir, fmt.Sprintf(partFile, p.Number)))
		if isNotExist(err) {
			return fmt.Errorf("part %d was not uploaded", p.Number)
		}
		if err != nil {
			return err
		}
		if etag(fi) != strings.Trim(p.ETag, `"`) {
			return fmt.Errorf("part %d: ETag %q is not the stored part's", p.Number, p.ETag)
		}
		if i < len(parts)-1 && fi.Size() < storage.MinPartSize {
			return fmt.Errorf("part %d has %d bytes, fewer than the %d every part but the last needs", p.Number, fi.Size(), storage.MinPartSize)
		}
	}
	return nil
}

// AbortMultipart ends the upload and drops its parts; aborting an unknown
// upload is no error.
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	if err := storage.ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := s.upload(key, uploadID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err == nil {
		err = os.RemoveAll(dir)
	}
	if err != nil {
		return fmt.Errorf("diskstore: abort %q: %w", key, fault(err))
	}
	return nil
}

// ListMultiparts returns the unfinished multipart uploads whose key starts
// with prefix, sorted by key and then by start.
func (s *Store) ListMultiparts(ctx context.Context, prefix string) ([]storage.Multipart, error) {
	entries, err := os.ReadDir(s.multipart)
	if err != nil {
		return nil, fmt.Errorf("diskstore: list multiparts: %w", fault(err))
	}
	var ups []storage.Multipart
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() || !validID(e.Name()) {
			continue
		}
		name := filepath.Join(s.multipart, e.Name(), keyFile)
		key, err := os.ReadFile(name)
		var fi fs.FileInfo
		if err == nil {
			fi, err = os.Stat(name)
		}
		if isNotExist(err) {
			continue // being created, completed or aborted
		}
		if err != nil {
			return nil, fmt.Errorf("diskstore: list multiparts: %w", fault(err))
		}
		if strings.HasPrefix(string(key), prefix) {
			ups = append(ups, storage.Multipart{Key: string(key), UploadID: e.Name(), Started: fi.ModTime()})
		}
	}
	storage.SortMultiparts(ups)
	return ups, nil
}

// upload returns the directory of the upload uploadID to key, or fails
// with storage.ErrNotFound if there is no such upload for that key.
func (s *Store) upload(key, uploadID string) (string, error) {
	if !validID(uploadID) {
		return "", fmt.Errorf("diskstore: upload %q of %q: %w", uploadID, key, storage.ErrNotFound)
	}
	dir := filepath.Join(s.multipart, uploadID)
	stored, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err == nil && string(stored) != key {
		err = fs.ErrNotExist
	}
	if err != nil {
		return "", uploadErr("upload", key, uploadID, err)
	}
	return dir, nil
}

// uploadErr wraps err, as storage.ErrNotFound when it says a file of the
// upload is missing: the upload was completed or aborted meanwhile.
func uploadErr(op, key, uploadID string, err error) error {
	if isNotExist(err) {
		return fmt.Errorf("diskstore: %s %q (upload %s): %w", op, key, uploadID, storage.ErrNotFound)
	}
	return fmt.Errorf("diskstore: %s %q (upload %s): %w", op, key, uploadID, fault(err))
}

// validID reports whether id could be one of our upload ids; anything else
// must not reach a file name.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
