package upload

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/casedrop/casedrop/cases"
	"github.com/tus/tusd/v2/pkg/handler"
)

// Uploader is who is uploading, as the door authenticated them.
type Uploader struct {
	Case     string
	Username string
	// Actor is the rest of who they are, for the audit trail.
	Actor cases.Actor
}

type uploaderKey struct{}

type checksumKey struct{}

// WithChecksum returns ctx carrying the checksum a request's bytes came
// with (tus's Upload-Checksum); the tus data store then keeps the bytes
// only if they match.
func WithChecksum(ctx context.Context, c Checksum) context.Context {
	return context.WithValue(ctx, checksumKey{}, c)
}

// WithUploader returns ctx carrying the authenticated uploader; the tus
// data store takes the case and the uploader's name from it, so a request
// can only ever reach uploads of its own case.
func WithUploader(ctx context.Context, u Uploader) context.Context {
	return context.WithValue(ctx, uploaderKey{}, u)
}

func uploaderFrom(ctx context.Context) (Uploader, error) {
	u, ok := ctx.Value(uploaderKey{}).(Uploader)
	if !ok || u.Case == "" {
		return Uploader{}, errors.New("upload: no authenticated uploader in context")
	}
	return u, nil
}

// TusConfig configures the tus endpoint.
type TusConfig struct {
	// BasePath is where the handler is mounted, e.g. "/files/".
	BasePath string
	// HTTPError turns an error into the status, headers (besides
	// Content-Type, such as Retry-After) and JSON body sent to the client
	// (the web package's one error map).
	HTTPError func(error) (status int, header http.Header, body string)
	Logger    *slog.Logger
}

// TusHandler returns the tus 1.0 endpoint (creation, creation-with-upload,
// creation-defer-length, termination) storing through the ingest. Requests
// must carry an Uploader in their context (WithUploader).
func (in *Ingest) TusHandler(cfg TusConfig) (*handler.Handler, error) {
	store := &tusStore{in: in, httpError: cfg.HTTPError}
	composer := handler.NewStoreComposer()
	composer.UseCore(store)
	composer.UseTerminater(store)
	composer.UseLengthDeferrer(store)
	// Requests on one upload hold the ingest's lock, the one SFTP takes.
	composer.UseLocker(tusLocker{store})
	return handler.NewHandler(handler.Config{
		BasePath:             cfg.BasePath,
		MaxSize:              in.maxFileSize,
		StoreComposer:        composer,
		DisableDownload:      true, // downloads go through the case API
		DisableConcatenation: true,
		Cors:                 &handler.CorsConfig{Disable: true}, // web answers CORS, for the embedding origins only
		Logger:               tusLogger(cfg.Logger),
	})
}

type tusStore struct {
	in        *Ingest
	httpError func(error) (int, http.Header, string)
}

// tusError gives err the status and JSON body of the web error map.
func (t *tusStore) tusError(err error) error {
	if err == nil {
		return nil
	}
	var already handler.Error
	if errors.As(err, &already) {
		return err
	}
	status, header, body := t.httpError(err)
	h := handler.HTTPHeader{"Content-Type": "application/json"}
	for k := range header {
		h[k] = header.Get(k)
	}
	return handler.Error{
		ErrorCode: http.StatusText(status),
		Message:   err.Error(),
		HTTPResponse: handler.HTTPResponse{
			StatusCode: status,
			Body:       body,
			Header:     h,
		},
	}
}

func (t *tusStore) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	who, err := uploaderFrom(ctx)
	if err != nil {
		return nil, err
	}
	name := info.MetaData["filename"]
	if name == "" {
		name = info.MetaData["name"] // Uppy's key
	}
	size := info.Size
	if info.SizeIsDeferred {
		size = -1
	}
	u, err := t.in.Create(ctx, NewFile{
		Case: who.Case, Name: name, Size: size, SHA256: info.MetaData["sha256"],
		Via: "tus", UploadedBy: who.Username, Meta: info.MetaData, Actor: who.Actor,
	})
	if err != nil {
		return nil, t.tusError(err)
	}
	return &tusUpload{u: u, t: t}, nil
}

func (t *tusStore) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	who, err := uploaderFrom(ctx)
	if err != nil {
		return nil, err
	}
	u, err := t.in.Resume(ctx, who.Case, id)
	if errors.Is(err, ErrNotFound) {
		return nil, handler.ErrNotFound
	}
	if err != nil {
		return nil, t.tusError(err)
	}
	// An unfinished upload is another credential's to write: a customer
	// does not learn it exists; staff may look at it and terminate it.
	foreign := u.s.UploadedBy != who.Username
	if foreign && who.Actor.Role != "staff" {
		return nil, handler.ErrNotFound
	}
	// All bytes stored but not committed (the server stopped in between,
	// perhaps before it recorded the store's completion): finish now, so
	// the client asking for the offset finds the file done.
	if !u.s.Committed && !foreign && u.s.Size >= 0 && u.s.Offset == u.s.Size {
		if _, err := u.Finish(ctx); err != nil && !errors.Is(err, ErrDigestMismatch) {
			return nil, t.tusError(err)
		}
	}
	return &tusUpload{u: u, t: t, foreign: foreign}, nil
}

func (t *tusStore) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	return u.(*tusUpload)
}

func (t *tusStore) AsLengthDeclarableUpload(u handler.Upload) handler.LengthDeclarableUpload {
	return u.(*tusUpload)
}

type tusUpload struct {
	u *Upload
	t *tusStore
	// foreign: staff looking at another's upload; they may terminate it,
	// not write it.
	foreign bool
}

func (tu *tusUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	if tu.foreign {
		return 0, tu.t.tusError(ErrNotYours)
	}
	var (
		n   int64
		err error
	)
	if c, ok := ctx.Value(checksumKey{}).(Checksum); ok {
		n, err = tu.u.WriteChecked(ctx, offset, src, c)
	} else {
		n, err = tu.u.Write(ctx, offset, src)
	}
	return n, tu.t.tusError(err)
}

func (tu *tusUpload) GetInfo(ctx context.Context) (handler.FileInfo, error) {
	info := tu.u.Info()
	return handler.FileInfo{
		ID:             info.ID,
		Size:           max(info.Size, 0),
		SizeIsDeferred: info.Size < 0,
		Offset:         info.Offset,
		MetaData:       info.Meta,
	}, nil
}

func (tu *tusUpload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	return nil, handler.ErrNotImplemented
}

func (tu *tusUpload) FinishUpload(ctx context.Context) error {
	if tu.foreign {
		return tu.t.tusError(ErrNotYours)
	}
	_, err := tu.u.Finish(ctx)
	return tu.t.tusError(err)
}

func (tu *tusUpload) Terminate(ctx context.Context) error {
	return tu.t.tusError(tu.u.Terminate(ctx))
}

func (tu *tusUpload) DeclareLength(ctx context.Context, length int64) error {
	if tu.foreign {
		return tu.t.tusError(ErrNotYours)
	}
	return tu.t.tusError(tu.u.DeclareLength(ctx, length))
}
