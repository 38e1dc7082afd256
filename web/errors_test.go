package web

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/sentinels"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/upload"
)

// answers is every exported sentinel error of the domain packages and what
// HTTP answers it with (README, "The HTTP surface"). A status of 0 marks
// an error this map does not answer, with why: it is answered elsewhere or
// never reaches the HTTP door, so it is the server's fault (500) if it does.
var answers = []struct {
	name   string
	err    error
	status int
	code   string
	why    string
}{
	{name: "storage.ErrUnavailable", err: storage.ErrUnavailable, status: http.StatusServiceUnavailable, code: "storage_unavailable"},
	{name: "storage.ErrNoSpace", err: storage.ErrNoSpace, status: http.StatusInsufficientStorage, code: "insufficient_storage"},
	{name: "storage.ErrNotFound", err: storage.ErrNotFound, status: http.StatusNotFound, code: "not_found"},
	{name: "storage.ErrExists", err: storage.ErrExists, why: "PutIfAbsent's answer, which its callers decide on"},
	{name: "storage.ErrInvalidKey", err: storage.ErrInvalidKey, why: "keys are made from validated case ids and names"},
	{name: "auth.ErrInvalid", err: auth.ErrInvalid, status: http.StatusUnauthorized, code: "invalid_credential"},
	{name: "auth.ErrExpired", err: auth.ErrExpired, status: http.StatusUnauthorized, code: "credential_expired"},
	{name: "auth.ErrRevoked", err: auth.ErrRevoked, status: http.StatusUnauthorized, code: "credential_revoked"},
	{name: "auth.ErrWrongCase", err: auth.ErrWrongCase, status: http.StatusForbidden, code: "wrong_case"},
	{name: "auth.ErrWrongUser", err: auth.ErrWrongUser, why: "a user name comes with SFTP logins only"},
	{name: "auth.ErrDownloadExpired", err: auth.ErrDownloadExpired, status: http.StatusUnauthorized, code: "download_link_expired"},
	{name: "auth.ErrWrongDownload", err: auth.ErrWrongDownload, status: http.StatusForbidden, code: "wrong_download"},
	{name: "auth.ErrSSHKey", err: auth.ErrSSHKey, why: "issueCredential answers it, 400 invalid_ssh_key naming the field"},
	{name: "cases.ErrInvalidCase", err: cases.ErrInvalidCase, status: http.StatusBadRequest, code: "invalid_case"},
	{name: "cases.ErrInvalidName", err: cases.ErrInvalidName, status: http.StatusBadRequest, code: "invalid_name"},
	{name: "cases.ErrNotFound", err: cases.ErrNotFound, status: http.StatusNotFound, code: "not_found"},
	{name: "cases.ErrCaseClosed", err: cases.ErrCaseClosed, status: http.StatusForbidden, code: "case_closed"},
	{name: "cases.ErrNameConflict", err: cases.ErrNameConflict, status: http.StatusConflict, code: "name_conflict"},
	{name: "cases.ErrFileScanning", err: cases.ErrFileScanning, status: http.StatusConflict, code: "file_scanning"},
	{name: "cases.ErrFileQuarantined", err: cases.ErrFileQuarantined, status: http.StatusForbidden, code: "file_quarantined"},
	{name: "cases.ErrNotQuarantined", err: cases.ErrNotQuarantined, status: http.StatusConflict, code: "not_quarantined"},
	{name: "cases.ErrClaimLost", err: cases.ErrClaimLost, why: "the scan worker's, between instances; no request meets it"},
	{name: "cases.ErrReleaseReason", err: cases.ErrReleaseReason, status: http.StatusBadRequest, code: "reason_required"},
	{name: "cases.ErrLinkNotFound", err: cases.ErrLinkNotFound, status: http.StatusNotFound, code: "link_not_found"},
	{name: "cases.ErrLinkUsed", err: cases.ErrLinkUsed, status: http.StatusGone, code: "link_used"},
	{name: "cases.ErrLinkExpired", err: cases.ErrLinkExpired, status: http.StatusGone, code: "link_expired"},
	{name: "cases.ErrPurgeNotDue", err: cases.ErrPurgeNotDue, why: "PurgeDue skips such a case; it is never an answer"},
	{name: "cases.ErrNotAudited", err: cases.ErrNotAudited, why: "comes with a valid result: the door logs it and answers with the result"},
	{name: "storage.ErrChanged", err: storage.ErrChanged, why: "a conditional replace lost to another writer (the purge claim); handled where it is made"},
	{name: "storage.ErrNotConditional", err: storage.ErrNotConditional, why: "the store's conditional-write probe fails at start-up, before any door serves"},
	{name: "cases.ErrPurgeInProgress", err: cases.ErrPurgeInProgress, why: "PurgeDue skips such a case; it is never an answer"},
	{name: "upload.ErrNotFound", err: upload.ErrNotFound, status: http.StatusNotFound, code: "not_found"},
	{name: "upload.ErrInvalidDigest", err: upload.ErrInvalidDigest, status: http.StatusBadRequest, code: "invalid_digest"},
	{name: "upload.ErrDigestMismatch", err: upload.ErrDigestMismatch, status: 460, code: "digest_mismatch"},
	{name: "upload.ErrChecksumMismatch", err: upload.ErrChecksumMismatch, status: 460, code: "checksum_mismatch"},
	{name: "upload.ErrChecksumUnsupported", err: upload.ErrChecksumUnsupported, status: http.StatusBadRequest, code: "checksum_unsupported"},
	{name: "upload.ErrOffset", err: upload.ErrOffset, status: http.StatusConflict, code: "offset_mismatch"},
	{name: "upload.ErrRestarted", err: upload.ErrRestarted, status: http.StatusConflict, code: "upload_restarted"},
	{name: "upload.ErrLockLost", err: upload.ErrLockLost, status: http.StatusLocked, code: "upload_taken_over"},
	{name: "upload.ErrTooLong", err: upload.ErrTooLong, status: http.StatusRequestEntityTooLarge, code: "too_long"},
	{name: "upload.ErrTooLarge", err: upload.ErrTooLarge, status: http.StatusRequestEntityTooLarge, code: "file_too_large"},
	{name: "upload.ErrTooManyWriters", err: upload.ErrTooManyWriters, status: http.StatusTooManyRequests, code: "too_many_uploads"},
	{name: "upload.ErrNotYours", err: upload.ErrNotYours, status: http.StatusForbidden, code: "not_your_upload"},
	{name: "upload.ErrIncomplete", err: upload.ErrIncomplete, status: http.StatusConflict, code: "not_complete"},
	{name: "upload.ErrCommitted", err: upload.ErrCommitted, status: http.StatusForbidden, code: "file_complete"},
}

func TestEveryDomainErrorIsAnsweredWithItsDocumentedStatusAndCode(t *testing.T) {
	for _, a := range answers {
		t.Run(a.name, func(t *testing.T) {
			got := classify(fmt.Errorf("doing something: %w", a.err))
			want := answer{status: a.status, code: a.code}
			if a.status == 0 {
				want = answer{status: http.StatusInternalServerError, code: "internal"}
			}
			if got.status != want.status || got.code != want.code {
				t.Fatalf("answered %d %s, want %d %s", got.status, got.code, want.status, want.code)
			}
		})
	}
}

func TestTheErrorTableNamesEveryExportedDomainError(t *testing.T) {
	var listed []string
	for _, a := range answers {
		if a.status == 0 && a.why == "" {
			t.Errorf("%s: not mapped, and no word why", a.name)
		}
		listed = append(listed, a.name)
	}
	sentinels.Check(t, "..", listed, "errorMap and answers")
}
