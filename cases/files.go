package cases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
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
	// Reason says why a rejected file was refused, or why a quarantined
	// one was not scanned (over the scanner's size limit).
	Reason string `json:"reason,omitempty"`
	// Finding is the signature the scanner found in a quarantined file.
	Finding string `json:"finding,omitempty"`
	// ScannedAt is when the scanner gave its verdict (scanned files only).
	ScannedAt *time.Time `json:"scanned_at,omitempty"`
	// ReleasedAt and ReleaseReason: an admin released the file from
	// quarantine (Catalog.ReleaseFile); Finding still says what was found.
	ReleasedAt    *time.Time `json:"released_at,omitempty"`
	ReleaseReason string     `json:"release_reason,omitempty"`
	// ModTime is the modification time the uploader's client set (SFTP
	// setstat), if it set one: the time the file had where it came from.
	ModTime *time.Time `json:"modified_at,omitempty"`
}

// Modified is the file's modification time: the one its client set, else
// when it was complete, else when its upload started.
func (f File) Modified() time.Time {
	switch {
	case f.ModTime != nil:
		return *f.ModTime
	case f.UploadedAt != nil:
		return *f.UploadedAt
	}
	return f.StartedAt
}

// fileKey is where the catalog entry of name is kept: a hash of its
// NameKey, so that every spelling of one name finds the one entry, and any
// UTF-8 name maps to a safe key. The "n-" tells it from a legacyFileKey.
func fileKey(caseID, name string) string {
	sum := sha256.Sum256([]byte(NameKey(name)))
	return Prefix(caseID) + "files/n-" + hex.EncodeToString(sum[:20]) + ".json"
}

// legacyFileKey is where releases before NameKey kept the entry of name: a
// hash of the name exactly as given. Those entries stay where they are.
func legacyFileKey(caseID, name string) string {
	sum := sha256.Sum256([]byte(name))
	return Prefix(caseID) + "files/" + hex.EncodeToString(sum[:20]) + ".json"
}

func isLegacyFileKey(key string) bool { return !strings.HasPrefix(path.Base(key), "n-") }

// entry is a catalog entry and the key it is kept under.
type entry struct {
	File
	key string
}

// find returns the entry of name, spelled any way NameKey joins: under
// fileKey, else a legacy entry of exactly that name, else a legacy entry
// of the same NameKey.
func (c *Catalog) find(ctx context.Context, caseID, name string) (entry, error) {
	if name == "" || len(name) > 4*MaxNameBytes || !utf8.ValidString(name) {
		return entry{}, ErrNotFound
	}
	for _, key := range []string{fileKey(caseID, name), legacyFileKey(caseID, name)} {
		var f File
		err := getJSON(ctx, c.store, key, &f)
		if err == nil {
			return entry{f, key}, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return entry{}, err
		}
	}
	legacy, err := c.legacyEntries(ctx, caseID)
	if err != nil {
		return entry{}, err
	}
	if e, ok := legacy[NameKey(name)]; ok {
		return e, nil
	}
	return entry{}, ErrNotFound
}

// legacyEntries reads the case's entries kept under legacy keys, by the
// NameKey of their names (of two that share one, the first by name). Only
// cases with files from before NameKey have any: for others this is one
// listing and no reads.
func (c *Catalog) legacyEntries(ctx context.Context, caseID string) (map[string]entry, error) {
	infos, err := c.store.List(ctx, Prefix(caseID)+"files/")
	if err != nil {
		return nil, err
	}
	out := map[string]entry{}
	for _, info := range infos {
		if !isLegacyFileKey(info.Key) {
			continue
		}
		var f File
		err := getJSON(ctx, c.store, info.Key, &f)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		k := NameKey(f.Name)
		if old, ok := out[k]; !ok || f.Name < old.Name {
			out[k] = entry{f, info.Key}
		}
	}
	return out, nil
}

// AddFile enters f into the case's catalog under f.Name (in NFC) or, when
// that name is taken by another file, under the first free "name (2).ext",
// "name (3).ext", ... so that a second upload never destroys the first.
// Names that differ only by case or normalisation are the same name. A
// name held by a rejected file is reused. It returns the name the file got.
func (c *Catalog) AddFile(ctx context.Context, caseID string, f File) (string, error) {
	base, err := CanonicalName(f.Name)
	if err != nil {
		return "", err
	}
	legacy, err := c.legacyEntries(ctx, caseID)
	if err != nil {
		return "", err
	}
	for n := 1; n <= 1000; n++ {
		f.Name = base
		if n > 1 {
			f.Name = fitName(base, fmt.Sprintf(" (%d)", n))
			if err := ValidName(f.Name); err != nil {
				return "", err
			}
		}
		old, hasLegacy := legacy[NameKey(f.Name)]
		if hasLegacy && old.State != FileRejected {
			continue
		}
		key := fileKey(caseID, f.Name)
		err := putJSONIfAbsent(ctx, c.store, key, f)
		if errors.Is(err, storage.ErrExists) {
			var cur File
			if getJSON(ctx, c.store, key, &cur) != nil || cur.State != FileRejected {
				continue
			}
			err = putJSON(ctx, c.store, key, f)
		}
		if err != nil {
			return "", err
		}
		if hasLegacy { // the rejected file it replaces
			return f.Name, c.store.Delete(ctx, old.key)
		}
		return f.Name, nil
	}
	return "", ErrNameConflict
}

// UpdateFile replaces the catalog entry of f.Name, which holds f.Object,
// where it is kept (an entry an older release made keeps its key and its
// name, even one today's rules refuse).
func (c *Catalog) UpdateFile(ctx context.Context, caseID string, f File) error {
	e, err := c.find(ctx, caseID, f.Name)
	switch {
	case errors.Is(err, ErrNotFound):
		if err := ValidName(f.Name); err != nil {
			return err
		}
		return putJSON(ctx, c.store, fileKey(caseID, f.Name), f)
	case err != nil:
		return err
	case e.Object != f.Object:
		return fmt.Errorf("%w: %s", ErrNameConflict, f.Name)
	}
	f.Name = e.Name
	return putJSON(ctx, c.store, e.key, f)
}

// SetModTime records the modification time a client set on the file name,
// which holds object (whole seconds, as SFTP carries them).
func (c *Catalog) SetModTime(ctx context.Context, caseID, name, object string, t time.Time) error {
	e, err := c.find(ctx, caseID, name)
	if err != nil {
		return err
	}
	if e.Object != object {
		return fmt.Errorf("%w: %s", ErrNameConflict, name)
	}
	t = t.UTC().Truncate(time.Second)
	e.File.ModTime = &t
	return putJSON(ctx, c.store, e.key, e.File)
}

// RemoveFile drops the catalog entry of name (not the stored bytes).
func (c *Catalog) RemoveFile(ctx context.Context, caseID, name string) error {
	e, err := c.find(ctx, caseID, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.store.Delete(ctx, e.key)
}

// File returns the catalog entry of name, spelled in any case or
// normalisation, or ErrNotFound.
func (c *Catalog) File(ctx context.Context, caseID, name string) (File, error) {
	e, err := c.find(ctx, caseID, name)
	return e.File, err
}

// Files lists the case's catalog, sorted by name. A file kept under two
// keys (a rename cut short) is listed once, under its current key.
func (c *Catalog) Files(ctx context.Context, caseID string) ([]File, error) {
	infos, err := c.store.List(ctx, Prefix(caseID)+"files/")
	if err != nil {
		return nil, err
	}
	files := make([]File, 0, len(infos))
	seen := map[string]int{} // object -> index in files
	for _, info := range infos {
		var f File
		err := getJSON(ctx, c.store, info.Key, &f)
		if errors.Is(err, ErrNotFound) {
			continue // removed between List and Open
		}
		if err != nil {
			return nil, err
		}
		if i, ok := seen[f.Object]; ok && f.Object != "" {
			if !isLegacyFileKey(info.Key) {
				files[i] = f
			}
			continue
		}
		seen[f.Object] = len(files)
		files = append(files, f)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

// RenameFile moves the catalog entry of from to the free name to, in NFC
// (a name held by a rejected file counts as free; a file renamed to
// another spelling of its own name keeps its entry). The stored bytes do
// not move.
func (c *Catalog) RenameFile(ctx context.Context, caseID, from, to string) (File, error) {
	to, err := CanonicalName(to)
	if err != nil {
		return File{}, err
	}
	e, err := c.find(ctx, caseID, from)
	if err != nil {
		return File{}, err
	}
	if e.Name == to {
		return e.File, nil
	}
	f := e.File
	f.Name = to
	key := fileKey(caseID, to)
	if key == e.key { // the same name, spelled otherwise
		return f, putJSON(ctx, c.store, key, f)
	}
	var replaced string // a rejected legacy entry of the name to
	if held, err := c.find(ctx, caseID, to); err == nil && held.key != e.key && held.key != key {
		if held.State != FileRejected {
			return File{}, fmt.Errorf("%w: %s", ErrNameConflict, to)
		}
		replaced = held.key
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return File{}, err
	}
	err = putJSONIfAbsent(ctx, c.store, key, f)
	if errors.Is(err, storage.ErrExists) {
		var held File
		if getErr := getJSON(ctx, c.store, key, &held); getErr != nil || held.State != FileRejected {
			return File{}, fmt.Errorf("%w: %s", ErrNameConflict, to)
		}
		err = putJSON(ctx, c.store, key, f)
	}
	if err != nil {
		return File{}, err
	}
	if replaced != "" {
		if err := c.store.Delete(ctx, replaced); err != nil {
			return File{}, err
		}
	}
	return f, c.store.Delete(ctx, e.key)
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
