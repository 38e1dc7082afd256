package sftpd

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestShellWordsSplitsAsShDoesAndRefusesWhatShWouldNotTakeLiterally(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string // nil: refused
	}{
		{"sha256sum report.txt", []string{"sha256sum", "report.txt"}},
		{"  sha256sum \t /a  /b ", []string{"sha256sum", "/a", "/b"}},
		{"", []string{}},
		{`sha256sum /it\'s\ a\ \"test\".log`, []string{"sha256sum", `/it's a "test".log`}},
		{`sha256sum 'it'\''s a "test".log'`, []string{"sha256sum", `it's a "test".log`}},
		{`sha256sum "it's a \"test\".log"`, []string{"sha256sum", `it's a "test".log`}},
		{`sha256sum "a\b\\c\$d\` + "`" + `e"`, []string{"sha256sum", `a\b\c$d` + "`e"}},
		{`sha256sum ''`, []string{"sha256sum", ""}},
		{`sha256sum a""b`, []string{"sha256sum", "ab"}},
		{"sha256sum /line'\n'break", []string{"sha256sum", "/line\nbreak"}},
		{"sha256sum long\\\nname", []string{"sha256sum", "longname"}},
		{"sha256sum \"long\\\nname\"", []string{"sha256sum", "longname"}},
		{`sha256sum r\ésumé.pdf`, []string{"sha256sum", "résumé.pdf"}},
		{`sha256sum a=b,c:d@e%f+g-h_i.j`, []string{"sha256sum", "a=b,c:d@e%f+g-h_i.j"}},
		{`sha256sum \*`, []string{"sha256sum", "*"}},
		{"sha256sum '$(id)' \"a;b\" c\\|d", []string{"sha256sum", "$(id)", "a;b", "c|d"}},

		{"sha256sum a; rm b", nil},
		{"sha256sum a | cat", nil},
		{"sha256sum a && ls", nil},
		{"sha256sum a & ls", nil},
		{"sha256sum a > b", nil},
		{"sha256sum < a", nil},
		{"sha256sum $(id)", nil},
		{"sha256sum `id`", nil},
		{"sha256sum $HOME", nil},
		{`sha256sum "$HOME"`, nil},
		{"sha256sum \"`id`\"", nil},
		{"sha256sum (a)", nil},
		{"sha256sum a\nls", nil},
		{"sha256sum a\r", nil},
		{"sha256sum *", nil},
		{"sha256sum a?", nil},
		{"sha256sum [ab]", nil},
		{"sha256sum ~/a", nil},
		{"sha256sum {a,b}", nil},
		{"sha256sum a #comment", nil},
		{"! sha256sum a", nil},
		{"sha256sum 'open", nil},
		{`sha256sum "open`, nil},
		{`sha256sum trailing\`, nil},
	} {
		got, err := shellWords(tc.line)
		switch {
		case tc.want == nil && err == nil:
			t.Errorf("%q: took %q, want it refused", tc.line, got)
		case tc.want == nil && !errors.Is(err, errShellSyntax):
			t.Errorf("%q: %v, want errShellSyntax", tc.line, err)
		case tc.want != nil && err != nil:
			t.Errorf("%q: %v, want %q", tc.line, err, tc.want)
		case tc.want != nil && !slices.Equal(got, tc.want):
			t.Errorf("%q: %q, want %q", tc.line, got, tc.want)
		}
	}
}

// The three ways clients quote a word for sh.

// backslashed escapes each byte outside a few safe ones with a backslash,
// and a newline in single quotes (a backslash-newline is a line joint).
func backslashed(w string) string {
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		switch c := w[i]; {
		case c == '\n':
			b.WriteString("'\n'")
		case c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.,:/@-", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	if w == "" {
		return "''"
	}
	return b.String()
}

func singleQuoted(w string) string { return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'" }

func doubleQuotedWord(w string) (string, bool) {
	if strings.ContainsAny(w, "$`") {
		return "", false // an expansion in double quotes: refused, rightly
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(w) + `"`, true
}

// FuzzShellWords checks that the parser never panics, that words quoted
// the ways clients quote them come back as they were, and that what it
// accepts it accepts again once requoted.
func FuzzShellWords(f *testing.F) {
	for _, s := range []string{
		"sha256sum report.txt", `sha256sum /it\'s\ a\ \"test\".log`, `sha256sum 'a'\''b' "c\"d"`,
		"sha256sum /line'\n'break", "sha256sum a; rm b", "x\x00y\x00 z", `"\`, "a\\\nb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if words, err := shellWords(s); err == nil {
			requoted := make([]string, len(words))
			for i, w := range words {
				requoted[i] = singleQuoted(w)
			}
			line := strings.Join(requoted, " ")
			if again, err := shellWords(line); err != nil || !slices.Equal(again, words) {
				t.Fatalf("%q gave %q; requoted as %q it gives %q, %v", s, words, line, again, err)
			}
		}

		// s as a list of words separated by NULs, quoted three ways.
		words := strings.Split(s, "\x00")
		for _, quote := range []func(string) (string, bool){
			func(w string) (string, bool) { return backslashed(w), true },
			func(w string) (string, bool) { return singleQuoted(w), true },
			doubleQuotedWord,
		} {
			quoted := make([]string, 0, len(words))
			for _, w := range words {
				q, ok := quote(w)
				if !ok {
					break
				}
				quoted = append(quoted, q)
			}
			if len(quoted) < len(words) {
				continue
			}
			line := strings.Join(quoted, " ")
			got, err := shellWords(line)
			if err != nil || !slices.Equal(got, words) {
				t.Fatalf("%q quoted as %q gives %q, %v", words, line, got, err)
			}
		}
	})
}
