package sftpd

import (
	"errors"
	"fmt"
	"io"

	"github.com/pkg/sftp"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/upload"
)

// statusError is an error with the SFTP status code the client gets. pkg/sftp
// finds the code by unwrapping (errors.As on its status type) and sends
// Error() as the status message.
type statusError struct {
	code error // one of the sftp.ErrSSHFx* values
	msg  string
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.code }

func denied(msg string) error     { return &statusError{code: sftp.ErrSSHFxPermissionDenied, msg: msg} }
func failure(msg string) error    { return &statusError{code: sftp.ErrSSHFxFailure, msg: msg} }
func noSuchFile(msg string) error { return &statusError{code: sftp.ErrSSHFxNoSuchFile, msg: msg} }

// Refusals of the SFTP door itself.
var (
	errNotFound       = noSuchFile("no such file")
	errNoFolders      = denied("cases have no folders: files go straight into the case")
	errRootKept       = denied("the case itself cannot be removed or renamed")
	errOverwrite      = denied("files are never overwritten: upload under another name")
	errNotYours       = denied("that file was uploaded by someone else")
	errOtherDoor      = denied("that upload is in progress over HTTPS: continue it there")
	errNoLinks        = denied("links are not supported")
	errStillUploading = denied("the file is still being uploaded: it can be read once complete")
	errWriteOnly      = denied("a file open for upload cannot be read back")
	errKeepComplete   = denied("that file was uploaded by someone else: only your own files can be removed")
	errSizeChange     = denied("files cannot be truncated or extended")
	errRootExists     = failure("the case's root folder exists")
	errExists         = failure("file exists")
	errNotFolder      = failure("not a folder")
	errIsFolder       = failure("is a folder")
	errNotLink        = failure("not a link")
	errBusy           = failure("the file is being uploaded in another session: try again when that ends")
	errTooFarAhead    = failure("write too far ahead of the stored data")
	errTakenOver      = failure("the upload was continued from another session")
	errInterrupted    = failure("the upload was interrupted: it stays resumable")
	errUnsupported    = &statusError{code: sftp.ErrSSHFxOpUnsupported, msg: "operation not supported"}
	errInternal       = failure("internal server error")
)

// errHoles says an upload closed with bytes missing before its last write.
func errHoles(stored int64) error {
	return failure(fmt.Sprintf("upload has gaps: the first %d bytes are stored and the file stays resumable from there", stored))
}

// statusMap is the one place where casedrop's errors become SFTP status
// codes; the message sent is the error's own (it names only the client's
// file, never a credential), or, for the store's faults, retryLater's.
var statusMap = []struct {
	err  error
	code error
}{
	// First: whatever the request was doing, it may succeed later. SFTP
	// version 3, which clients speak, has no code for a full disk.
	{storage.ErrUnavailable, sftp.ErrSSHFxFailure},
	{storage.ErrNoSpace, sftp.ErrSSHFxFailure},
	{cases.ErrNotFound, sftp.ErrSSHFxNoSuchFile},
	{upload.ErrNotFound, sftp.ErrSSHFxNoSuchFile},
	{storage.ErrNotFound, sftp.ErrSSHFxNoSuchFile},
	{cases.ErrInvalidName, sftp.ErrSSHFxPermissionDenied},
	{cases.ErrCaseClosed, sftp.ErrSSHFxPermissionDenied},
	{upload.ErrCommitted, sftp.ErrSSHFxPermissionDenied},
	{cases.ErrNameConflict, sftp.ErrSSHFxFailure},
	// Held by the scanner: nobody reads, continues or removes it.
	{cases.ErrFileScanning, sftp.ErrSSHFxPermissionDenied},
	{cases.ErrFileQuarantined, sftp.ErrSSHFxPermissionDenied},
	{upload.ErrIncomplete, sftp.ErrSSHFxFailure},
	{upload.ErrOffset, sftp.ErrSSHFxFailure},
	{upload.ErrTooLong, sftp.ErrSSHFxFailure},
	{upload.ErrTooLarge, sftp.ErrSSHFxFailure},
	{upload.ErrTooManyWriters, sftp.ErrSSHFxFailure},
	{upload.ErrNotYours, sftp.ErrSSHFxPermissionDenied},
	{upload.ErrDigestMismatch, sftp.ErrSSHFxFailure},
	{upload.ErrInvalidDigest, sftp.ErrSSHFxFailure},
	// The store lost the upload's parts: the client resumes from the size
	// the file now lists with, as after any failed write.
	{upload.ErrRestarted, sftp.ErrSSHFxFailure},
	// Another writer took the upload over: this handle stops, as when a
	// newer writer asks it to let go.
	{upload.ErrLockLost, sftp.ErrSSHFxFailure},
	// The session's credential ran out or was revoked (its case closed)
	// while it wrote: the login it was let in with no longer holds.
	{auth.ErrExpired, sftp.ErrSSHFxPermissionDenied},
	{auth.ErrRevoked, sftp.ErrSSHFxPermissionDenied},
}

// retryLater is what clients are told of the store's faults, which pass:
// the store's own error names addresses and paths, which are for the log.
var retryLater = map[error]string{
	storage.ErrUnavailable: "the server's storage is unavailable: try again later (uploads resume from what was stored)",
	storage.ErrNoSpace:     "the server's storage is full: try again later (uploads resume from what was stored)",
}

// status turns err into what pkg/sftp sends: a statusError, or io.EOF
// unchanged (the end of a read or a listing is not an error). It reports
// false for an error that is the server's fault, which the client sees only
// as "internal server error".
func status(err error) (error, bool) {
	var se *statusError
	switch {
	case err == nil:
		return nil, true
	case err == io.EOF:
		return err, true
	case errors.As(err, &se):
		return se, true
	}
	for _, m := range statusMap {
		if !errors.Is(err, m.err) {
			continue
		}
		msg, ok := retryLater[m.err]
		if !ok {
			msg = err.Error()
		}
		return &statusError{code: m.code, msg: msg}, true
	}
	return errInternal, false
}
