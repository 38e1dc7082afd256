package sftpd

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pkg/sftp"

	"github.com/casedrop/casedrop/cases"
)

// The case is the root of a session's file system, flat: "/" is the case,
// "/name" one of its files. pkg/sftp hands every path over cleaned and
// absolute ("../x" arrives as "/x", as in a chroot), so a path is either the
// root, one name, or something that does not exist here.

// lookupName returns the name of the file p denotes, or "" for the root.
// Anything that cannot be a file of the case does not exist. A name is
// looked up as the client spells it: the catalog finds the file under any
// spelling of its name, also one an older release stored that today's
// rules refuse.
func lookupName(p string) (string, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return "", nil
	}
	name := p[1:]
	if strings.Contains(name, "/") || len(name) > 4*cases.MaxNameBytes || !utf8.ValidString(name) {
		return "", errNotFound
	}
	return name, nil
}

// targetName returns the name, in stored form, of the file p is to become
// (by upload or rename), saying why when p cannot name a file of the case.
func targetName(p string) (string, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return "", errRootKept
	}
	name := p[1:]
	if strings.Contains(name, "/") {
		return "", errNoFolders
	}
	return cases.CanonicalName(name)
}

// fileInfo describes the case's root or one of its files.
type fileInfo struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.size }
func (fi fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi fileInfo) ModTime() time.Time { return fi.modTime }
func (fi fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi fileInfo) Sys() any           { return nil }

// listing is a ListerAt over a list made at once.
type listing []os.FileInfo

func (l listing) ListAt(dst []os.FileInfo, offset int64) (int, error) {
	if offset >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[offset:])
	if offset+int64(n) == int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}

// visible reports whether a file shows in listings: rejected uploads
// are gone as far as clients can tell.
func visible(f cases.File) bool { return f.State != cases.FileRejected }

// file returns the catalog entry of a visible file of the case.
func (s *session) file(ctx context.Context, name string) (cases.File, error) {
	f, err := s.srv.cfg.Catalog.File(ctx, s.claims.Case, name)
	if err != nil {
		return f, err
	}
	if !visible(f) {
		return f, errNotFound
	}
	return f, nil
}

// info describes f as clients see it: an unfinished upload with the size
// of its stored bytes, where a client resumes it.
func (s *session) info(ctx context.Context, f cases.File) (fileInfo, error) {
	size, err := s.srv.cfg.Ingest.StoredSize(ctx, s.claims.Case, f)
	if err != nil {
		return fileInfo{}, err
	}
	return fileInfo{name: f.Name, size: size, mode: 0o644, modTime: f.Modified()}, nil
}

func (s *session) rootInfo(ctx context.Context) (fileInfo, error) {
	c, err := s.srv.cfg.Catalog.Get(ctx, s.claims.Case)
	if err != nil {
		return fileInfo{}, err
	}
	return fileInfo{name: "/", mode: fs.ModeDir | 0o755, modTime: c.OpenedAt}, nil
}

// Filelist lists the case (List) or describes one path (Stat, Lstat).
func (s *session) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	ctx := r.Context()
	name, err := lookupName(r.Filepath)
	if err != nil {
		return nil, s.status(r.Method, r.Filepath, err)
	}
	switch r.Method {
	case "List":
		if name != "" {
			if _, err := s.file(ctx, name); err == nil {
				return nil, errNotFolder
			}
			return nil, errNotFound
		}
		l, err := s.list(ctx)
		if err != nil {
			return nil, s.status("list", "/", err)
		}
		return l, nil
	case "Stat", "Lstat":
		fi, err := s.stat(ctx, name)
		if err != nil {
			return nil, s.status("stat", r.Filepath, err)
		}
		return listing{fi}, nil
	}
	return nil, errUnsupported
}

func (s *session) stat(ctx context.Context, name string) (fileInfo, error) {
	if name == "" {
		return s.rootInfo(ctx)
	}
	f, err := s.file(ctx, name)
	if err != nil {
		return fileInfo{}, err
	}
	return s.info(ctx, f)
}

func (s *session) list(ctx context.Context) (listing, error) {
	files, err := s.srv.cfg.Catalog.Files(ctx, s.claims.Case)
	if err != nil {
		return nil, err
	}
	l := make(listing, 0, len(files))
	for _, f := range files {
		if !visible(f) {
			continue
		}
		fi, err := s.info(ctx, f)
		if err != nil {
			// One unreadable upload state must not hide the whole case.
			s.log.Warn("sftp list: stored size unknown", "file", f.Name, "err", err)
			fi = fileInfo{name: f.Name, size: f.Size, mode: 0o644, modTime: f.Modified()}
		}
		l = append(l, fi)
	}
	return l, nil
}

// Readlink answers that nothing here is a link.
func (s *session) Readlink(p string) (string, error) {
	name, err := lookupName(p)
	if err != nil {
		return "", err
	}
	if _, err := s.stat(s.srv.ctx, name); err != nil {
		return "", s.status("readlink", p, err)
	}
	return "", errNotLink
}

// Fileread opens a complete file for download.
func (s *session) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	ctx := r.Context()
	name, err := lookupName(r.Filepath)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errIsFolder
	}
	f, err := s.file(ctx, name)
	if err != nil {
		return nil, s.status("open", name, err)
	}
	if err := f.Servable(); err != nil {
		return nil, s.status("open", name, err)
	}
	if f.State != cases.FileComplete {
		return nil, errStillUploading
	}
	slot, err := s.srv.readSlot(s.claims.CredentialID)
	if err != nil {
		return nil, err
	}
	obj, err := s.srv.cfg.Ingest.Open(ctx, s.claims.Case, f)
	if err != nil {
		slot()
		return nil, s.status("open", name, err)
	}
	s.audit(ctx, cases.Event{Type: cases.EventFileDownloaded, File: f.Name, Size: f.Size, SHA256: f.SHA256})
	return newReadHandle(s, name, obj, f.Size, slot), nil
}

// Filecmd changes the case: rename, remove, set attributes; folders and
// links do not exist here.
func (s *session) Filecmd(r *sftp.Request) error {
	ctx := r.Context()
	switch r.Method {
	case "Setstat":
		return s.status("setstat", r.Filepath, s.setstat(ctx, r))
	case "Rename", "PosixRename":
		return s.status("rename", r.Filepath, s.rename(ctx, r.Filepath, r.Target))
	case "Remove":
		return s.status("remove", r.Filepath, s.remove(ctx, r.Filepath))
	case "Mkdir":
		if path.Clean(r.Filepath) == "/" {
			return errRootExists // as for any folder that exists
		}
		return errNoFolders
	case "Rmdir":
		if path.Clean(r.Filepath) == "/" {
			return errRootKept
		}
		return errNoFolders
	case "Link", "Symlink":
		return errNoLinks
	}
	return errUnsupported
}

// PosixRename is posix-rename@openssh.com; casedrop never replaces a file,
// so it is the same as a rename.
func (s *session) PosixRename(r *sftp.Request) error {
	return s.Filecmd(r)
}

// setstat sets what a client may set: the modification time of its own
// file, kept and reported (WinSCP, rclone, lftp and `put -p` set it after
// an upload, and rclone compares it on its next run). Permissions and
// access times are accepted and ignored; a size is accepted when it is
// the file's (scp sets the size it wrote, with the file open), refused
// otherwise: files are not truncated or extended that way.
func (s *session) setstat(ctx context.Context, r *sftp.Request) error {
	name, err := lookupName(r.Filepath)
	if err != nil {
		return err
	}
	flags, attrs := r.AttrFlags(), r.Attributes()
	if name == "" { // the case itself: times and permissions mean nothing
		if _, err := s.rootInfo(ctx); err != nil {
			return err
		}
		if flags.Size {
			return errSizeChange
		}
		return nil
	}
	f, err := s.file(ctx, name) // read once, for the size and the times
	if err != nil {
		return err
	}
	if flags.Size {
		ok, err := s.isSize(ctx, f, int64(attrs.Size))
		if err != nil {
			return err
		}
		if !ok {
			return errSizeChange
		}
	}
	if !flags.Acmodtime {
		return nil
	}
	if f.UploadedBy != s.claims.Username {
		return errNotYours
	}
	mtime := time.Unix(int64(attrs.Mtime), 0)
	if f.ModTime != nil && f.ModTime.Equal(mtime) {
		return nil
	}
	return s.srv.cfg.Catalog.SetModTime(ctx, s.claims.Case, f.Name, f.Object, mtime)
}

// isSize reports whether size is the size of f: the stored size it is
// listed with or, while this process writes it, as far as the client's
// writes reach (they are stored a part at a time; scp sets the size it
// wrote before its close).
func (s *session) isSize(ctx context.Context, f cases.File, size int64) (bool, error) {
	if f.State == cases.FileUploading {
		if written, open := s.srv.writing.written(f.Object); open && size == written {
			return true, nil
		}
	}
	fi, err := s.info(ctx, f)
	if err != nil {
		return false, err
	}
	return size == fi.size, nil
}

// renameWait bounds how long a rename waits for an upload of the file to end.
const renameWait = 5 * time.Second

// rename renames one's own file or unfinished upload; a name in use is
// never taken over. A .filepart closed whole is finished by its rename to
// a name without ".filepart".
func (s *session) rename(ctx context.Context, from, to string) error {
	fromName, err := lookupName(from)
	if err != nil {
		return err
	}
	if fromName == "" {
		return errRootKept
	}
	toName, err := targetName(to)
	if err != nil {
		return err
	}
	f, err := s.file(ctx, fromName)
	if err != nil {
		return err
	}
	if f.UploadedBy != s.claims.Username {
		return errNotYours
	}
	if f.State == cases.FileUploading && f.Via != via {
		return errOtherDoor
	}
	// A writer saves the upload's state as it goes, name included: renaming
	// under it would be undone. A handle of a dropped connection lets go as
	// soon as it has stored what arrived; a live upload is not disturbed.
	waitCtx, cancel := context.WithTimeout(ctx, renameWait)
	defer cancel()
	unlock, err := s.srv.cfg.Ingest.Await(waitCtx, s.claims.Case, f.Object)
	if err != nil {
		return errBusy
	}
	defer unlock()
	if _, err := s.srv.cfg.Ingest.Rename(ctx, s.claims.Case, fromName, toName); err != nil {
		return err
	}
	if fromName != toName {
		s.audit(ctx, cases.Event{Type: cases.EventFileRenamed, File: toName, Size: f.Size, SHA256: f.SHA256, Detail: "renamed from " + fromName})
	}
	if f.State == cases.FileUploading && isFilepart(fromName) && !isFilepart(toName) {
		return s.finishRenamed(ctx, f.Object, toName)
	}
	return nil
}

// remove drops one's own file, complete or not, with its stored bytes;
// anyone else's is kept.
func (s *session) remove(ctx context.Context, p string) error {
	name, err := lookupName(p)
	if err != nil {
		return err
	}
	if name == "" {
		return errRootKept
	}
	f, err := s.file(ctx, name)
	if err != nil {
		return err
	}
	if err := f.Servable(); err != nil {
		return err // held by the scanner: kept as it is
	}
	switch {
	case f.UploadedBy != s.claims.Username:
		if f.State == cases.FileComplete {
			return errKeepComplete
		}
		return errNotYours
	case f.State == cases.FileComplete:
		return s.removeComplete(ctx, f)
	case f.Via != via:
		return errOtherDoor
	}
	unlock, err := s.srv.cfg.Ingest.Lock(ctx, s.claims.Case, f.Object, nil)
	if err != nil {
		return err
	}
	defer unlock()
	up, err := s.srv.cfg.Ingest.Partial(ctx, s.claims.Case, name)
	if err != nil {
		return err
	}
	if up.Info().ID != f.Object {
		return errBusy // replaced meanwhile; let the client look again
	}
	return up.Terminate(ctx)
}

// removeComplete removes one's own complete file, audited (the case
// system hears file.removed). A handle about to continue it lets go first.
func (s *session) removeComplete(ctx context.Context, f cases.File) error {
	unlock, err := s.srv.cfg.Ingest.Lock(ctx, s.claims.Case, f.Object, nil)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := s.file(ctx, f.Name)
	if err != nil {
		return err
	}
	if cur.Object != f.Object || cur.State != cases.FileComplete {
		return errBusy // changed meanwhile; let the client look again
	}
	_, err = s.srv.cfg.Ingest.Remove(ctx, s.claims.Case, f.Name, s.actor())
	return err
}
