// Package manifest writes a case's SHA256SUMS, in the exact format of GNU
// coreutils' sha256sum so that `sha256sum -c` checks downloaded files with
// it, and signs it with the server's manifest key (Ed25519), the way
// software vendors ship signed sums: anyone holding the public key can
// check that this server vouched for those digests, in that case, as of
// that time.
package manifest

import (
	"bytes"
	"sort"
	"strings"
	"time"

	"github.com/casedrop/casedrop/cases"
)

// Name is the manifest's file name, in the API and inside archives.
const Name = "SHA256SUMS"

// Complete returns the complete files among files, sorted by name (byte
// order): the files a manifest and an archive of the case hold.
func Complete(files []cases.File) []cases.File {
	var done []cases.File
	for _, f := range files {
		if f.State == cases.FileComplete {
			done = append(done, f)
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].Name < done[j].Name })
	return done
}

// SHA256SUMS returns the manifest of the complete files among files, the
// files of case rec: two comment lines naming the case and the time it
// holds for (AsOf), which `sha256sum -c` skips, then one line
// "<hex>  <name>\n" per file, sorted by name, as `sha256sum` prints it.
// The header is what stops a signature over a customer's file from being
// shown elsewhere as the server vouching for it in general.
func SHA256SUMS(rec cases.Case, files []cases.File) []byte {
	var b bytes.Buffer
	b.WriteString("# casedrop manifest of case " + rec.ID + "\n")
	b.WriteString("# as of " + AsOf(rec, files).UTC().Format(time.RFC3339Nano) + "\n")
	for _, f := range Complete(files) {
		name, escaped := escapeName(f.Name)
		if escaped {
			b.WriteByte('\\')
		}
		b.WriteString(strings.ToLower(f.SHA256))
		b.WriteString("  ")
		b.WriteString(name)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// escapeName escapes name as coreutils (8.x and 9.x) does for a checksum
// line: a name holding a backslash, newline or carriage return has them
// written as \\, \n and \r, and its line starts with a backslash, which
// tells `sha256sum -c` to unescape it. Other names are written as they are.
func escapeName(name string) (string, bool) {
	if !strings.ContainsAny(name, "\\\n\r") {
		return name, false
	}
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`).Replace(name), true
}

// AsOf is the time a manifest of the case holds for: the case's last
// change that the manifest can show (opened, a file complete, closed,
// purged). It is not the time of the request, so that the manifest, and
// any signature of it, stays the same bytes while the case does not change.
func AsOf(rec cases.Case, files []cases.File) time.Time {
	t := rec.OpenedAt
	later := func(u *time.Time) {
		if u != nil && u.After(t) {
			t = *u
		}
	}
	later(rec.ClosedAt)
	later(rec.PurgedAt)
	for _, f := range files {
		if f.State == cases.FileComplete {
			later(f.UploadedAt)
			later(f.ScannedAt) // a scanned file joins the manifest then
		}
	}
	return t
}
