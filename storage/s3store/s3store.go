// Package s3store is the S3-compatible storage.Store, on minio-go: objects
// through the normal client, multipart uploads through minio.Core's calls,
// which map one to one onto S3's. Bodies are streamed, never buffered.
package s3store

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/tags"

	"github.com/casedrop/casedrop/storage"
)

// Config says where the store is.
type Config struct {
	// Endpoint is the S3 API's host[:port], without a scheme.
	Endpoint string
	// Bucket holds the objects; New creates it if it does not exist.
	Bucket string
	// AccessKey and SecretKey are the credentials (signature V4).
	AccessKey, SecretKey string
	// Region is the bucket's region; empty asks the server.
	Region string
	// Insecure talks plain HTTP instead of HTTPS (a local MinIO).
	Insecure bool
	// Prefix, if set, is put before every key inside the bucket, as a
	// folder: "casedrop" and "casedrop/" both store key k at "casedrop/k".
	Prefix string
}

// Store is a storage.Store in an S3 bucket. Its zero value is not usable;
// call New.
type Store struct {
	client *minio.Client // objects
	core   *minio.Core   // multipart uploads and single PUTs, on client
	// probe is core without retries, for Ping: minio-go retries a failed
	// request up to 10 times, backing off for seconds, which would hide an
	// outage from a readiness check.
	probe  *minio.Core
	bucket string
	prefix string

	// maxSinglePut is the largest object put in one PUT (S3's limit);
	// larger ones go as multipart uploads of multipartPartSize parts or
	// more. Fields so that tests can lower them.
	maxSinglePut, multipartPartSize int64
}

var _ storage.Store = (*Store)(nil)

// New connects to the bucket cfg names and creates the bucket if it does
// not exist.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3store: endpoint and bucket are required")
	}
	opts := &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    !cfg.Insecure,
		Region:    cfg.Region,
		Transport: transport(!cfg.Insecure),
	}
	core, err := minio.NewCore(cfg.Endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	once := *opts
	once.MaxRetries = 1 // one attempt
	probe, err := minio.NewCore(cfg.Endpoint, &once)
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	s := &Store{
		client:            core.Client,
		core:              core,
		probe:             probe,
		bucket:            cfg.Bucket,
		maxSinglePut:      5 << 30,
		multipartPartSize: 64 << 20,
	}
	if p := strings.Trim(cfg.Prefix, "/"); p != "" {
		s.prefix = p + "/"
	}
	ok, err := s.client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3store: bucket %s: %w", cfg.Bucket, err)
	}
	if !ok {
		err := s.client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if err != nil && errCode(err) != "BucketAlreadyOwnedByYou" { // another instance was quicker
			return nil, fmt.Errorf("s3store: create bucket %s: %w", cfg.Bucket, err)
		}
	}
	return s, nil
}

// transport is minio-go's default transport with more idle connections
// per host, since every concurrent transfer holds one, and larger buffers.
func transport(secure bool) http.RoundTripper {
	t, err := minio.DefaultTransport(secure)
	if err != nil { // it never fails; stay usable if that changes
		return nil
	}
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	t.ReadBufferSize = 64 << 10
	t.WriteBufferSize = 64 << 10
	return t
}

// probeKey is the object Ping writes; probeBody is what it holds.
const probeKey = "system/ready-probe"

var probeBody = []byte("casedrop checks that the store takes writes\n")

// Ping reports whether the store takes writes now, in one attempt: it
// writes probeKey if it is not there yet. The write is conditional
// (If-None-Match: *), so once the object exists nothing more is stored,
// not even a version; MinIO still checks its drives' free space first and
// refuses with XMinioStorageFull below its threshold. An unreachable store,
// or one that does not answer before ctx's deadline, fails with
// storage.ErrUnavailable; a full one with storage.ErrNoSpace; a missing
// bucket with an error of its own.
func (s *Store) Ping(ctx context.Context) error {
	var opts minio.PutObjectOptions
	opts.SetMatchETagExcept("*")
	_, err := s.probe.PutObject(ctx, s.bucket, s.name(probeKey), bytes.NewReader(probeBody), int64(len(probeBody)), "", "", opts)
	if err == nil || classify(err) == storage.ErrExists {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("s3store: ping: %w: no answer in time (%w)", storage.ErrUnavailable, err)
	}
	return s.err(ctx, "ping", probeKey, err)
}

// Put stores exactly size bytes of r under key, replacing any object there.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.put(ctx, key, r, size, minio.PutObjectOptions{}, nil)
}

// PutIfAbsent is Put that fails with storage.ErrExists when key already
// holds an object, by a conditional write (If-None-Match: *) that the
// server decides, so of two racing callers exactly one succeeds.
func (s *Store) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	var opts minio.PutObjectOptions
	opts.SetMatchETagExcept("*")
	return s.put(ctx, key, r, size, opts, storage.ErrExists)
}

// PutIfMatch is Put that fails with storage.ErrChanged unless key holds
// the object whose ETag is etag, by a conditional write (If-Match: etag)
// that the server decides. A store that ignores If-Match replaces the
// object whatever it is (MinIO before August 2025 did so for a missing
// key); the storage contract test finds such a store out.
func (s *Store) PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) error {
	etag = strings.Trim(etag, `"`)
	if etag == "" || etag == "*" { // "*" would match any object
		return fmt.Errorf("s3store: put %q: %w: no ETag given", key, storage.ErrChanged)
	}
	var opts minio.PutObjectOptions
	opts.SetMatchETag(etag)
	return s.put(ctx, key, r, size, opts, storage.ErrChanged)
}

// put stores r under key with the conditions in opts; refused is the
// error a condition that did not hold stands for (nil: no conditions).
func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64, opts minio.PutObjectOptions, refused error) error {
	if err := storage.ValidKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("s3store: put %q: negative size %d", key, size)
	}
	if size > s.maxSinglePut {
		return s.putMultipart(ctx, key, r, size, opts, refused)
	}
	// Unsigned payload: no SHA-256 over the body; TLS or the caller's own
	// digest protects it.
	opts.DisableContentSha256 = true
	b := body(r, size)
	_, err := s.core.PutObject(ctx, s.bucket, s.name(key), b, size, "", "", opts)
	b.fence()
	if err != nil {
		return s.putErr(ctx, key, err, refused)
	}
	return nil
}

// putMultipart stores an object too large for one PUT, part by part, each
// streamed from r; conditions in opts apply to the completion.
func (s *Store) putMultipart(ctx context.Context, key string, r io.Reader, size int64, opts minio.PutObjectOptions, refused error) error {
	partSize := max(s.multipartPartSize, (size+storage.MaxParts-1)/storage.MaxParts)
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, s.name(key), minio.PutObjectOptions{})
	if err != nil {
		return s.err(ctx, "put", key, err)
	}
	var parts []minio.CompletePart
	for n, off := 1, int64(0); off < size; n, off = n+1, off+partSize {
		p, err := s.PutPart(ctx, key, id, n, r, min(partSize, size-off))
		if err != nil {
			s.abortAfter(ctx, key, id)
			return err
		}
		parts = append(parts, minio.CompletePart{PartNumber: p.Number, ETag: p.ETag})
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, s.name(key), id, parts, opts); err != nil {
		s.abortAfter(ctx, key, id)
		return s.putErr(ctx, key, err, refused)
	}
	return nil
}

// putErr wraps the error of a put. For a conditional put, the server's
// answers that the condition did not hold are refused: 412; for If-Match
// also 409 ConditionalRequestConflict (S3: another write to the key came
// in meanwhile) and 404 (S3: no object to match; Ceph answers 412).
func (s *Store) putErr(ctx context.Context, key string, err, refused error) error {
	var resp minio.ErrorResponse
	if refused != nil && errors.As(err, &resp) {
		ifMatch := refused == storage.ErrChanged
		if resp.StatusCode == http.StatusPreconditionFailed || resp.Code == "PreconditionFailed" ||
			ifMatch && (resp.Code == "ConditionalRequestConflict" || resp.Code == "NoSuchKey") {
			return fmt.Errorf("s3store: put %q: %w (%w)", key, refused, err)
		}
	}
	return s.err(ctx, "put", key, err)
}

// abortAfter drops an upload that failed, even when ctx is what failed it.
func (s *Store) abortAfter(ctx context.Context, key, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = s.AbortMultipart(ctx, key, id)
}

// Open opens the object under key for reading. The GET is sent here, so a
// missing object fails at once and the reads stream from that response;
// Seek only moves the position, and a read away from the stream's position
// starts a ranged GET pinned to the same version (If-Match), so an object
// replaced meanwhile is an error rather than a mix of two versions.
func (s *Store) Open(ctx context.Context, key string) (storage.Object, error) {
	if err := storage.ValidKey(key); err != nil {
		return nil, err
	}
	body, oi, _, err := s.core.GetObject(ctx, s.bucket, s.name(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.err(ctx, "open", key, err)
	}
	return &object{s: s, ctx: ctx, key: key, info: s.info(oi), body: body}, nil
}

// Stat describes the object under key.
func (s *Store) Stat(ctx context.Context, key string) (storage.Info, error) {
	if err := storage.ValidKey(key); err != nil {
		return storage.Info{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.name(key), minio.StatObjectOptions{})
	if err != nil {
		return storage.Info{}, s.err(ctx, "stat", key, err)
	}
	return s.info(oi), nil
}

// Delete removes the object under key; deleting a missing key is no error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storage.ValidKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.name(key), minio.RemoveObjectOptions{})
	if err != nil && !errors.Is(s.err(ctx, "delete", key, err), storage.ErrNotFound) {
		return s.err(ctx, "delete", key, err)
	}
	return nil
}

// List returns every object whose key starts with prefix, sorted by key
// (S3 lists in byte order).
func (s *Store) List(ctx context.Context, prefix string) ([]storage.Info, error) {
	if !storage.ValidPrefix(prefix) {
		return nil, nil // MinIO refuses to list such prefixes, and no key has them
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends minio-go's listing if we stop early
	var infos []storage.Info
	opts := minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}
	for oi := range s.client.ListObjectsIter(ctx, s.bucket, opts) {
		if oi.Err != nil {
			return nil, s.err(ctx, "list", prefix, oi.Err)
		}
		if strings.HasSuffix(oi.Key, "/") {
			continue // a folder marker some tools make, not an object
		}
		infos = append(infos, s.info(oi))
	}
	return infos, nil
}

// name is the bucket's name for key.
func (s *Store) name(key string) string { return s.prefix + key }

// info describes a listed or stated object under its key.
func (s *Store) info(oi minio.ObjectInfo) storage.Info {
	return storage.Info{
		Key:     strings.TrimPrefix(oi.Key, s.prefix),
		Size:    oi.Size,
		ModTime: oi.LastModified,
		ETag:    strings.Trim(oi.ETag, `"`),
	}
}

// err wraps an error of op on key for the caller, adding what it stands
// for (see classify). A failure once ctx has ended is the caller's doing (a
// client gone, a deadline of its own), not a fault of the store: it is not
// called one.
func (s *Store) err(ctx context.Context, op, key string, err error) error {
	if kind := classify(err); kind != nil && (storage.Fault(kind) == nil || ctx.Err() == nil) {
		return fmt.Errorf("s3store: %s %q: %w (%w)", op, key, kind, err)
	}
	return fmt.Errorf("s3store: %s %q: %w", op, key, err)
}

// classify returns the storage error that err of minio-go stands for, or
// nil: storage.ErrNotFound for a missing object or upload,
// storage.ErrExists for a failed If-None-Match, storage.ErrNoSpace for a
// store out of space, storage.ErrUnavailable for one that cannot be
// reached or answers that it cannot serve now.
func classify(err error) error {
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		if unreachable(err) {
			return storage.ErrUnavailable
		}
		return nil
	}
	switch {
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchUpload" ||
		resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket":
		return storage.ErrNotFound
	case resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed:
		return storage.ErrExists
	case noSpaceCodes[resp.Code] || resp.StatusCode == http.StatusInsufficientStorage:
		return storage.ErrNoSpace
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || busyCodes[resp.Code]:
		return storage.ErrUnavailable
	}
	return nil
}

// noSpaceCodes are the S3 error codes of a store out of space. casedrop
// never sends an object or part over S3's own limits, so EntityTooLarge
// can only be a limit of the store's below them.
var noSpaceCodes = map[string]bool{
	"XMinioStorageFull":              true, // MinIO: its drives are nearly full (507)
	"XMinioAdminBucketQuotaExceeded": true, // MinIO: the bucket's hard quota
	"QuotaExceeded":                  true, // Ceph RGW and others: a user or bucket quota
	"EntityTooLarge":                 true,
}

// busyCodes are the S3 error codes, besides any 5xx, of a store that
// cannot serve the request now (some of them come with a 4xx status).
var busyCodes = map[string]bool{
	"SlowDown":                   true,
	"ServiceUnavailable":         true,
	"InternalError":              true,
	"RequestTimeout":             true,
	"XMinioServerNotInitialized": true,
}

// unreachable reports whether err says that the store could not be
// reached or did not answer: a refused or reset connection, a timeout, a
// failed name lookup. net/http reports all of them as a net.Error. A
// certificate refused is a misconfiguration, not an outage.
func unreachable(err error) bool {
	var (
		certErr *tls.CertificateVerificationError
		authErr x509.UnknownAuthorityError
		hostErr x509.HostnameError
		netErr  net.Error
	)
	if errors.As(err, &certErr) || errors.As(err, &authErr) || errors.As(err, &hostErr) {
		return false
	}
	return errors.As(err, &netErr)
}

// errCode is the S3 error code of err, if it has one.
func errCode(err error) string {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Code
	}
	return ""
}

// body hands r to minio-go as exactly size bytes of a plain reader. minio-go
// closes a body that is an io.Closer and, to retry, seeks a body that is an
// io.Seeker back to offset 0, which is not where the caller's data starts
// if r was positioned; a plain reader is sent once and left open.
//
// The caller fences the body once minio-go's call has returned: net/http
// may go on reading a request's body after the answer came back (an error
// answered before the body was all sent, such as NoSuchUpload), while the
// caller reuses the memory behind r as soon as the call returns. After
// fence no read touches r. Bodies here are in memory: a read never blocks.
func body(r io.Reader, size int64) *fencedBody {
	return &fencedBody{r: io.LimitReader(r, size)}
}

type fencedBody struct {
	mu     sync.Mutex
	r      io.Reader
	fenced bool
}

var errFenced = errors.New("s3store: the request this body belonged to is over")

func (b *fencedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fenced {
		return 0, errFenced
	}
	return b.r.Read(p)
}

// fence stops every later read, once a read under way has returned.
func (b *fencedBody) fence() {
	b.mu.Lock()
	b.fenced = true
	b.mu.Unlock()
}

// object is an open S3 object.
type object struct {
	s    *Store
	ctx  context.Context
	key  string
	info storage.Info
	// body streams the object from bodyPos; pos is where the reader is.
	body    io.ReadCloser
	bodyPos int64
	pos     int64
}

// Info describes the object as it was when opened.
func (o *object) Info() storage.Info { return o.info }

func (o *object) Read(p []byte) (int, error) {
	if o.pos >= o.info.Size {
		return 0, io.EOF
	}
	if o.body == nil || o.bodyPos != o.pos {
		if o.body != nil {
			_ = o.body.Close()
			o.body = nil
		}
		opts := minio.GetObjectOptions{}
		// SetRange(0, 0) would ask for byte 0 alone: from 0, ask for all.
		if o.pos > 0 {
			if err := opts.SetRange(o.pos, 0); err != nil {
				return 0, err
			}
		}
		if err := opts.SetMatchETag(o.info.ETag); err != nil {
			return 0, err
		}
		body, _, _, err := o.s.core.GetObject(o.ctx, o.s.bucket, o.s.name(o.key), opts)
		if err != nil {
			return 0, o.s.err(o.ctx, "read", o.key, err)
		}
		o.body, o.bodyPos = body, o.pos
	}
	n, err := o.body.Read(p)
	o.pos += int64(n)
	o.bodyPos += int64(n)
	if err == io.EOF && o.pos < o.info.Size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (o *object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.pos
	case io.SeekEnd:
		offset += o.info.Size
	default:
		return o.pos, errors.New("s3store: bad whence")
	}
	if offset < 0 {
		return o.pos, errors.New("s3store: seek before the start")
	}
	o.pos = offset
	return offset, nil
}

func (o *object) Close() error {
	if o.body == nil {
		return nil
	}
	err := o.body.Close()
	o.body = nil
	return err
}

// SetDigest tags the object with its SHA-256 ("sha256" object tag): one
// request, no copy of the data (S3 metadata could only be replaced by
// copying the whole object).
func (s *Store) SetDigest(ctx context.Context, key, sha256hex string) error {
	if err := storage.ValidKey(key); err != nil {
		return err
	}
	t, err := tags.NewTags(map[string]string{"sha256": sha256hex}, true)
	if err != nil {
		return err
	}
	if err := s.client.PutObjectTagging(ctx, s.bucket, s.name(key), t, minio.PutObjectTaggingOptions{}); err != nil {
		return s.err(ctx, "tag", key, err)
	}
	return nil
}

// Digest returns the object's "sha256" tag, or "" if it has none.
func (s *Store) Digest(ctx context.Context, key string) (string, error) {
	if err := storage.ValidKey(key); err != nil {
		return "", err
	}
	t, err := s.client.GetObjectTagging(ctx, s.bucket, s.name(key), minio.GetObjectTaggingOptions{})
	if err != nil {
		return "", s.err(ctx, "tags", key, err)
	}
	return t.ToMap()["sha256"], nil
}
