// Package diskstore is the local-disk storage.Store: objects are plain files
// under a root directory, at the same paths their keys name in a bucket, so
// an operator sees the same tree on disk as in S3.
//
// Besides the objects, the root holds two hidden directories: .tmp for files
// being written (renamed into place once complete and synced) and .multipart
// for unfinished multipart uploads, one directory per upload holding its key
// and its parts. Everything is on disk, so uploads survive a restart.
//
// Those directories, and the lock file .lock (see lock), start with a dot,
// which no segment of a valid key does (storage.ValidKey), so no key
// reaches them.
package diskstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/casedrop/casedrop/storage"
)

const (
	tmpDir       = ".tmp"
	multipartDir = ".multipart"
	lockFile     = ".lock"
	dirPerm      = 0o750
)

// Store is a storage.Store on a local directory. Its zero value is not
// usable; call New.
type Store struct {
	root      string
	tmp       string
	multipart string
	lockFile  string
	minFree   atomic.Int64

	pingMu  sync.Mutex
	pinging *ping // the Ping under way, if any
}

var _ storage.Store = (*Store)(nil)

// New returns a Store keeping its objects under root, creating root and its
// hidden directories if they do not exist.
func New(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("diskstore: root %q: %w", root, err)
	}
	s := &Store{
		root:      abs,
		tmp:       filepath.Join(abs, tmpDir),
		multipart: filepath.Join(abs, multipartDir),
		lockFile:  filepath.Join(abs, lockFile),
	}
	s.minFree.Store(DefaultMinFree)
	for _, dir := range []string{s.root, s.tmp, s.multipart} {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return nil, fmt.Errorf("diskstore: %w", err)
		}
	}
	return s, nil
}

// DefaultMinFree is the free space below which Ping reports a full file
// system, unless SetMinFree says otherwise: one part of an upload at
// casedrop's default part size.
const DefaultMinFree = 16 << 20

// SetMinFree sets the free space, in bytes, below which Ping reports
// storage.ErrNoSpace: room for what the next write needs (a part).
func (s *Store) SetMinFree(n int64) { s.minFree.Store(n) }

// Ping reports whether the store takes writes now: the file system has the
// free space SetMinFree asks for (storage.ErrNoSpace otherwise), and a
// small file is written, synced and removed. A file system that does not
// answer before ctx's deadline (a hung network mount) fails with
// storage.ErrUnavailable; its check keeps running, and later Pings wait
// for it rather than start another.
func (s *Store) Ping(ctx context.Context) error {
	s.pingMu.Lock()
	p := s.pinging
	if p == nil {
		p = &ping{done: make(chan struct{})}
		s.pinging = p
		go func() {
			p.err = s.probe()
			s.pingMu.Lock()
			s.pinging = nil
			s.pingMu.Unlock()
			close(p.done)
		}()
	}
	s.pingMu.Unlock()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("diskstore: ping: %w: the file system did not answer in time", storage.ErrUnavailable)
		}
		return ctx.Err()
	}
}

// ping is a check under way; err is set before done closes.
type ping struct {
	done chan struct{}
	err  error
}

// probe checks the free space and writes a small file.
func (s *Store) probe() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.root, &st); err != nil {
		return fmt.Errorf("diskstore: ping: %w", fault(err))
	}
	// Bavail: what an unprivileged writer may use, without root's reserve.
	if free, need := int64(st.Bavail)*int64(st.Bsize), s.minFree.Load(); free < need {
		return fmt.Errorf("diskstore: ping: %w: %d bytes free in %s, fewer than the %d one part needs", storage.ErrNoSpace, free, s.root, need)
	}
	f, err := os.CreateTemp(s.tmp, "ping-*")
	if err != nil {
		return fmt.Errorf("diskstore: ping: %w", fault(err))
	}
	_, err = f.Write(pingData[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rmErr := os.Remove(f.Name()); err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("diskstore: ping: %w", fault(err))
	}
	return nil
}

// pingData is what Ping writes: a block, so that a full file system
// refuses it (an empty file needs no space).
var pingData [4096]byte

// Put stores exactly size bytes of r under key, replacing any object there.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := storage.ValidKey(key); err != nil {
		return err
	}
	tmp, _, err := writeTemp(ctx, s.tmp, "put-*", r, size)
	if err != nil {
		return fmt.Errorf("diskstore: put %q: %w", key, fault(err))
	}
	if err := s.placeLocked(tmp, key, os.Rename); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("diskstore: put %q: %w", key, fault(err))
	}
	return nil
}

// PutIfAbsent is Put that fails with storage.ErrExists when key already
// holds an object. The new file is hard-linked into place, which fails when
// the name exists, so of two racing callers exactly one succeeds.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := storage.ValidKey(key); err != nil {
		return err
	}
	tmp, _, err := writeTemp(ctx, s.tmp, "put-*", r, size)
	if err != nil {
		return fmt.Errorf("diskstore: put %q: %w", key, fault(err))
	}
	defer os.Remove(tmp)
	err = s.placeLocked(tmp, key, os.Link)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("diskstore: put %q: %w", key, storage.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("diskstore: put %q: %w", key, fault(err))
	}
	return nil
}

// PutIfMatch is Put that fails with storage.ErrChanged unless key holds
// the object whose ETag is match. The new file is written first; the check
// and the rename into place then happen under the store's lock, held
// exclusively, while every other write to an object holds it shared (see
// lock): no write comes between the check and the rename.
func (s *Store) PutIfMatch(ctx context.Context, key, match string, r io.Reader, size int64) error {
	if err := storage.ValidKey(key); err != nil {
		return err
	}
	tmp, _, err := writeTemp(ctx, s.tmp, "put-*", r, size)
	if err != nil {
		return fmt.Errorf("diskstore: put %q: %w", key, fault(err))
	}
	defer os.Remove(tmp) // gone once renamed; left behind when refused
	unlock, err := s.lock(syscall.LOCK_EX)
	if err != nil {
		return fmt.Errorf("diskstore: put %q: %w", key, fault(err))
	}
	defer unlock()
	fi, err := os.Stat(s.path(key))
	switch {
	case isNotExist(err) || err == nil && (!fi.Mode().IsRegular() || etag(fi) != strings.Trim(match, `"`)):
		return fmt.Errorf("diskstore: put %q: %w", key, storage.ErrChanged)
	case err != nil:
		return fmt.Errorf("diskstore: put %q: %w", key, fault(err))
	}
	if err := s.place(tmp, key, os.Rename); err != nil {
		return fmt.Errorf("diskstore: put %q: %w", key, fault(err))
	}
	return nil
}

// Open opens the object under key for reading. The Object is an *os.File
// underneath, so io.Copy from it to a socket can use sendfile.
func (s *Store) Open(ctx context.Context, key string) (storage.Object, error) {
	if err := storage.ValidKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, notFound("open", key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		_ = f.Close()
		return nil, notFound("open", key, err)
	}
	return &object{File: f, info: info(key, fi)}, nil
}

// Stat describes the object under key.
func (s *Store) Stat(ctx context.Context, key string) (storage.Info, error) {
	if err := storage.ValidKey(key); err != nil {
		return storage.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, err
	}
	fi, err := os.Stat(s.path(key))
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return storage.Info{}, notFound("stat", key, err)
	}
	return info(key, fi), nil
}

// Delete removes the object under key and any directories left empty by
// that; deleting a missing key is no error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storage.ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := s.lock(syscall.LOCK_SH)
	if err != nil {
		return fmt.Errorf("diskstore: delete %q: %w", key, fault(err))
	}
	defer unlock()
	p := s.path(key)
	fi, err := os.Lstat(p)
	if isNotExist(err) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err == nil {
		err = os.Remove(p)
	}
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("diskstore: delete %q: %w", key, fault(err))
	}
	s.prune(filepath.Dir(p))
	return nil
}

// List returns every object whose key starts with prefix, sorted by key.
// Hidden directories (and so unfinished multipart uploads) are skipped.
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Info, error) {
	start := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		if !storage.ValidPrefix(prefix) {
			return nil, nil // no valid key starts with this prefix
		}
		start = s.path(prefix[:i])
	}
	var infos []storage.Info
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // gone meanwhile, or prefix names no directory
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == start {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if dir := key + "/"; !strings.HasPrefix(dir, prefix) && !strings.HasPrefix(prefix, dir) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if isNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		infos = append(infos, info(key, fi))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("diskstore: list %q: %w", prefix, fault(err))
	}
	slices.SortFunc(infos, func(a, b storage.Info) int { return strings.Compare(a.Key, b.Key) })
	return infos, nil
}

// path is the file of a checked key.
func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// place moves or links the finished file tmp to key's path with op
// (os.Rename or os.Link), creating parent directories. A concurrent Delete
// may prune a directory just created, so a missing directory is retried.
func (s *Store) place(tmp, key string, op func(oldname, newname string) error) error {
	target := s.path(key)
	dir := filepath.Dir(target)
	var err error
	for range 5 {
		if err = os.MkdirAll(dir, dirPerm); err != nil {
			return err
		}
		if err = op(tmp, target); !isNotExist(err) {
			break
		}
	}
	if err != nil {
		return err
	}
	return syncDir(dir)
}

// placeLocked is place under the store's lock, held shared.
func (s *Store) placeLocked(tmp, key string, op func(oldname, newname string) error) error {
	unlock, err := s.lock(syscall.LOCK_SH)
	if err != nil {
		return err
	}
	defer unlock()
	return s.place(tmp, key, op)
}

// lock takes the store's lock (flock on the file .lock in the root) in
// mode how, LOCK_SH or LOCK_EX, and returns its release. Every write that
// puts or removes an object holds it shared, just for that step; a
// PutIfMatch holds it exclusively from its check to its rename. flock
// works between processes (`casedrop purge` run on the data directory of
// a running server) and, since each call opens the file anew, between
// goroutines. One lock for all keys: a conditional replace is rare and
// short, and per-key lock files would be left behind.
func (s *Store) lock(how int) (unlock func(), err error) {
	f, err := os.OpenFile(s.lockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { _ = f.Close() }, nil // closing the file releases the lock
}

// prune removes dir and its parents up to the root while they are empty.
func (s *Store) prune(dir string) {
	for dir != s.root && strings.HasPrefix(dir, s.root) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// writeTemp copies exactly size bytes of r into a new file in dir, syncs
// it, and returns its name and description.
func writeTemp(ctx context.Context, dir, pattern string, r io.Reader, size int64) (string, fs.FileInfo, error) {
	if size < 0 {
		return "", nil, fmt.Errorf("negative size %d", size)
	}
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", nil, err
	}
	fi, err := fill(ctx, f, r, size)
	if err != nil {
		_ = os.Remove(f.Name())
		return "", nil, err
	}
	return f.Name(), fi, nil
}

// fill copies size bytes of r into f, syncs and closes it. io.Copy into an
// *os.File uses copy_file_range or splice when r allows it.
func fill(ctx context.Context, f *os.File, r io.Reader, size int64) (fs.FileInfo, error) {
	n, err := io.Copy(f, io.LimitReader(r, size))
	if err == nil && n < size {
		err = fmt.Errorf("got %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = f.Sync()
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return fi, err
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// info describes the file fi as the object key.
func info(key string, fi fs.FileInfo) storage.Info {
	return storage.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime(), ETag: etag(fi)}
}

// etag is a content tag for a file that changes whenever the file is
// replaced: every write goes to a new file (a new inode) renamed into place.
func etag(fi fs.FileInfo) string {
	var b [24]byte
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		binary.LittleEndian.PutUint64(b[0:], st.Ino)
	}
	binary.LittleEndian.PutUint64(b[8:], uint64(fi.Size()))
	binary.LittleEndian.PutUint64(b[16:], uint64(fi.ModTime().UnixNano()))
	sum := sha256.Sum256(b[:])
	return hex.EncodeToString(sum[:16])
}

// notFound wraps err, as storage.ErrNotFound when it says the file is missing.
func notFound(op, key string, err error) error {
	if isNotExist(err) {
		return fmt.Errorf("diskstore: %s %q: %w", op, key, storage.ErrNotFound)
	}
	return fmt.Errorf("diskstore: %s %q: %w", op, key, fault(err))
}

// fault wraps err with storage.ErrNoSpace when the file system is full
// (or the writer's quota used up), and with storage.ErrUnavailable when it
// fails: I/O errors, read-only after errors, a network or FUSE mount whose
// server is gone. Other errors are returned as they are.
func fault(err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", storage.ErrNoSpace, err)
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.EROFS),
		errors.Is(err, syscall.ENOTCONN), errors.Is(err, syscall.ESTALE):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}

// isNotExist reports a missing file, including a path through a file
// where a directory was expected.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// object is an open stored file.
type object struct {
	*os.File
	info storage.Info
}

// Info describes the object as it was when opened.
func (o *object) Info() storage.Info { return o.info }
