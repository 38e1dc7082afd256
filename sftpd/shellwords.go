package sftpd

import (
	"errors"
	"strings"
)

// errShellSyntax says a command line is more than one simple command of
// literal words: an operator, an expansion, a glob or an open quote.
var errShellSyntax = errors.New("not a simple command of literal words")

// shellWords splits a command line into words as a POSIX shell would, for
// the simple commands clients send (rclone escapes every character of a
// path outside [A-Za-z0-9_.,:/@-] and non-ASCII with a backslash, and a
// newline as '\n'). Quotes and backslashes work as in sh; anything the
// shell would treat as an operator (;, |, &, redirections, parentheses, an
// unquoted newline), an expansion ($, `, a leading ~), a glob (*, ?, [) or
// a comment is refused rather than taken literally: casedrop runs no shell,
// and the answer must be the one a shell would give or none.
func shellWords(line string) ([]string, error) {
	var (
		words []string
		word  []byte
		in    bool // inside a word, even an empty one ("")
	)
	for i := 0; i < len(line); i++ {
		b := line[i]
		switch {
		case b == ' ' || b == '\t':
			if in {
				words, word, in = append(words, string(word)), nil, false
			}
		case b == '\\':
			if i+1 == len(line) {
				return nil, errShellSyntax
			}
			i++
			if line[i] != '\n' { // a backslash-newline joins lines
				word, in = append(word, line[i]), true
			}
		case b == '\'':
			n := strings.IndexByte(line[i+1:], '\'')
			if n < 0 {
				return nil, errShellSyntax
			}
			word, in = append(word, line[i+1:i+1+n]...), true
			i += 1 + n
		case b == '"':
			var err error
			if word, i, err = doubleQuoted(line, i+1, word); err != nil {
				return nil, err
			}
			in = true
		case literal(b):
			word, in = append(word, b), true
		default:
			return nil, errShellSyntax
		}
	}
	if in {
		words = append(words, string(word))
	}
	return words, nil
}

// doubleQuoted appends to word the text of a double-quoted string that
// starts at line[i], and returns the index of its closing quote. A
// backslash there escapes only $ ` " \ and newline; $ and ` would expand.
func doubleQuoted(line string, i int, word []byte) ([]byte, int, error) {
	for ; i < len(line); i++ {
		switch b := line[i]; b {
		case '"':
			return word, i, nil
		case '$', '`':
			return nil, 0, errShellSyntax
		case '\\':
			if i+1 < len(line) {
				switch next := line[i+1]; next {
				case '$', '`', '"', '\\':
					word, i = append(word, next), i+1
					continue
				case '\n':
					i++
					continue
				}
			}
			word = append(word, b)
		default:
			word = append(word, b)
		}
	}
	return nil, 0, errShellSyntax
}

// literal reports whether an unquoted byte stands for itself in sh
// wherever it is in a word. Bytes of UTF-8 beyond ASCII do.
func literal(b byte) bool {
	switch {
	case b >= 0x80, 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '_', '.', ',', ':', '/', '@', '-', '+', '=', '%':
		return true
	}
	return false
}
