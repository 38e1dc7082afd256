package web

import (
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
	{auth.ErrInvalid, http.StatusUnauthorized, "invalid_credential"},
	{auth.ErrExpired, http.StatusUnauthorized, "credential_expired"},
	{auth.ErrRevoked, http.StatusUnauthorized, "credential_revoked"},
	{auth.ErrWrongCase, http.StatusForbidden, "wrong_case"},
	{cases.ErrInvalidCase, http.StatusBadRequest, "invalid_case"},
	{cases.ErrInvalidName, http.StatusBadRequest, "invalid_name"},
	{cases.ErrNotFound, http.StatusNotFound, "not_found"},
	// 403, not 409: tus clients retry a 409, and a closed case stays closed.
	{cases.ErrCaseClosed, http.StatusForbidden, "case_closed"},
	{cases.ErrNameConflict, http.StatusConflict, "name_conflict"},
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
	{upload.ErrIncomplete, http.StatusConflict, "not_complete"},
	{upload.ErrCommitted, http.StatusForbidden, "file_complete"},
	{storage.ErrNotFound, http.StatusNotFound, "not_found"},
}

// classify returns the status, code and client-facing message of err.
// Unknown errors are the server's: a generic message, the detail logged.
func classify(err error) (int, string, string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.code, ae.message
	}
	for _, m := range errorMap {
		if errors.Is(err, m.err) {
			msg := err.Error()
			if m.status == http.StatusUnauthorized || m.status == http.StatusForbidden && m.code == "wrong_case" {
				msg = m.err.Error() // never echo detail about a credential
			}
			return m.status, m.code, msg
		}
	}
	return http.StatusInternalServerError, "internal", "internal server error"
}

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func errorJSON(err error) (int, string) {
	status, code, msg := classify(err)
	b, _ := json.Marshal(errorBody{Error: msg, Code: code})
	return status, string(b)
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorJSON(err)
	if status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var limited tooManyTries
	if errors.As(err, &limited) {
		w.Header().Set("Retry-After", strconv.Itoa(int(max(limited.after.Round(time.Second), time.Second)/time.Second)))
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

// logHTTPError logs what a handler answers with 5xx; used by the tus
// error path, which writes its own responses.
func logHTTPError(log *slog.Logger, err error) {
	if status, _, _ := classify(err); status >= 500 {
		log.Error("tus request failed", "err", err)
	}
}
