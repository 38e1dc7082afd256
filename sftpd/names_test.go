package sftpd

import (
	"errors"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/casedrop/casedrop/cases"
)

func FuzzSFTPPath(f *testing.F) {
	for _, p := range []string{
		"/core.bin", "core.bin", "/", "", ".", "..", "/../x", "../../etc/passwd", "/a/b", "sub/", "//x",
		`..\..\x.bat`, `/a\b`, "/CON", "/con.txt", "/x.txt. ", "/file.txt:stream", "/zero\u200bwidth",
		"/bidi\u202etxt.exe", "/SHA256SUMS", "/core.bin.filepart", "/CORE.BIN.filepart", "/cafe\u0301.txt",
		"/nul\x00", string([]byte{'/', 0xff}),
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		name, err := targetName(p)
		if err != nil {
			var se *statusError
			if !errors.Is(err, cases.ErrInvalidName) && !errors.As(err, &se) {
				t.Fatalf("targetName(%q): %v, neither a refused name nor an SFTP status", p, err)
			}
		} else {
			if err := cases.ValidName(name); err != nil {
				t.Fatalf("targetName(%q) = %q, which the name rules refuse: %v", p, name, err)
			}
			if path.Join("/", name) != "/"+name || strings.Contains(name, "/") {
				t.Fatalf("targetName(%q) = %q is not a flat name inside the case", p, name)
			}
		}
		name, err = lookupName(p)
		if err != nil || name == "" {
			return
		}
		if strings.Contains(name, "/") || name == "." || name == ".." || !utf8.ValidString(name) || path.Join("/", name) != "/"+name {
			t.Fatalf("lookupName(%q) = %q is not a flat name inside the case", p, name)
		}
	})
}
