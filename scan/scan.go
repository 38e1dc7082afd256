// Package scan has landed files checked for malware before anyone can
// download them. A Scanner reads a file's bytes and answers a Verdict; the
// Worker takes the scans waiting in the catalog's queue (kept in the object
// store, so that a restart or another instance picks them up), streams each
// stored object to the scanner, and records the verdict: the file becomes
// complete or quarantined. A scanner that fails is asked again later, with
// backoff: a file is never let through unscanned.
package scan

import (
	"context"
	"io"
)

// Result is what a scan concluded.
type Result string

// The results of a scan.
const (
	// Clean: the scanner read the whole file and found nothing.
	Clean Result = "clean"
	// Infected: the scanner found Verdict.Signature.
	Infected Result = "infected"
	// TooLarge: the file is over what the scanner reads (clamd's
	// StreamMaxLength), so it was not scanned whole: never passed as clean.
	TooLarge Result = "too_large"
)

// Verdict is a scanner's answer about one file.
type Verdict struct {
	Result Result
	// Signature names what was found (Infected), as the scanner calls it.
	Signature string
}

// Scanner reads a file's bytes to its end and says what it found; size is
// the number of bytes r holds (an ICAP server is told it up front). An
// error means there is no verdict (the scanner is down, slow, or answered
// something else): the scan is tried again later.
type Scanner interface {
	Scan(ctx context.Context, r io.Reader, size int64) (Verdict, error)
}
