package cases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/casedrop/casedrop/storage"
)

// FileState is where a file of a case is in its life.
type FileState string

// The states of a file.
const (
	FileUploading FileState = "uploading"
	FileComplete  FileState = "complete"
	FileRejected  FileState = "rejected"
)

// File is a file's entry in a case's catalog.
type File struct {
	Name string `json:"name"`
	// Object is the id of the stored object holding the bytes (names can
	// change, the object never moves).
	Object     string    `json:"object"`
	Size       int64     `json:"size"`
	SHA256     string    `json:"sha256,omitempty"`
	State      FileState `json:"state"`
	Via        string    `json:"via"`
	UploadedBy string    `json:"uploaded_by"`
	StartedAt  time.Time `json:"started_at"`
	// UploadedAt is when the file was complete (or rejected).
	UploadedAt *time.Time `json:"uploaded_at,omitempty"`
	// Reason says why a rejected file was refused.
	Reason string `json:"reason,omitempty"`
}

// MaxNameBytes is the longest file name accepted, in bytes of UTF-8.
const MaxNameBytes = 255

// ValidName reports whether name can name a file in a case: valid UTF-8,
// 1 to MaxNameBytes bytes, not "." or "..", no '/', no control characters
// and no bidirectional-text overrides (which disguise extensions).
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case len(name) > MaxNameBytes:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidName, MaxNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not UTF-8", ErrInvalidName)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is reserved", ErrInvalidName, name)
	case strings.ContainsRune(name, '/'):
		return fmt.Errorf("%w: contains '/' (cases have no folders)", ErrInvalidName)
	}
	for _, r := range name {
		if unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return fmt.Errorf("%w: contains control character %U", ErrInvalidName, r)
		}
	}
	return nil
}

func fileKey(caseID, name string) string {
	sum := sha256.Sum256([]byte(name))
	return Prefix(caseID) + "files/" + hex.EncodeToString(sum[:20]) + ".json"
}

// AddFile enters f into the case's catalog under f.Name or, when that name
// is taken by another file, under the first free "name (2).ext", "name
// (3).ext", ... so that a second upload never destroys the first. A name
// held by a rejected file is reused. It returns the name the file got.
func (c *Catalog) AddFile(ctx context.Context, caseID string, f File) (string, error) {
	if err := ValidName(f.Name); err != nil {
		return "", err
	}
	base := f.Name
	for n := 1; n <= 1000; n++ {
		if n > 1 {
			f.Name = numbered(base, n)
			if ValidName(f.Name) != nil {
				return "", fmt.Errorf("%w: too long to number", ErrInvalidName)
			}
		}
		err := putJSONIfAbsent(ctx, c.store, fileKey(caseID, f.Name), f)
		if err == nil {
			return f.Name, nil
		}
		if !errors.Is(err, storage.ErrExists) {
			return "", err
		}
		old, err := c.File(ctx, caseID, f.Name)
		if err == nil && old.State == FileRejected {
			return f.Name, putJSON(ctx, c.store, fileKey(caseID, f.Name), f)
		}
	}
	return "", ErrNameConflict
}

// numbered makes "name (n).ext", keeping compound extensions like .tar.gz.
func numbered(name string, n int) string {
	stem, ext := name, ""
	lower := strings.ToLower(name)
	for _, compound := range []string{".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst"} {
		if strings.HasSuffix(lower, compound) && len(name) > len(compound) {
			stem, ext = name[:len(name)-len(compound)], name[len(name)-len(compound):]
			break
		}
	}
	if ext == "" {
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			stem, ext = name[:i], name[i:]
		}
	}
	return fmt.Sprintf("%s (%d)%s", stem, n, ext)
}

// UpdateFile replaces the catalog entry of f.Name.
func (c *Catalog) UpdateFile(ctx context.Context, caseID string, f File) error {
	if err := ValidName(f.Name); err != nil {
		return err
	}
	return putJSON(ctx, c.store, fileKey(caseID, f.Name), f)
}

// RemoveFile drops the catalog entry of name (not the stored bytes).
func (c *Catalog) RemoveFile(ctx context.Context, caseID, name string) error {
	return c.store.Delete(ctx, fileKey(caseID, name))
}

// File returns the catalog entry of name, or ErrNotFound.
func (c *Catalog) File(ctx context.Context, caseID, name string) (File, error) {
	if err := ValidName(name); err != nil {
		return File{}, ErrNotFound
	}
	var f File
	err := getJSON(ctx, c.store, fileKey(caseID, name), &f)
	return f, err
}

// Files lists the case's catalog, sorted by name.
func (c *Catalog) Files(ctx context.Context, caseID string) ([]File, error) {
	infos, err := c.store.List(ctx, Prefix(caseID)+"files/")
	if err != nil {
		return nil, err
	}
	files := make([]File, 0, len(infos))
	for _, info := range infos {
		var f File
		err := getJSON(ctx, c.store, info.Key, &f)
		if errors.Is(err, ErrNotFound) {
			continue // removed between List and Open
		}
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

// RenameFile moves the catalog entry of from to the free name to (a name
// held by a rejected file counts as free). The stored bytes do not move.
func (c *Catalog) RenameFile(ctx context.Context, caseID, from, to string) (File, error) {
	if err := ValidName(to); err != nil {
		return File{}, err
	}
	f, err := c.File(ctx, caseID, from)
	if err != nil {
		return File{}, err
	}
	if from == to {
		return f, nil
	}
	f.Name = to
	err = putJSONIfAbsent(ctx, c.store, fileKey(caseID, to), f)
	if errors.Is(err, storage.ErrExists) {
		old, getErr := c.File(ctx, caseID, to)
		if getErr != nil || old.State != FileRejected {
			return File{}, fmt.Errorf("%w: %s", ErrNameConflict, to)
		}
		err = putJSON(ctx, c.store, fileKey(caseID, to), f)
	}
	if err != nil {
		return File{}, err
	}
	return f, c.store.Delete(ctx, fileKey(caseID, from))
}

// Summary is a case with the number and total size of its complete files.
type Summary struct {
	Case
	FileCount int   `json:"file_count"`
	Bytes     int64 `json:"bytes"`
}

// Summarize counts the complete files of rec's case.
func (c *Catalog) Summarize(ctx context.Context, rec Case) (Summary, error) {
	files, err := c.Files(ctx, rec.ID)
	if err != nil {
		return Summary{}, err
	}
	s := Summary{Case: rec}
	for _, f := range files {
		if f.State == FileComplete {
			s.FileCount++
			s.Bytes += f.Size
		}
	}
	return s, nil
}
