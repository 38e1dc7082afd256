package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/upload"
)

// apiError is an error with the status and code the client gets.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

func newError(status int, code, message string) error {
	return &apiError{status: status, code: code, message: message}
}

// errorMap is the one place where casedrop's errors become HTTP statuses.
// Messages shown for credential failures say no more than needed, so that
// they do not help a guesser.
var errorMap = []struct {
	err    error
	status int
	code   string
}{
	// The store's faults come first: whatever the request was doing, it
	// may succeed later (see retryLater); tus clients retry a 5xx.
	{storage.ErrUnavailable, http.StatusServiceUnavailable, "storage_unavailable"},
	{storage.ErrNoSpace, http.StatusInsufficientStorage, "insufficient_storage"},
	{auth.ErrInvalid, http.StatusUnauthorized, "invalid_credential"},
	{auth.ErrExpired, http.StatusUnauthorized, "credential_expired"},
	{auth.ErrRevoked, http.StatusUnauthorized, "credential_revoked"},
	{auth.ErrWrongCase, http.StatusForbidden, "wrong_case"},
	// A download link past its few minutes: its credential mints another.
	{auth.ErrDownloadExpired, http.StatusUnauthorized, "download_link_expired"},
	{auth.ErrWrongDownload, http.StatusForbidden, "wrong_download"},
	{cases.ErrInvalidCase, http.StatusBadRequest, "invalid_case"},
	{cases.ErrInvalidName, http.StatusBadRequest, "invalid_name"},
	{cases.ErrNotFound, http.StatusNotFound, "not_found"},
	// 403, not 409: tus clients retry a 409, and a closed case stays closed.
	{cases.ErrCaseClosed, http.StatusForbidden, "case_closed"},
	{cases.ErrNameConflict, http.StatusConflict, "name_conflict"},
	// 409: the scan ends soon, and the same request then succeeds.
	{cases.ErrFileScanning, http.StatusConflict, "file_scanning"},
	// 403: a quarantined file stays held, whoever asks.
	{cases.ErrFileQuarantined, http.StatusForbidden, "file_quarantined"},
	{cases.ErrNotQuarantined, http.StatusConflict, "not_quarantined"},
	{cases.ErrReleaseReason, http.StatusBadRequest, "reason_required"},
	{cases.ErrLinkNotFound, http.StatusNotFound, "link_not_found"},
	// 410: a link used or expired is gone for good; ask for a new one.
	{cases.ErrLinkUsed, http.StatusGone, "link_used"},
	{cases.ErrLinkExpired, http.StatusGone, "link_expired"},
	{upload.ErrNotFound, http.StatusNotFound, "not_found"},
	{upload.ErrInvalidDigest, http.StatusBadRequest, "invalid_digest"},
	// 460 is tus's "checksum mismatch".
	{upload.ErrDigestMismatch, 460, "digest_mismatch"},
	{upload.ErrChecksumMismatch, 460, "checksum_mismatch"},
	{upload.ErrChecksumUnsupported, http.StatusBadRequest, "checksum_unsupported"},
	{upload.ErrOffset, http.StatusConflict, "offset_mismatch"},
	// 409: tus clients retry it, ask for the offset (now 0) and resend.
	{upload.ErrRestarted, http.StatusConflict, "upload_restarted"},
	{upload.ErrTooLong, http.StatusRequestEntityTooLarge, "too_long"},
	{upload.ErrTooLarge, http.StatusRequestEntityTooLarge, "file_too_large"},
	// 429: the credential writes as many uploads as it may; one ends soon.
	{upload.ErrTooManyWriters, http.StatusTooManyRequests, "too_many_uploads"},
	{upload.ErrNotYours, http.StatusForbidden, "not_your_upload"},
	// 423, as tusd answers a request that lost its lock: tus clients
	// retry, ask for the offset and continue from what the new writer has.
	{upload.ErrLockLost, http.StatusLocked, "upload_taken_over"},
	{upload.ErrIncomplete, http.StatusConflict, "not_complete"},
	{upload.ErrCommitted, http.StatusForbidden, "file_complete"},
	{storage.ErrNotFound, http.StatusNotFound, "not_found"},
}

// retryLater is what clients are told of the store's faults, which pass:
// a message of its own (the store's error names addresses and paths, which
// are for the log) and when to try again (Retry-After).
var retryLater = map[error]struct {
	message string
	after   time.Duration
}{
	storage.ErrUnavailable: {"the server's storage is unavailable; try again later", 5 * time.Second},
	storage.ErrNoSpace:     {"the server's storage is full; try again later", time.Minute},
}

// answer is what a client is told of an error.
type answer struct {
	status     int
	code       string
	message    string
	retryAfter time.Duration
}

// classify returns what the client is told of err. Unknown errors are the
// server's: a generic message, the detail logged.
func classify(err error) answer {
	a := lookup(err)
	var limited tooManyTries
	if errors.As(err, &limited) {
		a.retryAfter = max(limited.after.Round(time.Second), time.Second)
	}
	return a
}

func lookup(err error) answer {
	if upload.ClientGone(err) {
		return answer{status: StatusClientGone, code: "client_gone", message: "the client went away"}
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return answer{status: ae.status, code: ae.code, message: ae.message}
	}
	for _, m := range errorMap {
		if !errors.Is(err, m.err) {
			continue
		}
		a := answer{status: m.status, code: m.code, message: err.Error()}
		if later, ok := retryLater[m.err]; ok {
			a.message, a.retryAfter = later.message, later.after
		}
		if m.status == http.StatusUnauthorized || m.status == http.StatusForbidden && m.code == "wrong_case" {
			a.message = m.err.Error() // never echo detail about a credential
		}
		return a
	}
	return answer{status: http.StatusInternalServerError, code: "internal", message: "internal server error"}
}

// StatusClientGone is the status logged (and written, unheard) for a
// request whose client went away before its answer: nginx's 499.
const StatusClientGone = 499

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// errorResponse returns the status, the headers beyond Content-Type and
// the JSON body that answer err.
func errorResponse(err error) (int, http.Header, string) {
	a := classify(err)
	b, _ := json.Marshal(errorBody{Error: a.message, Code: a.code})
	h := http.Header{}
	if a.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(a.retryAfter/time.Second)))
	}
	return a.status, h, string(b)
}

// logFailure logs err when it is the server's fault (a 5xx), in the name
// of msg. The store's outages are logged once, where the store is
// watched, not by every request they fail: those are debug lines here.
func logFailure(ctx context.Context, log *slog.Logger, status int, msg string, err error, args ...any) {
	switch {
	case upload.ClientGone(err):
		log.InfoContext(ctx, "client went away", append(args, "err", err)...)
	case status < 500:
	case storage.Fault(err) != nil:
		log.DebugContext(ctx, msg, append(args, "err", err)...)
	default:
		log.ErrorContext(ctx, msg, append(args, "err", err)...)
	}
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, header, body := errorResponse(err)
	logFailure(r.Context(), s.log, status, "request failed", err, "method", r.Method, "path", r.URL.Path)
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body + "\n"))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
