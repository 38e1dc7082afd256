// Package scantest checks a scan.Scanner against a real scanner that uses
// clamdtest's signature database: the files every scanner must judge
// alike, and a file that cannot be read to its end.
package scantest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/casedrop/casedrop/internal/clamdtest"
	"github.com/casedrop/casedrop/scan"
)

// Case is a file and the verdict a scanner must give it.
type Case struct {
	Name string
	Data []byte
	Want scan.Verdict
}

// Cases are the files every scanner is checked with: clean ones (one of
// several 64 KiB chunks), EICAR, the test pattern across a chunk boundary
// (past an ICAP preview), and a file of tooLarge bytes, over the
// scanner's limit.
func Cases(tooLarge int) []Case {
	return []Case{
		{"a text file is clean", []byte("hello, support\n"), scan.Verdict{Result: scan.Clean}},
		{"a file of several chunks under the limit is clean", bytes.Repeat([]byte("log line\n"), 100_000), scan.Verdict{Result: scan.Clean}},
		{"EICAR is infected", []byte(clamdtest.EICAR), scan.Verdict{Result: scan.Infected, Signature: clamdtest.EICARSignature}},
		{"the test pattern across a chunk boundary is infected", PatternAcrossChunks(), scan.Verdict{Result: scan.Infected, Signature: clamdtest.PatternSignature}},
		{"a file over the scanner's limit is too large, not clean", bytes.Repeat([]byte("x"), tooLarge), scan.Verdict{Result: scan.TooLarge}},
	}
}

// PatternAcrossChunks is a file whose test pattern straddles two 64 KiB
// chunks, past an ICAP preview: the scanner must see one stream.
func PatternAcrossChunks() []byte {
	data := bytes.Repeat([]byte("a"), 64<<10-5)
	data = append(data, clamdtest.Pattern...)
	return append(data, bytes.Repeat([]byte("b"), 1000)...)
}

// Run scans each case with s, a subtest each.
func Run(t *testing.T, ctx context.Context, s scan.Scanner, cases []Case) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			got, err := s.Scan(ctx, bytes.NewReader(tc.Data), int64(len(tc.Data)))
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if got != tc.Want {
				t.Fatalf("Scan = %+v, want %+v", got, tc.Want)
			}
		})
	}
}

// Unreadable checks that a file of size whose reader fails after
// readable bytes has no verdict, but the reader's error.
func Unreadable(t *testing.T, ctx context.Context, s scan.Scanner, readable []byte, size int64) {
	t.Helper()
	broken := errors.New("the store went away")
	got, err := s.Scan(ctx, &failingReader{data: readable, err: broken}, size)
	if !errors.Is(err, broken) {
		t.Fatalf("Scan = %+v, %v; want the reader's error", got, err)
	}
}

// failingReader returns data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}
