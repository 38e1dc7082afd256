package sftpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/cases"
)

// casedrop runs no shell and no commands, but a client that asks for one
// (ssh host, ssh host ls, scp -O, rsync) is told why it gets none: its
// request is accepted, it gets one line on stderr and a non-zero exit
// status, where a refused request leaves it with an opaque "exec request
// failed". The one command answered is "sha256sum FILE...", from the
// digests the catalog stored, for rclone check and ssh host sha256sum.

// Lines a client gets on stderr.
const (
	msgSFTPOnly = `casedrop speaks SFTP only: use sftp, scp (without -O), rclone, WinSCP or FileZilla; the one command here is "sha256sum FILE..."`
	// msgSHA256Only answers md5sum, sha1sum and the like, which rclone
	// probes for unless told which hashes to use.
	msgSHA256Only = `casedrop keeps SHA-256 digests only: use "sha256sum FILE..." (rclone: --sftp-hashes sha256 --sftp-sha256sum-command sha256sum)`
	msgSHA256Use  = `sha256sum: casedrop answers "sha256sum FILE..." from the digests it stored: no options, no standard input, at most %d files`
)

const (
	// exitFailure is the exit status of a refused command, as of a failed one.
	exitFailure = 1
	// maxOperands bounds the catalog lookups of one sha256sum.
	maxOperands = 1000
)

// output is where a command writes: the channel's stdout and stderr, with
// lines ended for a terminal when the client asked for one (its terminal
// is then raw: a bare "\n" would not return the cursor).
type output struct {
	stdout, stderr io.Writer
	eol            string
}

func newOutput(ch ssh.Channel, pty bool) output {
	if pty {
		return output{ch, ch.Stderr(), "\r\n"}
	}
	return output{ch, ch.Stderr(), "\n"}
}

// fail writes msg to stderr as one line and returns exitFailure.
func (o output) fail(msg string) uint32 {
	_, _ = io.WriteString(o.stderr, msg+o.eol)
	return exitFailure
}

// command answers an exec, a shell or a subsystem other than sftp, and
// returns the exit status.
func (c *connection) command(ctx context.Context, req *ssh.Request, out output) uint32 {
	var p struct{ Command string }
	if req.Type != "exec" || ssh.Unmarshal(req.Payload, &p) != nil {
		c.log.Info("ssh request refused: SFTP only", "request", req.Type)
		return out.fail(msgSFTPOnly)
	}
	words, err := shellWords(p.Command)
	if err != nil || len(words) == 0 {
		c.log.Info("ssh command refused: SFTP only", "why", "not a simple command")
		return out.fail(msgSFTPOnly)
	}
	switch name := words[0]; {
	case name == "sha256sum":
		return c.sha256sum(ctx, words[1:], out)
	case otherDigest(name):
		c.log.Info("ssh command refused: SHA-256 only", "command", truncate(name, 64))
		return out.fail(quoteName(name) + ": " + msgSHA256Only)
	default:
		c.log.Info("ssh command refused: SFTP only", "command", truncate(name, 64))
		return out.fail(msgSFTPOnly)
	}
}

// otherDigest reports whether name is a digest tool other than sha256sum:
// coreutils' *sum, BSD's md5 and sha1, b3sum, xxh128sum.
func otherDigest(name string) bool {
	return strings.HasSuffix(name, "sum") || name == "md5" || name == "sha1"
}

// sha256sum answers "sha256sum FILE..." as coreutils does, from the stored
// digests of the case's complete files. The case is the root: "x" and "/x"
// are its file x; nothing else is. A file that is not complete has no
// digest yet, and is not there as far as sha256sum goes.
func (c *connection) sha256sum(ctx context.Context, args []string, out output) uint32 {
	files, ok := operands(args)
	if !ok || len(files) == 0 || len(files) > maxOperands {
		return out.fail(fmt.Sprintf(msgSHA256Use, maxOperands))
	}
	status, found := uint32(0), 0
	for _, arg := range files {
		digest, err := c.storedDigest(ctx, arg)
		switch {
		case err == nil:
			found++
			_, _ = fmt.Fprintf(out.stdout, "%s  %s%s", digest, arg, out.eol)
			continue
		case errors.Is(err, errIsRoot):
			out.fail("sha256sum: " + quoteName(arg) + ": Is a directory")
		case errors.Is(err, cases.ErrNotFound):
			out.fail("sha256sum: " + quoteName(arg) + ": No such file or directory")
		case errors.Is(err, cases.ErrFileScanning), errors.Is(err, cases.ErrFileQuarantined):
			// Held by the scanner: its digest waits with its bytes.
			out.fail("sha256sum: " + quoteName(arg) + ": Permission denied")
		default:
			c.log.Error("sha256sum: catalog lookup failed", "err", err)
			out.fail("sha256sum: " + quoteName(arg) + ": Input/output error")
		}
		status = exitFailure
	}
	// A lookup in the catalog reads no file: no audit record, as for a stat.
	c.log.Debug("sha256sum answered", "files", len(files), "found", found)
	return status
}

// operands returns the file operands of sha256sum's arguments, or false if
// they hold an option or "-" (standard input), which are not answered.
func operands(args []string) ([]string, bool) {
	var files []string
	options := true
	for _, a := range args {
		switch {
		case a == "-":
			return nil, false
		case options && a == "--":
			options = false
		case options && strings.HasPrefix(a, "-"):
			return nil, false
		default:
			files = append(files, a)
		}
	}
	return files, true
}

// errIsRoot says a sha256sum operand names the case itself.
var errIsRoot = errors.New("the case's root")

// storedDigest returns the SHA-256 the catalog holds of the complete file
// the operand arg names, or an error wrapping cases.ErrNotFound.
func (c *connection) storedDigest(ctx context.Context, arg string) (string, error) {
	name := strings.TrimPrefix(arg, "/")
	switch {
	case name == "" || name == "." || name == "..":
		return "", errIsRoot
	case strings.Contains(name, "/"):
		return "", cases.ErrNotFound
	}
	f, err := c.srv.cfg.Catalog.File(ctx, c.claims.Case, name)
	if err != nil {
		return "", err
	}
	if err := f.Servable(); err != nil {
		return "", err
	}
	if f.State != cases.FileComplete || f.SHA256 == "" {
		return "", cases.ErrNotFound
	}
	return f.SHA256, nil
}

// quoteName quotes a name for an error line as coreutils does when it has
// to: in single quotes if it holds blanks or quotes, and with Go's escapes
// if it holds control characters, so the line stays one line.
func quoteName(name string) string {
	if strings.IndexFunc(name, func(r rune) bool { return r == unicode.ReplacementChar || unicode.IsControl(r) }) >= 0 {
		return strconv.Quote(name)
	}
	if strings.ContainsAny(name, " '\"\\$`*?[]{}()<>|&;#~!") {
		return "'" + strings.ReplaceAll(name, "'", `'\''`) + "'"
	}
	return name
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
