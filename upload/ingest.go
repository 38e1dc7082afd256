// Package upload is casedrop's resumable ingest: the one pipeline through
// which every door (tus over HTTPS, SFTP) stores a file. It streams bytes
// into the object store in parts, hashes exactly the stored bytes with a
// SHA-256 whose state is saved with the upload, checks a declared digest,
// and commits the file into the case's catalog.
package upload

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/slots"
	"github.com/casedrop/casedrop/storage"
)

// Errors callers decide on.
var (
	ErrNotFound       = errors.New("upload not found")
	ErrDigestMismatch = errors.New("SHA-256 of the received bytes does not match the declared sha256")
	ErrInvalidDigest  = errors.New("declared sha256 must be 64 hexadecimal characters")
	ErrOffset         = errors.New("write does not continue at the stored offset")
	ErrTooLong        = errors.New("more bytes than the declared size")
	ErrIncomplete     = errors.New("upload is not complete")
	ErrCommitted      = errors.New("upload is complete; the file is kept")
	// ErrTooLarge: the declared or written size is over the largest file
	// this server takes (Config.MaxFileSize).
	ErrTooLarge = errors.New("file is larger than this server accepts")
	// ErrTooManyWriters: the credential already writes as many uploads at
	// once as it may (Config.MaxWritersPerCredential).
	ErrTooManyWriters = errors.New("too many uploads at once for this credential")
	// ErrNotYours: an unfinished upload is written only by its uploader.
	ErrNotYours = errors.New("this unfinished upload belongs to another credential")
	// ErrRestarted: the store lost the upload's unfinished parts (they
	// expired); the upload goes on from byte 0 (from where the file ended,
	// for a file continued after it was complete), which the client resends.
	ErrRestarted = errors.New("the store no longer holds this upload's parts; it starts again from an earlier byte")
	// ErrLockLost: another writer took the upload over (its lock's lease
	// ran out while this writer was paused, or it was removed) and saved
	// it since; this writer stops, and what the other stored stays.
	ErrLockLost = errors.New("another writer took over this upload; this write stopped")
)

// Store is the part of storage.Store the ingest writes through.
type Store interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error
	PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) error
	Open(ctx context.Context, key string) (storage.Object, error)
	Stat(ctx context.Context, key string) (storage.Info, error)
	Delete(ctx context.Context, key string) error
	NewMultipart(ctx context.Context, key string) (string, error)
	PutPart(ctx context.Context, key, uploadID string, number int, r io.Reader, size int64) (storage.Part, error)
	CopyPart(ctx context.Context, key, uploadID string, number int, srcKey string, offset, size int64) (storage.Part, error)
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []storage.Part) (storage.Info, error)
	AbortMultipart(ctx context.Context, key, uploadID string) error
	List(ctx context.Context, prefix string) ([]storage.Info, error)
	ListMultiparts(ctx context.Context, prefix string) ([]storage.Multipart, error)
}

// Config configures an Ingest.
type Config struct {
	Store   Store
	Catalog *cases.Catalog
	Now     func() time.Time
	Logger  *slog.Logger
	// PartSize is the size of the parts stored (default 16 MiB); larger
	// files get larger parts, to stay within S3's 10,000 parts.
	PartSize int64
	// MaxFileSize is the largest file taken, declared or written (default
	// DefaultMaxFileSize). It bounds the largest part, and so the largest
	// buffer.
	MaxFileSize int64
	// MemoryBudget bounds the bytes of all part buffers of the process,
	// both doors together (default DefaultMemoryBudget). It is raised to
	// the largest part if smaller. Uploads wait for a buffer at the limit.
	MemoryBudget int64
	// MaxWritersPerCredential bounds the uploads one credential writes at
	// once, both doors together (default DefaultMaxWritersPerCredential).
	MaxWritersPerCredential int
	// IdleYield is how long an upload holding a part buffer waits for its
	// client, while others wait for a buffer, before it stores what it has
	// and gives the buffer back (default DefaultIdleYield).
	IdleYield time.Duration
	// Metrics, if not nil, is told what the ingest does (metrics.Registry
	// fills it).
	Metrics Metrics
	// Locker gives one holder at a time the right to change an upload
	// (see Locker); nil means an in-memory one, right for one instance.
	Locker Locker
	// FenceStates makes every save of an upload's state conditional on the
	// state it replaces (see saveState): for several instances on one store
	// with a shared Locker (NewStoreLocker), on a store that honours
	// conditional writes (storage.ProbeConditional).
	FenceStates bool
	// Scanning holds every file that completes for a malware scan: it is
	// committed as scanning, with its scan queued in the catalog, and the
	// scan's verdict makes it complete or quarantined (package scan).
	Scanning bool
	// ScanQueued, if not nil, is told of each file committed as
	// scanning, so that the scan need not wait for the worker's next look
	// at the queue (scan.Worker.Wake).
	ScanQueued func()
}

// Metrics is what the ingest counts, per door (Via).
type Metrics interface {
	// Writing is told of a request or handle starting (+1) or ending (-1)
	// its writing.
	Writing(door string, delta int)
	// Received is told of bytes stored.
	Received(door string, n int64)
	// Finished is told of an upload committed, "complete" or "rejected".
	Finished(door, result string)
}

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) Writing(string, int)     {}
func (noMetrics) Received(string, int64)  {}
func (noMetrics) Finished(string, string) {}

// Defaults of Config.
const (
	DefaultPartSize                = 16 << 20
	DefaultMaxFileSize             = 1 << 40 // 1 TiB
	DefaultMemoryBudget            = 128 << 20
	DefaultMaxWritersPerCredential = 8
	DefaultIdleYield               = 3 * time.Second
)

// idleBuffers is how many part buffers are kept for reuse between uploads.
const idleBuffers = 16

// Ingest stores uploads. It is safe for concurrent use; one Upload must be
// changed by one caller at a time: the holder of its lock (Lock, Await).
type Ingest struct {
	store       Store
	catalog     *cases.Catalog
	now         func() time.Time
	log         *slog.Logger
	partSize    int64
	maxFileSize int64
	idleYield   time.Duration
	buffers     *bufferPool
	writers     *slots.PerKey
	locker      Locker
	metrics     Metrics
	// boot names this Ingest in the states it saves (state.SavedBy).
	boot string
	// fenced: state saves are conditional (Config.FenceStates).
	fenced bool
	// scanning: files complete as scanning (Config.Scanning), and
	// scanQueued hears of each.
	scanning   bool
	scanQueued func()
}

// New returns an Ingest ready to use.
func New(cfg Config) *Ingest {
	in := &Ingest{store: cfg.Store, catalog: cfg.Catalog, now: cfg.Now, log: cfg.Logger,
		partSize: cfg.PartSize, maxFileSize: cfg.MaxFileSize, scanning: cfg.Scanning, scanQueued: cfg.ScanQueued}
	if in.partSize <= 0 {
		in.partSize = DefaultPartSize
	}
	in.partSize = max(in.partSize, storage.MinPartSize)
	if in.maxFileSize <= 0 {
		in.maxFileSize = DefaultMaxFileSize
	}
	if in.log == nil {
		in.log = slog.Default()
	}
	budget := cfg.MemoryBudget
	if budget <= 0 {
		budget = DefaultMemoryBudget
	}
	in.buffers = newBufferPool(max(budget, in.LargestPart()), idleBuffers)
	writers := cfg.MaxWritersPerCredential
	if writers <= 0 {
		writers = DefaultMaxWritersPerCredential
	}
	in.writers = slots.New(writers)
	in.locker = cfg.Locker
	if in.locker == nil {
		in.locker = newMemoryLocker()
	}
	in.idleYield = cfg.IdleYield
	if in.idleYield <= 0 {
		in.idleYield = DefaultIdleYield
	}
	in.boot = newID()
	in.fenced = cfg.FenceStates
	in.metrics = cfg.Metrics
	if in.metrics == nil {
		in.metrics = noMetrics{}
	}
	return in
}

// MaxFileSize is the largest file the ingest takes.
func (in *Ingest) MaxFileSize() int64 { return in.maxFileSize }

// BufferStats reports the bytes of part buffers in use and how many
// uploads wait for one, for the metrics.
func (in *Ingest) BufferStats() (inUse int64, waiting int) { return in.buffers.stats() }

// NewFile describes an upload about to start.
type NewFile struct {
	Case string
	Name string
	// Size in bytes, or -1 when it is known only at the end.
	Size int64
	// SHA256 is the digest the client declares (hex), checked at the end.
	SHA256     string
	Via        string
	UploadedBy string
	Meta       map[string]string
	// Actor is who uploads, for the audit trail (credential, role, remote
	// address); the door fills it.
	Actor cases.Actor
}

var hexDigest = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// Create starts an upload into an open case. The file enters the catalog at
// once (state uploading) under its name, or "name (2).ext" if that is taken.
func (in *Ingest) Create(ctx context.Context, nf NewFile) (*Upload, error) {
	if nf.SHA256 != "" && !hexDigest.MatchString(nf.SHA256) {
		return nil, ErrInvalidDigest
	}
	name, err := cases.CanonicalName(nf.Name)
	if err != nil {
		return nil, err
	}
	nf.Name = name
	if nf.Size > in.maxFileSize {
		return nil, in.tooLarge(nf.Size)
	}
	if _, err := in.catalog.RequireOpen(ctx, nf.Case); err != nil {
		return nil, err
	}
	if nf.Size < 0 {
		nf.Size = -1
	}
	now := in.now().UTC()
	actor := nf.Actor
	actor.Username, actor.Door = nf.UploadedBy, nf.Via
	s := &state{
		ID: newID(), Case: nf.Case, Name: nf.Name, Size: nf.Size, Declared: strings.ToLower(nf.SHA256),
		Via: nf.Via, UploadedBy: nf.UploadedBy, Actor: actor, Meta: nf.Meta, CreatedAt: now,
	}
	// The state first: a catalog entry always has its state, even when the
	// process dies in between (a state without an entry goes with the purge).
	if err := in.saveState(ctx, s); err != nil {
		return nil, err
	}
	name, err = in.catalog.AddFile(ctx, nf.Case, cases.File{
		Name: nf.Name, Object: s.ID, Size: max(nf.Size, 0), State: cases.FileUploading,
		Via: nf.Via, UploadedBy: nf.UploadedBy, StartedAt: now,
	})
	if err != nil {
		_ = in.store.Delete(ctx, stateKey(s.Case, s.ID))
		return nil, err
	}
	if name != s.Name { // the name was taken: "name (2).ext"
		s.Name = name
		if err := in.saveState(ctx, s); err != nil {
			_ = in.catalog.RemoveFile(ctx, nf.Case, name)
			return nil, err
		}
	}
	in.log.InfoContext(ctx, "upload started", "case", s.Case, "upload", s.ID, "file", s.Name, "size", s.Size, "via", s.Via, "by", s.UploadedBy)
	in.audit(ctx, s, cases.EventUploadStarted, max(s.Size, 0), "")
	return &Upload{in: in, s: s}, nil
}

// Resume opens an upload of the case from its saved state.
func (in *Ingest) Resume(ctx context.Context, caseID, id string) (*Upload, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	s, err := in.loadState(ctx, caseID, id)
	if err != nil {
		return nil, err
	}
	return &Upload{in: in, s: s, loaded: s.SavedBy != in.boot}, nil
}

func (in *Ingest) tooLarge(size int64) error {
	return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, size, in.maxFileSize)
}

func newID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// Upload is one resumable upload.
type Upload struct {
	in *Ingest
	s  *state
	// loaded: the upload was read from a state another process saved,
	// which an earlier process may have left just after starting a
	// multipart upload it never recorded. (This process aborts one whose
	// recording failed at once.)
	loaded bool
}

// Info describes an upload's progress.
type Info struct {
	ID        string
	Case      string
	Name      string
	Size      int64 // -1 while unknown
	Offset    int64
	Meta      map[string]string
	Committed bool
	// ClosedAt is the offset at which a client last closed the upload
	// whole (MarkClosed), or -1.
	ClosedAt int64
}

// Info returns the upload's stored progress.
func (u *Upload) Info() Info {
	closed := int64(-1)
	if u.s.ClosedAt != nil {
		closed = *u.s.ClosedAt
	}
	return Info{ID: u.s.ID, Case: u.s.Case, Name: u.s.Name, Size: u.s.Size, Offset: u.s.Offset, Meta: u.s.Meta,
		Committed: u.s.Committed, ClosedAt: closed}
}

// DeclareLength sets the size of an upload created without one.
func (u *Upload) DeclareLength(ctx context.Context, size int64) error {
	if u.s.Size >= 0 || size < u.s.Offset {
		return fmt.Errorf("cannot declare length %d at offset %d", size, u.s.Offset)
	}
	if size > u.in.maxFileSize {
		return u.in.tooLarge(size)
	}
	u.s.Size = size
	return u.in.saveState(ctx, u.s)
}

func (in *Ingest) abort(ctx context.Context, s *state) {
	if s.Multipart != "" {
		if err := in.store.AbortMultipart(ctx, objectKey(s.Case, s.ID), s.Multipart); err != nil {
			in.log.WarnContext(ctx, "abort multipart upload", "case", s.Case, "upload", s.ID, "err", err)
		}
	}
	if err := in.store.Delete(ctx, objectKey(s.Case, s.ID)); err != nil {
		in.log.WarnContext(ctx, "delete object", "case", s.Case, "upload", s.ID, "err", err)
	}
}

// Terminate drops an unfinished upload: its stored bytes and its catalog
// entry. A committed file is kept (ErrCommitted).
func (u *Upload) Terminate(ctx context.Context) error {
	if u.s.Committed {
		return ErrCommitted
	}
	if err := u.in.markGone(ctx, u.s); err != nil {
		return err
	}
	u.in.abort(ctx, u.s)
	if err := u.in.catalog.RemoveFile(ctx, u.s.Case, u.s.Name); err != nil {
		return err
	}
	u.in.log.InfoContext(ctx, "upload terminated", "case", u.s.Case, "upload", u.s.ID, "file", u.s.Name)
	u.in.audit(ctx, u.s, cases.EventUploadTerminated, u.s.Offset, "")
	return u.in.store.Delete(ctx, stateKey(u.s.Case, u.s.ID))
}

// markGone saves s as gone before its bytes are deleted, with fenced
// states only: the save fails with ErrLockLost for a writer that lost the
// upload to another, which must then delete nothing. Without, the lock is
// exact and the state is deleted anyway.
func (in *Ingest) markGone(ctx context.Context, s *state) error {
	if !in.fenced {
		return nil
	}
	gone := *s
	gone.Gone = true
	if err := in.saveState(ctx, &gone); err != nil {
		return err
	}
	*s = gone
	return nil
}

// audit records an event of upload s; a failure to record is logged, not
// passed on: an audit outage must not stop an upload.
func (in *Ingest) audit(ctx context.Context, s *state, typ string, size int64, digest string) {
	in.auditDetail(ctx, s, typ, size, digest, "")
}

func (in *Ingest) auditDetail(ctx context.Context, s *state, typ string, size int64, digest, detail string) {
	ev := cases.Event{Type: typ, Case: s.Case, Actor: s.Actor, File: s.Name, Size: size, SHA256: digest, Detail: detail}
	if err := in.catalog.Audit(ctx, ev); err != nil {
		in.log.ErrorContext(ctx, "audit record lost", "type", typ, "case", s.Case, "file", s.Name, "err", err)
	}
}

// Open opens the stored bytes of a complete file for reading; a file held
// back by the scanner is refused (cases.File.Servable).
func (in *Ingest) Open(ctx context.Context, caseID string, f cases.File) (storage.Object, error) {
	if err := f.Servable(); err != nil {
		return nil, err
	}
	if f.State != cases.FileComplete {
		return nil, fmt.Errorf("%w: %s is %s", ErrIncomplete, f.Name, f.State)
	}
	return in.store.Open(ctx, objectKey(caseID, f.Object))
}

// OpenScan opens the stored bytes of a file waiting for its scan, for the
// scanner alone.
func (in *Ingest) OpenScan(ctx context.Context, caseID string, f cases.File) (storage.Object, error) {
	if f.State != cases.FileScanning {
		return nil, fmt.Errorf("%w: %s is %s, not waiting for a scan", ErrIncomplete, f.Name, f.State)
	}
	return in.store.Open(ctx, objectKey(caseID, f.Object))
}
