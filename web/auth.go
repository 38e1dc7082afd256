package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/upload"
)

var (
	errNoCredential = newError(http.StatusUnauthorized, "unauthorized", "missing bearer credential")
	errTooManyTries = newError(http.StatusTooManyRequests, "too_many_attempts", "too many failed logins from this address; try again later")
	errAdminOnly    = newError(http.StatusForbidden, "forbidden", "this endpoint needs the admin token")
)

// caller is who made a request.
type caller struct {
	Admin  bool
	Claims auth.Claims
	// Link says the credential came in by a download link (?dl=), not
	// its header.
	Link bool
}

type callerKey struct{}

func callerFrom(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// authenticate checks the bearer credential of r: the admin token, or a
// case credential (for caseID when it is not empty) through the login
// gate, which a valid credential always passes; a refused one is answered
// "too many attempts" once its source is over its budget.
func (s *server) authenticate(r *http.Request, caseID string, adminOK bool) (caller, error) {
	token := bearer(r)
	if token == "" {
		return caller{}, errNoCredential
	}
	if auth.AdminTokenMatches(s.AdminToken, token) {
		if !adminOK {
			return caller{}, newError(http.StatusForbidden, "forbidden", "use a case credential here, not the admin token")
		}
		return caller{Admin: true}, nil
	}
	// The gate checks the signature before it reads the store
	// (revocation), so a guesser's tokens cost no store reads.
	claims, err := s.gate.Token(r.Context(), knock(r), token, caseID)
	if err != nil {
		return caller{}, limited(err)
	}
	return caller{Claims: claims}, nil
}

// authenticateLink checks the download link of r (?dl=): for the case in
// the path and the download r asks for, and the credential it was minted
// for still valid, through the same gate as a credential.
func (s *server) authenticateLink(r *http.Request, link string) (caller, error) {
	claims, err := s.gate.DownloadLink(r.Context(), knock(r), link, r.PathValue("case"), downloadOf(r))
	if err != nil {
		return caller{}, limited(err)
	}
	return caller{Claims: claims, Link: true}, nil
}

// knock is the client of r as the gate counts and records it: never with
// the query string, where a download link rides.
func knock(r *http.Request) auth.Knock {
	return auth.Knock{Door: door(r), Remote: clientAddr(r), On: cases.CleanDetail(r.Method + " " + r.URL.Path)}
}

// limited answers a refusal of the gate whose source is over its budget
// "too many attempts"; any other error stays as it is.
func limited(err error) error {
	var refused *auth.Refused
	if errors.As(err, &refused) && refused.Limited {
		return tooManyTries{errTooManyTries, refused.RetryAfter}
	}
	return err
}

// tooManyTries is errTooManyTries with when the source may try again.
type tooManyTries struct {
	error
	after time.Duration
}

func (e tooManyTries) Unwrap() error { return e.error }

// door names the door of r for metrics and the trail: tus or api.
func door(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/files/") {
		return "tus"
	}
	return "api"
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *server) run(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// requireAdmin lets only the admin token through.
func (s *server) requireAdmin(h handlerFunc) http.Handler {
	return s.run(func(w http.ResponseWriter, r *http.Request) error {
		c, err := s.authenticate(r, "", true)
		if err != nil {
			return err
		}
		if !c.Admin {
			return errAdminOnly
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// requireCaseAccess lets through the admin token or a credential of the
// case named in the path. What it answers is the case's own: no cache
// keeps it.
func (s *server) requireCaseAccess(h handlerFunc) http.Handler {
	return s.caseAccess(h, false)
}

// requireDownloadAccess is requireCaseAccess for a download, which a
// download link opens too (?dl=, when no Authorization header is sent):
// one minted for a credential of the case, for this very download.
func (s *server) requireDownloadAccess(h handlerFunc) http.Handler {
	return s.caseAccess(h, true)
}

func (s *server) caseAccess(h handlerFunc, linkOK bool) http.Handler {
	return s.run(func(w http.ResponseWriter, r *http.Request) error {
		var (
			c   caller
			err error
		)
		if link := r.URL.Query().Get(downloadLinkParam); linkOK && link != "" && r.Header.Get("Authorization") == "" {
			c, err = s.authenticateLink(r, link)
		} else {
			c, err = s.authenticate(r, r.PathValue("case"), true)
		}
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		return h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// maxMetadata bounds the tus Upload-Metadata header (names, digest, type).
const maxMetadata = 4 << 10

// tusAuth admits tus requests with a case credential; the credential's case
// and user name ride in the context into the upload store.
func (s *server) tusAuth(next http.Handler) http.Handler {
	return s.run(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return nil
		}
		if len(r.Header.Get("Upload-Metadata")) > maxMetadata {
			return newError(http.StatusRequestHeaderFieldsTooLarge, "metadata_too_large", "Upload-Metadata is larger than 4 KiB")
		}
		c, err := s.authenticate(r, "", false)
		if err != nil {
			return err
		}
		if err := s.checkUploadLength(r); err != nil {
			return err
		}
		ctx := upload.WithUploader(r.Context(), upload.Uploader{Case: c.Claims.Case, Username: c.Claims.Username,
			Actor: cases.ActorOf(c.Claims, "tus", clientAddr(r).String())})
		// Checked again between the parts of a long request: revoking the
		// credential or its expiry stops a PATCH in flight.
		token := bearer(r)
		ctx = upload.WithAuthorization(ctx, func(ctx context.Context) error {
			_, err := s.Verifier.Verify(ctx, token)
			return err
		})
		if h := r.Header.Get("Upload-Checksum"); h != "" {
			sum, err := parseUploadChecksum(h)
			if err != nil {
				return err
			}
			ctx = upload.WithChecksum(ctx, sum)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
		return nil
	})
}

// checkUploadLength refuses a declared Upload-Length over the largest file
// with 413, on creation and on a deferred length's PATCH alike.
func (s *server) checkUploadLength(r *http.Request) error {
	h := r.Header.Get("Upload-Length")
	if h == "" {
		return nil
	}
	n, err := strconv.ParseInt(h, 10, 64)
	if err == nil && n > s.Ingest.MaxFileSize() || errors.Is(err, strconv.ErrRange) {
		return newError(http.StatusRequestEntityTooLarge, "file_too_large",
			fmt.Sprintf("Upload-Length is over the largest file this server accepts (%d bytes)", s.Ingest.MaxFileSize()))
	}
	return nil // tusd answers other malformed lengths
}

// parseUploadChecksum reads tus's "Upload-Checksum: <algorithm> <base64>".
func parseUploadChecksum(h string) (upload.Checksum, error) {
	alg, b64, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok {
		return upload.Checksum{}, newError(http.StatusBadRequest, "invalid_checksum", `Upload-Checksum must be "<algorithm> <base64 digest>"`)
	}
	sum, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return upload.Checksum{}, newError(http.StatusBadRequest, "invalid_checksum", "Upload-Checksum digest is not base64")
	}
	alg = strings.ToLower(alg)
	if !slices.Contains(upload.ChecksumAlgorithms, alg) {
		return upload.Checksum{}, fmt.Errorf("%w: %q (use %s)", upload.ErrChecksumUnsupported, alg, strings.Join(upload.ChecksumAlgorithms, ", "))
	}
	return upload.Checksum{Algorithm: alg, Sum: sum}, nil
}

// jsonErrors rewrites tusd's own plain-text error responses (bad headers,
// wrong offset, ...) into casedrop's JSON errors, and adds the checksum
// extension to what tusd advertises.
func jsonErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jw := &jsonErrorWriter{ResponseWriter: w, method: r.Method}
		defer jw.end()
		next.ServeHTTP(jw, r)
		if jw.captured != nil {
			jw.flushError()
		}
	})
}

type jsonErrorWriter struct {
	http.ResponseWriter
	method   string
	status   int
	captured *bytes.Buffer

	// tusd moves the connection's deadlines after every read of the body,
	// and the ingest reads the body on a goroutine of its own, which can
	// finish a read after the handler has answered (a PATCH refused while
	// its body streams). Deadlines set then must not reach the finished
	// response: HTTP/2's panics. over says the handler has returned.
	mu   sync.Mutex
	over bool
}

var errRequestOver = errors.New("web: the request has been answered")

// SetReadDeadline moves the request's read deadline while the handler
// runs (http.ResponseController finds it before the writer underneath).
func (j *jsonErrorWriter) SetReadDeadline(t time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.over {
		return errRequestOver
	}
	return http.NewResponseController(j.ResponseWriter).SetReadDeadline(t)
}

// SetWriteDeadline is SetReadDeadline's twin for writes.
func (j *jsonErrorWriter) SetWriteDeadline(t time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.over {
		return errRequestOver
	}
	return http.NewResponseController(j.ResponseWriter).SetWriteDeadline(t)
}

// end marks the request answered, once a deadline being set is.
func (j *jsonErrorWriter) end() {
	j.mu.Lock()
	j.over = true
	j.mu.Unlock()
}

func (j *jsonErrorWriter) WriteHeader(code int) {
	// tusd lacks the checksum extension; casedrop's ingest has it.
	if ext := j.Header().Get("Tus-Extension"); ext != "" && !strings.Contains(ext, "checksum") {
		j.Header().Set("Tus-Extension", ext+",checksum")
		j.Header().Set("Tus-Checksum-Algorithm", strings.Join(upload.ChecksumAlgorithms, ","))
	}
	if code >= 400 && strings.HasPrefix(j.Header().Get("Content-Type"), "text/plain") {
		j.status, j.captured = code, &bytes.Buffer{}
		return
	}
	j.ResponseWriter.WriteHeader(code)
}

func (j *jsonErrorWriter) Write(b []byte) (int, error) {
	if j.captured == nil {
		return j.ResponseWriter.Write(b)
	}
	if j.captured.Len() < 4096 {
		j.captured.Write(b)
	}
	return len(b), nil
}

// flushError sends the captured "ERR_CODE: message" as JSON once the
// handler is done.
func (j *jsonErrorWriter) flushError() {
	text := strings.TrimSpace(j.captured.String())
	code, msg, ok := strings.Cut(text, ": ")
	if !ok {
		code, msg = "tus_error", text
	}
	code = strings.ToLower(strings.TrimPrefix(code, "ERR_"))
	body, _ := json.Marshal(errorBody{Error: msg, Code: code})
	j.Header().Set("Content-Type", "application/json")
	j.Header().Del("Content-Length")
	j.ResponseWriter.WriteHeader(j.status)
	if j.method != http.MethodHead {
		_, _ = j.ResponseWriter.Write(append(body, '\n'))
	}
	j.captured = nil
}

func (j *jsonErrorWriter) Unwrap() http.ResponseWriter { return j.ResponseWriter }
