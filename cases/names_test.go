package cases_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/casedrop/casedrop/cases"
)

// hostileNames are names an attacker holding a customer credential tried:
// each climbs out of a folder or passes for another name somewhere.
var hostileNames = []string{
	`..\..\x.bat`, `a\b`, "a/b", "../x", "..", ".", "",
	"CON", "con.txt", "Aux.tar.gz", "NUL .txt", "COM1", "lpt9.log", "COM¹", "LPT³.txt", "COM0", "CONIN$",
	"x.txt. ", "x.txt.", "x.txt ", " x.txt", "file.txt:stream", "a*b", "a?b", `a"b`, "a<b", "a>b", "a|b",
	"a\x00b", "a\nb", "a\x7fb", "a\u0085b", "right-to-left\u202etxt.exe", "a\u2066b", "a\u200eb",
	"zero\u200bwidth", "a\u200cb", "a\u200db", "a\u2060b", "a\u2064b", "a\ufeffb", "a\u00adb", "a\u180eb",
	"a\ufe0fb", "a\U000e0001b", "a\u034fb", "a\u3164b", "a\ufffeb",
	"SHA256SUMS", "sha256sums", "SHA256SUMS.sig", "Sha256Sums.minisig",
	string([]byte{0xff, 0xfe}), strings.Repeat("a", 256),
}

func TestValidNameRefusesEachClassAndSaysWhy(t *testing.T) {
	for _, tc := range []struct{ name, why string }{
		{"", "empty"},
		{strings.Repeat("a", 256), "longer than 255 bytes"},
		{string([]byte{0xff, 0xfe}), "not UTF-8"},
		{"e\u0301.txt", "normalisation form C"},
		{".", "reserved"},
		{"..", "reserved"},
		{"a/b", `'/': cases have no folders`},
		{`..\..\x.bat`, `'\\': cases have no folders`},
		{"file.txt:stream", `':', which Windows does not allow`},
		{"a*b", `'*', which Windows`},
		{"a?b", `'?', which Windows`},
		{`a"b`, `'"', which Windows`},
		{"a<b", `'<', which Windows`},
		{"a>b", `'>', which Windows`},
		{"a|b", `'|', which Windows`},
		{"nul\x00", "control character U+0000"},
		{"new\nline", "control character U+000A"},
		{"del\x7f", "control character U+007F"},
		{"c1\u0085", "control character U+0085"},
		{"right-to-left\u202etxt.exe", "bidirectional-text control U+202E"},
		{"isolate\u2067.exe", "bidirectional-text control U+2067"},
		{"mark\u200f.exe", "bidirectional-text control U+200F"},
		{"zero\u200bwidth", "invisible character U+200B"},
		{"joiner\u200d.txt", "invisible character U+200D"},
		{"word\u2060joiner", "invisible character U+2060"},
		{"plus\u2064", "invisible character U+2064"},
		{"bom\ufeff.txt", "invisible character U+FEFF"},
		{"soft\u00adhyphen", "invisible character U+00AD"},
		{"mongolian\u180e", "invisible character U+180E"},
		{"variation\ufe0f", "invisible character U+FE0F"},
		{"tag\U000e0041", "invisible character U+E0041"},
		{"hangul\u3164filler", "invisible character U+3164"},
		{" x.txt", "begins with a space"},
		{"x.txt ", "ends with a space"},
		{"x.txt\u3000", "ends with a space"},
		{"x.txt. ", "ends with a space"},
		{"x.txt.", "ends with '.'"},
		{"...", "ends with '.'"},
		{"CON", `"CON" is a Windows device name`},
		{"con.txt", `"con" is a Windows device name`},
		{"Aux.tar.gz", `"Aux" is a Windows device name`},
		{"NUL .txt", `"NUL" is a Windows device name`},
		{"prn", "Windows device name"},
		{"COM0", "Windows device name"},
		{"com9.log", "Windows device name"},
		{"LPT1", "Windows device name"},
		{"COM¹.txt", "Windows device name"},
		{"lpt³", "Windows device name"},
		{"CONOUT$", "Windows device name"},
		{"SHA256SUMS", "reserved for the case's checksum manifest"},
		{"sha256sums", "reserved for the case's checksum manifest"},
		{"SHA256SUMS.sig", "reserved for the case's checksum manifest"},
		{"Sha256Sums.asc", "reserved for the case's checksum manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := cases.ValidName(tc.name)
			if !errors.Is(err, cases.ErrInvalidName) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("ValidName(%q) = %v, want ErrInvalidName saying %q", tc.name, err, tc.why)
			}
		})
	}
}

func TestValidNameAcceptsOrdinaryNamesInAnyScript(t *testing.T) {
	for _, name := range []string{
		"core.1234.gz", "report with spaces.txt", "日本語のログ.txt", ".config", "Prüfbericht ✓.pdf",
		"отчёт.log", "سجل.txt", "café.txt", "x..y", "CONSOLE.log", "com10", "lpt.txt", "COMx", "nul-device",
		"SHA256SUMS-mine.txt", "my SHA256SUMS", "a (2).tar.gz", "emoji 🙂.png", "議事録\u30002024.txt",
		strings.Repeat("é", 127),
	} {
		if err := cases.ValidName(name); err != nil {
			t.Errorf("ValidName(%q) = %v, want it accepted", name, err)
		}
	}
}

func TestCanonicalNameStoresNFC(t *testing.T) {
	got, err := cases.CanonicalName("cafe\u0301.txt") // as macOS spells it
	if err != nil || got != "caf\u00e9.txt" {
		t.Fatalf("CanonicalName = %q, %v; want the NFC spelling", got, err)
	}
	if _, err := cases.CanonicalName(`a\b`); !errors.Is(err, cases.ErrInvalidName) {
		t.Fatalf("CanonicalName(a\\b) = %v", err)
	}
}

func TestNameKeyJoinsSpellingsOfOneName(t *testing.T) {
	for _, pair := range [][2]string{
		{"core.bin", "CORE.BIN"},
		{"Core.bin", "core.BIN"},
		{"caf\u00e9.txt", "CAFE\u0301.TXT"},
		{"straße", "STRASSE"},
		{"ΣΊΣΥΦΟΣ", "σίσυφος"},
		{"Kelvin", "\u212aelvin"},
		{"ı.txt", "I.TXT"},
	} {
		if a, b := cases.NameKey(pair[0]), cases.NameKey(pair[1]); a != b {
			t.Errorf("NameKey(%q) = %q, NameKey(%q) = %q: want one name", pair[0], a, pair[1], b)
		}
	}
	if cases.NameKey("a.txt") == cases.NameKey("b.txt") {
		t.Error("different names share a key")
	}
}

func TestSafeNameMakesAnyStringAPlainFileName(t *testing.T) {
	for in, want := range map[string]string{
		"core.bin":                   "core.bin",
		`..\..\x.bat`:                ".._.._x.bat",
		`C:\logs\app.log`:            "C__logs_app.log",
		"a/b":                        "a_b",
		"..":                         "_",
		".":                          "_",
		"":                           "_",
		"   ":                        "_",
		"x.txt. ":                    "x.txt",
		"CON":                        "_CON",
		"con.txt":                    "_con.txt",
		"SHA256SUMS":                 "_SHA256SUMS",
		"sha256sums.sig":             "_sha256sums.sig",
		"right-to-left\u202etxt.exe": "right-to-left_txt.exe",
		"zero\u200bwidth":            "zero_width",
		"cafe\u0301":                 "caf\u00e9",
		string([]byte{0xff}):         "_",
	} {
		if got := cases.SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
	long := cases.SafeName(strings.Repeat("a", 300) + ".tar.gz")
	if len(long) != cases.MaxNameBytes || !strings.HasSuffix(long, ".tar.gz") {
		t.Errorf("a long name became %q (%d bytes), want it shortened to %d bytes with its extension", long, len(long), cases.MaxNameBytes)
	}
}

func TestSafeNamesAreUniqueIgnoringCase(t *testing.T) {
	got := cases.SafeNames([]string{"Core.bin", "core.bin", `a\b`, "a_b", "CORE.BIN", "core (2).bin"})
	want := []string{"Core.bin", "core (3).bin", "a_b", "a_b (2)", "CORE (4).BIN", "core (2).bin"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("SafeNames = %q, want %q", got, want)
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range hostileNames {
		f.Add(s)
	}
	for _, s := range []string{"core.bin", "Prüfbericht.pdf", "cafe\u0301.txt", "ß", "İı", "ǅ", "ﬁ", "\u212a", "ΐ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := cases.ValidName(s); err == nil {
			if !norm.NFC.IsNormalString(s) || norm.NFC.String(s) != s {
				t.Fatalf("accepted %q, which is not NFC", s)
			}
			if strings.ContainsAny(s, "/\\:*?\"<>|") || !utf8.ValidString(s) {
				t.Fatalf("accepted %q, with a separator or reserved character", s)
			}
		} else if !errors.Is(err, cases.ErrInvalidName) {
			t.Fatalf("ValidName(%q) = %v, not ErrInvalidName", s, err)
		}
		name, err := cases.CanonicalName(s)
		if err != nil {
			return
		}
		if err := cases.ValidName(name); err != nil {
			t.Fatalf("CanonicalName(%q) = %q, which ValidName refuses: %v", s, name, err)
		}
		if again, err := cases.CanonicalName(name); err != nil || again != name {
			t.Fatalf("CanonicalName is not stable: %q -> %q -> %q (%v)", s, name, again, err)
		}
		key := cases.NameKey(name)
		for _, variant := range []string{strings.ToUpper(name), strings.ToLower(name), norm.NFD.String(name), key} {
			if k := cases.NameKey(variant); k != key {
				t.Fatalf("NameKey(%q) = %q but NameKey(%q) = %q: one name, two keys", name, key, variant, k)
			}
		}
	})
}

func FuzzSafeEntryName(f *testing.F) {
	for _, s := range hostileNames {
		f.Add(s)
	}
	f.Add(strings.Repeat("é", 200) + ".tar.gz")
	f.Fuzz(func(t *testing.T, s string) {
		got := cases.SafeName(s)
		if got == "" {
			t.Fatalf("SafeName(%q) is empty", s)
		}
		if err := cases.ValidName(got); err != nil {
			t.Fatalf("SafeName(%q) = %q, which ValidName refuses: %v", s, got, err)
		}
		if cases.SafeName(got) != got {
			t.Fatalf("SafeName(%q) = %q changes again", s, got)
		}
		if cases.ValidName(s) == nil && got != s {
			t.Fatalf("SafeName(%q) = %q changed a valid name", s, got)
		}
		names := cases.SafeNames([]string{s, got, strings.ToUpper(s), s})
		seen := map[string]bool{}
		for _, n := range names {
			if err := cases.ValidName(n); err != nil || seen[cases.NameKey(n)] {
				t.Fatalf("SafeNames gave %q: %q is invalid (%v) or taken twice", names, n, err)
			}
			seen[cases.NameKey(n)] = true
		}
	})
}

// caseIDDoc is the pattern ValidCaseID's error message documents.
var caseIDDoc = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func FuzzValidCaseID(f *testing.F) {
	for _, s := range []string{"CASE-1", "c1", "../x", "a/b", ".hidden", "..", "a..b", "x\x00", "CON", strings.Repeat("a", 65), "case\u200b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if cases.ValidCaseID(id) != nil {
			return
		}
		if !caseIDDoc.MatchString(id) {
			t.Fatalf("accepted %q, which the documented pattern refuses", id)
		}
		if id == "." || id == ".." || strings.ContainsAny(id, "/\\") || strings.HasPrefix(id, ".") {
			t.Fatalf("accepted %q, not a safe path segment", id)
		}
		if p := cases.Prefix(id); p != "cases/"+id+"/" || strings.Count(p, "/") != 2 {
			t.Fatalf("Prefix(%q) = %q leaves cases/", id, p)
		}
	})
}
