package sftpd

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pkg/sftp"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/sentinels"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/upload"
)

// codes is every exported sentinel error of the domain packages and the
// SFTP status it is sent as. A nil code marks an error statusMap does not
// map, with why: it never reaches an SFTP handler, so it is the server's
// fault ("internal server error") if it does.
var codes = []struct {
	name string
	err  error
	code error
	why  string
}{
	{name: "storage.ErrUnavailable", err: storage.ErrUnavailable, code: sftp.ErrSSHFxFailure},
	{name: "storage.ErrNoSpace", err: storage.ErrNoSpace, code: sftp.ErrSSHFxFailure},
	{name: "storage.ErrNotFound", err: storage.ErrNotFound, code: sftp.ErrSSHFxNoSuchFile},
	{name: "cases.ErrNotAudited", err: cases.ErrNotAudited, why: "comes with a valid result: the door logs it and answers with the result"},
	{name: "storage.ErrChanged", err: storage.ErrChanged, why: "a conditional replace lost to another writer (the purge claim); handled where it is made"},
	{name: "storage.ErrNotConditional", err: storage.ErrNotConditional, why: "the store's conditional-write probe fails at start-up, before any door serves"},
	{name: "storage.ErrExists", err: storage.ErrExists, why: "PutIfAbsent's answer, which its callers decide on"},
	{name: "storage.ErrInvalidKey", err: storage.ErrInvalidKey, why: "keys are made from validated case ids and names"},
	{name: "auth.ErrExpired", err: auth.ErrExpired, code: sftp.ErrSSHFxPermissionDenied},
	{name: "auth.ErrRevoked", err: auth.ErrRevoked, code: sftp.ErrSSHFxPermissionDenied},
	{name: "auth.ErrInvalid", err: auth.ErrInvalid, why: "refused at login, before any SFTP request"},
	{name: "auth.ErrWrongCase", err: auth.ErrWrongCase, why: "refused at login, before any SFTP request"},
	{name: "auth.ErrWrongUser", err: auth.ErrWrongUser, why: "refused at login, before any SFTP request"},
	{name: "auth.ErrDownloadExpired", err: auth.ErrDownloadExpired, why: "download links open HTTPS downloads only"},
	{name: "auth.ErrWrongDownload", err: auth.ErrWrongDownload, why: "download links open HTTPS downloads only"},
	{name: "auth.ErrSSHKey", err: auth.ErrSSHKey, why: "keys are checked when a credential is issued, over HTTPS or the CLI"},
	{name: "cases.ErrNotFound", err: cases.ErrNotFound, code: sftp.ErrSSHFxNoSuchFile},
	{name: "cases.ErrInvalidName", err: cases.ErrInvalidName, code: sftp.ErrSSHFxPermissionDenied},
	{name: "cases.ErrCaseClosed", err: cases.ErrCaseClosed, code: sftp.ErrSSHFxPermissionDenied},
	{name: "cases.ErrNameConflict", err: cases.ErrNameConflict, code: sftp.ErrSSHFxFailure},
	{name: "cases.ErrFileScanning", err: cases.ErrFileScanning, code: sftp.ErrSSHFxPermissionDenied},
	{name: "cases.ErrFileQuarantined", err: cases.ErrFileQuarantined, code: sftp.ErrSSHFxPermissionDenied},
	{name: "cases.ErrNotQuarantined", err: cases.ErrNotQuarantined, why: "a release is the admin API's"},
	{name: "cases.ErrClaimLost", err: cases.ErrClaimLost, why: "the scan worker's, between instances; no request meets it"},
	{name: "cases.ErrReleaseReason", err: cases.ErrReleaseReason, why: "a release is the admin API's"},
	{name: "cases.ErrInvalidCase", err: cases.ErrInvalidCase, why: "the session's case comes from its credential"},
	{name: "cases.ErrLinkNotFound", err: cases.ErrLinkNotFound, why: "upload links are redeemed over HTTPS only"},
	{name: "cases.ErrLinkUsed", err: cases.ErrLinkUsed, why: "upload links are redeemed over HTTPS only"},
	{name: "cases.ErrLinkExpired", err: cases.ErrLinkExpired, why: "upload links are redeemed over HTTPS only"},
	{name: "cases.ErrPurgeNotDue", err: cases.ErrPurgeNotDue, why: "purges are run by the server and the admin API, not over SFTP"},
	{name: "cases.ErrPurgeInProgress", err: cases.ErrPurgeInProgress, why: "purges are run by the server and the admin API, not over SFTP"},
	{name: "upload.ErrNotFound", err: upload.ErrNotFound, code: sftp.ErrSSHFxNoSuchFile},
	{name: "upload.ErrCommitted", err: upload.ErrCommitted, code: sftp.ErrSSHFxPermissionDenied},
	{name: "upload.ErrNotYours", err: upload.ErrNotYours, code: sftp.ErrSSHFxPermissionDenied},
	{name: "upload.ErrIncomplete", err: upload.ErrIncomplete, code: sftp.ErrSSHFxFailure},
	{name: "upload.ErrOffset", err: upload.ErrOffset, code: sftp.ErrSSHFxFailure},
	{name: "upload.ErrTooLong", err: upload.ErrTooLong, code: sftp.ErrSSHFxFailure},
	{name: "upload.ErrTooLarge", err: upload.ErrTooLarge, code: sftp.ErrSSHFxFailure},
	{name: "upload.ErrTooManyWriters", err: upload.ErrTooManyWriters, code: sftp.ErrSSHFxFailure},
	{name: "upload.ErrDigestMismatch", err: upload.ErrDigestMismatch, code: sftp.ErrSSHFxFailure},
	{name: "upload.ErrInvalidDigest", err: upload.ErrInvalidDigest, code: sftp.ErrSSHFxFailure},
	{name: "upload.ErrRestarted", err: upload.ErrRestarted, code: sftp.ErrSSHFxFailure},
	{name: "upload.ErrLockLost", err: upload.ErrLockLost, code: sftp.ErrSSHFxFailure},
	{name: "upload.ErrChecksumMismatch", err: upload.ErrChecksumMismatch, why: "per-request checksums are tus headers"},
	{name: "upload.ErrChecksumUnsupported", err: upload.ErrChecksumUnsupported, why: "per-request checksums are tus headers"},
}

func TestEveryDomainErrorIsSentWithItsSFTPStatus(t *testing.T) {
	for _, c := range codes {
		t.Run(c.name, func(t *testing.T) {
			got, known := status(fmt.Errorf("writing core.bin: %w", c.err))
			if c.code == nil {
				if known || got != errInternal {
					t.Fatalf("sent %v (known %v), want the internal server error", got, known)
				}
				return
			}
			if !known || !errors.Is(got, c.code) {
				t.Fatalf("sent %v (known %v), want status %v", got, known, c.code)
			}
			if got.Error() == errInternal.Error() {
				t.Fatalf("sent %q", got)
			}
		})
	}
}

func TestTheStatusTableNamesEveryExportedDomainError(t *testing.T) {
	var listed []string
	for _, c := range codes {
		if c.code == nil && c.why == "" {
			t.Errorf("%s: not mapped, and no word why", c.name)
		}
		listed = append(listed, c.name)
	}
	sentinels.Check(t, "..", listed, "statusMap and codes")
}
