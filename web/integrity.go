package web

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/manifest"
)

// ManifestSigner signs the cases' SHA256SUMS manifests with a key whose
// public half anyone may fetch.
type ManifestSigner interface {
	Sign(manifest []byte) []byte
	SSHSignature(namespace string, manifest []byte) ([]byte, error)
	PublicKeyPEM() []byte
	AllowedSigners() []byte
}

var errNoManifestKey = newError(http.StatusServiceUnavailable, "no_manifest_key", "this server has no manifest signing key")

// completeFiles returns the complete files of the case named in the path,
// sorted by name, and their SHA256SUMS.
func (s *server) completeFiles(r *http.Request) (cases.Case, []cases.File, []byte, error) {
	caseID := r.PathValue("case")
	rec, err := s.Catalog.Get(r.Context(), caseID)
	if err != nil {
		return cases.Case{}, nil, nil, err
	}
	files, err := s.Catalog.Files(r.Context(), caseID)
	if err != nil {
		return cases.Case{}, nil, nil, err
	}
	files = manifest.Complete(files)
	return rec, files, manifest.SHA256SUMS(rec, files), nil
}

// modTime is when f was complete: when its bytes last changed here, the
// Last-Modified of its download.
func modTime(f cases.File) time.Time {
	if f.UploadedAt != nil {
		return *f.UploadedAt
	}
	return f.StartedAt
}

// sha256sums serves the case's manifest in sha256sum's format. Its ETag
// is the manifest's own SHA-256, which SHA256SUMS.sig and .sshsig share: a
// client sending it in If-Match there gets the signature of exactly these
// bytes, or 412 when the case changed in between.
func (s *server) sha256sums(w http.ResponseWriter, r *http.Request) error {
	_, files, sums, err := s.completeFiles(r)
	if err != nil {
		return err
	}
	if r.Method != http.MethodHead {
		s.audit(r, cases.Event{Type: cases.EventManifestDownloaded, Case: r.PathValue("case"), Size: int64(len(files))})
	}
	serveBytes(w, r, "text/plain; charset=utf-8", manifest.Name, sums, sums)
	return nil
}

// sha256sumsSignature serves the detached Ed25519 signature (64 raw bytes)
// of the case's current SHA256SUMS.
func (s *server) sha256sumsSignature(w http.ResponseWriter, r *http.Request) error {
	if s.ManifestSigner == nil {
		return errNoManifestKey
	}
	_, _, sums, err := s.completeFiles(r)
	if err != nil {
		return err
	}
	serveBytes(w, r, "application/octet-stream", manifest.Name+".sig", s.ManifestSigner.Sign(sums), sums)
	return nil
}

// sha256sumsSSHSignature serves the SSHSIG signature of the case's current
// SHA256SUMS, in the case's namespace, for `ssh-keygen -Y verify`.
func (s *server) sha256sumsSSHSignature(w http.ResponseWriter, r *http.Request) error {
	if s.ManifestSigner == nil {
		return errNoManifestKey
	}
	_, _, sums, err := s.completeFiles(r)
	if err != nil {
		return err
	}
	sig, err := s.ManifestSigner.SSHSignature(manifest.Namespace(r.PathValue("case")), sums)
	if err != nil {
		return err
	}
	serveBytes(w, r, "text/plain; charset=utf-8", manifest.Name+".sshsig", sig, sums)
	return nil
}

// manifestKey serves the public key that checks manifest signatures; it
// is public, like a vendor's release-signing key.
func (s *server) manifestKey(w http.ResponseWriter, r *http.Request) error {
	if s.ManifestSigner == nil {
		return errNoManifestKey
	}
	serveBytes(w, r, "application/x-pem-file", "casedrop-manifest-key.pem", s.ManifestSigner.PublicKeyPEM(), nil)
	return nil
}

// manifestAllowedSigners serves the same key as an OpenSSH allowed_signers
// line, limited to the cases' namespaces; public like the PEM key.
func (s *server) manifestAllowedSigners(w http.ResponseWriter, r *http.Request) error {
	if s.ManifestSigner == nil {
		return errNoManifestKey
	}
	serveBytes(w, r, "text/plain; charset=utf-8", "casedrop-allowed-signers", s.ManifestSigner.AllowedSigners(), nil)
	return nil
}

// serveBytes serves a small generated body with HEAD, ranges and
// conditional requests; its ETag is the SHA-256 of of (the body if nil).
func serveBytes(w http.ResponseWriter, r *http.Request, contentType, filename string, body, of []byte) {
	if of == nil {
		of = body
	}
	sum := sha256.Sum256(of)
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", contentDisposition(filename))
	h.Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	if h.Get("Cache-Control") == "" { // a case's own is no-store already
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// archive streams the case's complete files as one zip, with SHA256SUMS
// inside. Entries are stored, not compressed (core files and captures
// are mostly compressed already, and storing runs at the speed of the
// link); each object streams through, so memory does not grow with the
// files, and archive/zip switches to Zip64 past 4 GiB by itself.
func (s *server) archive(w http.ResponseWriter, r *http.Request) error {
	caseID := r.PathValue("case")
	rec, files, _, err := s.completeFiles(r)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", contentDisposition(caseID+".zip"))
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	s.audit(r, cases.Event{Type: cases.EventArchiveDownloaded, Case: caseID, Size: total, Detail: fmt.Sprintf("%d files", len(files))})
	if err := s.writeArchive(w, r, rec, files); err != nil {
		if r.Context().Err() != nil {
			s.log.InfoContext(r.Context(), "archive download interrupted by the client", "case", caseID, "err", err)
		} else {
			s.log.ErrorContext(r.Context(), "archive download failed", "case", caseID, "err", err)
		}
		// The status went out with the first bytes: breaking the
		// connection is the only way left to tell the client, and a zip
		// without its central directory cannot pass for a whole one.
		panic(http.ErrAbortHandler)
	}
	return nil
}

func (s *server) writeArchive(w io.Writer, r *http.Request, rec cases.Case, files []cases.File) error {
	// The manifest inside lists the entries' names, so that it checks after
	// unzip; for names valid today these are the stored names, and it is
	// byte for byte the signed SHA256SUMS.
	entries := entryNames(files)
	sums := manifest.SHA256SUMS(rec, entries)
	zw := zip.NewWriter(w)
	// The manifest is as new as the newest file: the same files give the
	// same archive, byte for byte.
	var newest time.Time
	for _, f := range files {
		if t := modTime(f); t.After(newest) {
			newest = t
		}
	}
	if err := addEntry(r.Context(), zw, manifest.Name, newest, bytes.NewReader(sums), int64(len(sums))); err != nil {
		return err
	}
	for i, f := range files {
		obj, err := s.Ingest.Open(r.Context(), r.PathValue("case"), f)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		// The entry carries the time the file had where it came from,
		// when its client set one (SFTP), as unzip restores it.
		err = addEntry(r.Context(), zw, entries[i].Name, f.Modified(), obj, f.Size)
		obj.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return zw.Close()
}

// addEntry streams size bytes of r into the archive as the stored entry name.
func addEntry(ctx context.Context, zw *zip.Writer, name string, modTime time.Time, r io.Reader, size int64) error {
	hdr := &zip.FileHeader{Name: name, Method: zip.Store}
	if !modTime.IsZero() {
		hdr.Modified = modTime.UTC()
	}
	// Unix as the creating system: unzip then keeps a backslash in a name
	// as a character instead of reading it as a DOS path separator.
	hdr.SetMode(0o644)
	ew, err := zw.CreateHeader(hdr)
	if err != nil {
		return err
	}
	n, err := copyStream(ctx, ew, r)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("stored object has %d bytes, the catalog says %d", n, size)
	}
	return nil
}

// entryNames returns files named as their archive entries: names safe
// to unpack on Windows, macOS and Linux and unique ignoring case, whatever
// the catalog holds (names stored by an older release may break today's
// rules). No file can be named SHA256SUMS, the manifest's entry, which
// lists the files under these names, so that `sha256sum -c` checks them
// where unzip put them.
func entryNames(files []cases.File) []cases.File {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	out := make([]cases.File, len(files))
	for i, name := range cases.SafeNames(names) {
		out[i] = files[i]
		out[i].Name = name
	}
	return out
}
