// Package clamd is a scan.Scanner that asks ClamAV's daemon, clamd, over
// its INSTREAM command (TCP or a Unix socket): the bytes go to clamd as a
// stream of length-prefixed chunks, so that clamd needs no access to the
// store and any file that fits clamd's StreamMaxLength can be scanned.
package clamd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/casedrop/casedrop/scan"
)

// ErrAddress: an address that is neither tcp://host:port nor unix:///path.
var ErrAddress = errors.New("the clamd address must be tcp://host:port or unix:///path/to/clamd.ctl")

// ErrAnswer: clamd answered something that is no verdict (an ERROR line,
// or no answer at all).
var ErrAnswer = errors.New("clamd gave no verdict")

// chunkSize is the length of each INSTREAM chunk. clamd takes any length
// up to StreamMaxLength; 64 KiB keeps the per-scan buffer small.
const chunkSize = 64 << 10

// maxReply bounds what is read of clamd's answer: one line naming a
// signature.
const maxReply = 4 << 10

// Config configures a Client.
type Config struct {
	// Address is tcp://host:port or unix:///path of clamd's socket.
	Address string
	// DialTimeout bounds the connection to clamd (default 5 s).
	DialTimeout time.Duration
	// ReplyTimeout bounds the wait for clamd's answer once every byte is
	// sent (default 2 minutes: clamd scans while it answers).
	ReplyTimeout time.Duration
}

// Client scans with one clamd. Each Scan is a connection of its own.
type Client struct {
	network, address string
	dialer           net.Dialer
	replyTimeout     time.Duration
}

// New returns a Client for cfg.Address, or ErrAddress.
func New(cfg Config) (*Client, error) {
	network, address, err := ParseAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.ReplyTimeout <= 0 {
		cfg.ReplyTimeout = 2 * time.Minute
	}
	return &Client{network: network, address: address, dialer: net.Dialer{Timeout: cfg.DialTimeout}, replyTimeout: cfg.ReplyTimeout}, nil
}

// ParseAddress splits tcp://host:port or unix:///path into the network
// and address net.Dial takes.
func ParseAddress(s string) (network, address string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("%w (%q: %v)", ErrAddress, s, err)
	}
	switch {
	case u.Scheme == "tcp" && u.Host != "" && u.Port() != "" && (u.Path == "" || u.Path == "/") && u.RawQuery == "":
		return "tcp", u.Host, nil
	case u.Scheme == "unix" && u.Host == "" && strings.HasPrefix(u.Path, "/") && u.RawQuery == "":
		return "unix", u.Path, nil
	}
	return "", "", fmt.Errorf("%w (got %q)", ErrAddress, s)
}

// String names the scanner in logs.
func (c *Client) String() string { return "clamd " + c.network + ":" + c.address }

// Ping asks clamd whether it answers (zPING; it says PONG).
func (c *Client) Ping(ctx context.Context) error {
	reply, err := c.command(ctx, func(conn net.Conn) error {
		_, err := conn.Write([]byte("zPING\x00"))
		return err
	})
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("%w: PING answered %q", ErrAnswer, reply)
	}
	return nil
}

// Scan streams r to clamd (zINSTREAM) and returns its verdict. A stream
// over clamd's StreamMaxLength is scan.TooLarge, whatever part of it was
// sent. Errors (clamd unreachable, gone mid-stream, an ERROR answer, r
// failing) are no verdict. clamd needs no size: it reads to the end.
func (c *Client) Scan(ctx context.Context, r io.Reader, _ int64) (scan.Verdict, error) {
	reply, err := c.command(ctx, func(conn net.Conn) error { return stream(conn, r) })
	if err != nil && reply == "" {
		return scan.Verdict{}, err
	}
	// clamd stops reading at its limit and answers at once: the write
	// fails, but the answer is the verdict.
	return verdict(reply)
}

// stream writes the INSTREAM command, r in chunks, and the zero-length
// chunk that ends it. An error from r is returned as such, so that it is
// never taken for the end of the file.
func stream(w io.Writer, r io.Reader) error {
	buf := make([]byte, 4+chunkSize)
	if _, err := w.Write([]byte("zINSTREAM\x00")); err != nil {
		return err
	}
	for {
		n, rerr := io.ReadFull(r, buf[4:])
		if n > 0 {
			binary.BigEndian.PutUint32(buf[:4], uint32(n))
			if _, err := w.Write(buf[:4+n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return &sourceError{rerr}
		}
	}
	_, err := w.Write([]byte{0, 0, 0, 0})
	return err
}

// sourceError is the failure of the reader being scanned, not of clamd.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "reading the file to scan: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// command dials clamd, sends with send, and reads the NUL-terminated
// reply. It returns the reply read, if any, together with send's error:
// clamd may answer and close while it is sent to.
func (c *Client) command(ctx context.Context, send func(net.Conn) error) (string, error) {
	conn, err := c.dialer.DialContext(ctx, c.network, c.address)
	if err != nil {
		return "", fmt.Errorf("clamd at %s: %w", c.address, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	sendErr := send(conn)
	var source *sourceError
	if errors.As(sendErr, &source) {
		return "", sendErr // clamd is waiting for more: no answer comes
	}
	if sendErr != nil && ctx.Err() != nil {
		return "", ctx.Err()
	}
	// After a failed send, the answer clamd may have written is already
	// there, or never comes.
	wait := c.replyTimeout
	if sendErr != nil {
		wait = 5 * time.Second
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	reply, readErr := readReply(conn)
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	switch {
	case reply != "":
		return reply, sendErr
	case sendErr != nil:
		return "", fmt.Errorf("clamd at %s: %w", c.address, sendErr)
	case readErr != nil:
		return "", fmt.Errorf("clamd at %s: reading its answer: %w", c.address, readErr)
	}
	return "", fmt.Errorf("%w: clamd at %s closed without answering", ErrAnswer, c.address)
}

// readReply reads up to the NUL that ends a z-command's answer (or the
// end of the connection).
func readReply(r io.Reader) (string, error) {
	b, err := bufio.NewReader(io.LimitReader(r, maxReply)).ReadBytes(0)
	b = bytes.TrimRight(b, "\x00\n")
	if err == io.EOF && len(b) > 0 {
		err = nil
	}
	return string(b), err
}

// limitsExceeded starts the name clamd gives a file over its MaxFileSize,
// MaxScanSize or MaxRecursion when AlertExceedsMax is on: not scanned
// whole, so treated as over the limit rather than as a finding.
const limitsExceeded = "Heuristics.Limits.Exceeded"

// verdict reads clamd's answer to INSTREAM: "stream: OK",
// "stream: <signature> FOUND", or "<message> ERROR".
func verdict(reply string) (scan.Verdict, error) {
	if reply == "INSTREAM size limit exceeded. ERROR" {
		return scan.Verdict{Result: scan.TooLarge}, nil
	}
	rest, ok := strings.CutPrefix(reply, "stream: ")
	switch {
	case !ok:
	case rest == "OK":
		return scan.Verdict{Result: scan.Clean}, nil
	case strings.HasSuffix(rest, " FOUND"):
		sig := strings.TrimSuffix(rest, " FOUND")
		if strings.HasPrefix(sig, limitsExceeded) {
			return scan.Verdict{Result: scan.TooLarge, Signature: sig}, nil
		}
		return scan.Verdict{Result: scan.Infected, Signature: sig}, nil
	}
	return scan.Verdict{}, fmt.Errorf("%w: %q", ErrAnswer, reply)
}
