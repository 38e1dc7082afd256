package cases

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// SafeName maps any string to a name that passes ValidName, so that it is
// a plain file name on Windows, macOS and Linux: characters the rules
// refuse become '_', spaces and dots at the ends go, device and manifest
// names get a '_' in front, and a name too long is shortened, keeping its
// extension. A valid name maps to itself. Whatever writes a case's files
// to a local file system names them with it: names stored by an older
// release may break today's rules.
func SafeName(s string) string {
	for range 4 {
		t := sanitize(s)
		if t == s && ValidName(t) == nil {
			return t
		}
		s = t
	}
	if ValidName(s) == nil {
		return s
	}
	return "_"
}

// sanitize is one pass of SafeName; a few passes reach a fixed point
// (normalising can shift what the other steps see).
func sanitize(s string) string {
	s = norm.NFC.String(strings.ToValidUTF8(s, "_"))
	s = strings.Map(func(r rune) rune {
		if runeProblem(r) != "" {
			return '_'
		}
		return r
	}, s)
	s = strings.TrimFunc(s, unicode.IsSpace)
	s = strings.TrimRightFunc(s, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	if s == "" {
		return "_"
	}
	if isDeviceName(s) || isManifestName(s) {
		s = "_" + s
	}
	return fitName(s, "")
}

// fitName returns name with suffix inserted before its extension, the
// stem shortened so that the whole fits in MaxNameBytes.
func fitName(name, suffix string) string {
	stem, ext := splitExt(name)
	if len(ext)+len(suffix) > MaxNameBytes/2 {
		stem, ext = name, ""
	}
	room := MaxNameBytes - len(ext) - len(suffix)
	for len(stem) > room {
		_, size := utf8.DecodeLastRuneInString(stem)
		stem = stem[:len(stem)-size]
	}
	return stem + suffix + ext
}

// splitExt splits name before its extension, keeping compound extensions
// like .tar.gz whole.
func splitExt(name string) (stem, ext string) {
	lower := strings.ToLower(name)
	for _, compound := range []string{".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst"} {
		if strings.HasSuffix(lower, compound) && len(name) > len(compound) {
			return name[:len(name)-len(compound)], name[len(name)-len(compound):]
		}
	}
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i], name[i:]
	}
	return name, ""
}

// SafeNames maps names to SafeName's names, unique ignoring case and
// normalisation (NameKey): where two would be the same, the later one is
// numbered "name (2).ext", "name (3).ext", ..., never taking a name
// another of them has. The result is in the order of names.
func SafeNames(names []string) []string {
	safe := make([]string, len(names))
	wanted := map[string]int{} // NameKey -> index of the first name that has it
	for i, n := range names {
		safe[i] = SafeName(n)
		if _, ok := wanted[NameKey(safe[i])]; !ok {
			wanted[NameKey(safe[i])] = i
		}
	}
	used := map[string]bool{}
	for i, s := range safe {
		key := NameKey(s)
		if wanted[key] == i {
			used[key] = true
			continue
		}
		for n := 2; ; n++ {
			cand := SafeName(fitName(s, fmt.Sprintf(" (%d)", n)))
			k := NameKey(cand)
			if _, taken := wanted[k]; !taken && !used[k] {
				safe[i], used[k] = cand, true
				break
			}
		}
	}
	return safe
}
