package sftpd

import (
	"context"
	"io"

	"golang.org/x/crypto/ssh"
)

// casedrop runs no shell and no commands, but a client that asks for one
// (ssh host, ssh host ls, scp -O, rsync) is told why it gets none: its
// request is accepted, it gets one line on stderr and a non-zero exit
// status, where a refused request leaves it with an opaque "exec request
// failed".

// msgSFTPOnly is the line a client gets on stderr.
const msgSFTPOnly = `casedrop speaks SFTP only: use sftp, scp (without -O), rclone, WinSCP or FileZilla`

// exitFailure is the exit status of a refused command, as of a failed one.
const exitFailure = 1

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
func (c *connection) command(_ context.Context, req *ssh.Request, out output) uint32 {
	c.log.Info("ssh request refused: SFTP only", "request", req.Type)
	return out.fail(msgSFTPOnly)
}
