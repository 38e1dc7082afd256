package cases

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	xcases "golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// The one rule set for file names, whichever door they come through. A
// case's files end up as files on Windows, macOS and Linux (archive.zip,
// `casedrop files get`, SFTP clients), so a name must mean the same file,
// and look like what it is, on all three.

// MaxNameBytes is the longest file name accepted, in bytes of UTF-8.
const MaxNameBytes = 255

// manifestName is the name the case's checksum manifest has in downloads;
// it and its signature files ("SHA256SUMS.sig", ...) are casedrop's.
const manifestName = "SHA256SUMS"

// CanonicalName returns name in the form it is stored in (Unicode NFC), or
// an error wrapping ErrInvalidName saying why it cannot name a file.
func CanonicalName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: not UTF-8", ErrInvalidName)
	}
	name = norm.NFC.String(name)
	return name, ValidName(name)
}

// ValidName reports whether name, as given, can name a file in a case. It
// must already be in NFC (CanonicalName puts it there).
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case len(name) > MaxNameBytes:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidName, MaxNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not UTF-8", ErrInvalidName)
	case !norm.NFC.IsNormalString(name):
		return fmt.Errorf("%w: not in Unicode normalisation form C", ErrInvalidName)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is reserved", ErrInvalidName, name)
	}
	for _, r := range name {
		if why := runeProblem(r); why != "" {
			return fmt.Errorf("%w: %s", ErrInvalidName, why)
		}
	}
	first, _ := utf8.DecodeRuneInString(name)
	last, _ := utf8.DecodeLastRuneInString(name)
	switch {
	case unicode.IsSpace(first):
		return fmt.Errorf("%w: begins with a space", ErrInvalidName)
	case unicode.IsSpace(last):
		return fmt.Errorf("%w: ends with a space (Windows drops it)", ErrInvalidName)
	case last == '.':
		return fmt.Errorf("%w: ends with '.' (Windows drops it)", ErrInvalidName)
	case isDeviceName(name):
		return fmt.Errorf("%w: %q is a Windows device name", ErrInvalidName, deviceStem(name))
	case isManifestName(name):
		return fmt.Errorf("%w: %s and %s.* are reserved for the case's checksum manifest", ErrInvalidName, manifestName, manifestName)
	}
	return nil
}

// runeProblem says what is wrong with r in a file name, or "".
func runeProblem(r rune) string {
	switch {
	case r == '/' || r == '\\':
		return fmt.Sprintf("contains %q: cases have no folders", r)
	case strings.ContainsRune(`:*?"<>|`, r):
		return fmt.Sprintf("contains %q, which Windows does not allow in file names", r)
	case unicode.IsControl(r):
		return fmt.Sprintf("contains control character %U", r)
	case isBidiControl(r):
		return fmt.Sprintf("contains bidirectional-text control %U, which can disguise the extension", r)
	case isInvisible(r):
		return fmt.Sprintf("contains invisible character %U", r)
	case r == utf8.RuneError:
		return fmt.Sprintf("contains the replacement character %U", r)
	}
	return ""
}

func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// isInvisible reports format characters and Unicode's default-ignorable
// code points (zero-width spaces and joiners, U+FEFF, soft hyphen, variation
// selectors, Hangul fillers, tags, ...): they draw nothing, so two names
// that differ only by them look the same.
func isInvisible(r rune) bool {
	return unicode.Is(unicode.Cf, r) ||
		unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
		unicode.Is(unicode.Variation_Selector, r) ||
		unicode.Is(unicode.Noncharacter_Code_Point, r)
}

// deviceStem is the part of name Windows matches against its device
// names: up to the first dot, without the spaces before it ("CON .txt").
func deviceStem(name string) string {
	stem, _, _ := strings.Cut(name, ".")
	return strings.TrimRight(stem, " ")
}

// isDeviceName reports names Windows opens as a device, whatever the
// extension: CON, PRN, AUX, NUL, COM0-9, LPT0-9 (also with ¹²³), CONIN$,
// CONOUT$.
func isDeviceName(name string) bool {
	stem := strings.ToUpper(deviceStem(name))
	switch stem {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	for _, prefix := range []string{"COM", "LPT"} {
		if digit, ok := strings.CutPrefix(stem, prefix); ok {
			r, size := utf8.DecodeRuneInString(digit)
			if size == len(digit) && (r >= '0' && r <= '9' || r == '¹' || r == '²' || r == '³') {
				return true
			}
		}
	}
	return false
}

// isManifestName reports SHA256SUMS and SHA256SUMS.*, in any case.
func isManifestName(name string) bool {
	key := NameKey(name)
	m := NameKey(manifestName)
	return key == m || strings.HasPrefix(key, m+".")
}

// NameKey is what two names must share to be the same name: equal after
// NFC and case folding (uppercase, lowercase and accented forms of a letter
// are one letter, as on case-insensitive Windows and macOS volumes).
func NameKey(name string) string {
	s := norm.NFC.String(name)
	// Simple upper- then lowercase first joins what full folding alone
	// keeps apart but Windows joins (dotless ı and I, İ and i).
	s = strings.Map(func(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }, s)
	return norm.NFC.String(xcases.Fold().String(s))
}
