package icap

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/casedrop/casedrop/scan"
)

// chunkSize is the most of the file one chunk of the body carries.
const chunkSize = 64 << 10

// The HTTP exchange the file is wrapped in: a response to a GET, so that
// the server treats it as a download, as MFT products send it.
const httpRequest = "GET /casedrop/scan HTTP/1.1\r\nHost: casedrop\r\n\r\n"

func httpResponse(size int64) string {
	return "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
		strconv.FormatInt(size, 10) + "\r\n\r\n"
}

// Scan sends r, of size bytes, to the service in a RESPMOD request and
// returns the verdict:
//   - 204, after the server has had every byte, or 200 echoing the file
//     unmodified: clean;
//   - 200 or 403 with X-Infection-Found or X-Violations-Found (c-icap's
//     virus_scan, Squid's eCAP/ICAP conventions), or a replaced or
//     blocked body: infected, with the signature the headers name;
//   - 413, or a 204 or unmodified echo given before the server read the
//     whole file (c-icap lets a file over its MaxObjectSize pass
//     unscanned that way): too large, never clean;
//   - anything else, or a connection that fails: an error.
func (c *Client) Scan(ctx context.Context, r io.Reader, size int64) (scan.Verdict, error) {
	opts, err := c.respmodOptions(ctx)
	if err != nil {
		return scan.Verdict{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, err := c.dial(ctx)
	if err != nil {
		return scan.Verdict{}, err
	}
	defer conn.Close()
	s := &sender{conn: conn, r: r, cont: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}), sent: sha256.New(), size: size}
	var serr error
	go func() {
		defer close(s.done)
		serr = s.send(c.head(opts, size), opts.Preview)
	}()
	v, err := c.answer(ctx, bufio.NewReader(conn), s)
	// The server decided: stop sending, and only then return, so that
	// nothing reads r after Scan.
	close(s.stop)
	_ = conn.Close()
	<-s.done
	var source *sourceError
	if errors.As(serr, &source) {
		return scan.Verdict{}, serr
	}
	if err != nil {
		return scan.Verdict{}, c.failed(ctx, "RESPMOD", err)
	}
	return v, nil
}

// head is the RESPMOD request up to the first byte of the file.
func (c *Client) head(opts Options, size int64) string {
	res := httpResponse(size)
	var b strings.Builder
	b.WriteString("RESPMOD " + c.url + " ICAP/1.0\r\nHost: " + c.host + "\r\nUser-Agent: casedrop\r\n")
	if opts.Allow204 {
		b.WriteString("Allow: 204\r\n")
	}
	if opts.Preview >= 0 {
		b.WriteString("Preview: " + strconv.Itoa(opts.Preview) + "\r\n")
	}
	fmt.Fprintf(&b, "Encapsulated: req-hdr=0, res-hdr=%d, res-body=%d\r\n\r\n", len(httpRequest), len(httpRequest)+len(res))
	b.WriteString(httpRequest)
	b.WriteString(res)
	return b.String()
}

// sender writes the request: the head, the preview, and once the server
// says 100 Continue the rest of the file.
type sender struct {
	conn net.Conn
	r    io.Reader
	// cont is closed on 100 Continue, stop when the answer is in; done
	// when the sender has returned.
	cont, stop, done chan struct{}
	// sent hashes every byte of the file sent; whole is set once the
	// last chunk is written.
	sent  hash.Hash
	n     int64
	whole atomic.Bool
	// size is what the file was announced as.
	size int64
}

// sourceError is the failure of the reader being scanned, not of the
// server.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "reading the file to scan: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

func (s *sender) send(head string, preview int) error {
	w := bufio.NewWriterSize(s.conn, chunkSize+64)
	if _, err := w.WriteString(head); err != nil {
		return err
	}
	if preview >= 0 {
		eof, err := s.chunks(w, int64(preview))
		if err != nil {
			return err
		}
		if eof {
			// The file fits the preview: "ieof" tells the server so.
			return s.finish(w, "0; ieof\r\n\r\n")
		}
		if _, err := w.WriteString("0\r\n\r\n"); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		select {
		case <-s.cont:
		case <-s.stop:
			return nil // answered on the preview
		}
	}
	if _, err := s.chunks(w, -1); err != nil {
		return err
	}
	return s.finish(w, "0\r\n\r\n")
}

func (s *sender) finish(w *bufio.Writer, last string) error {
	if _, err := w.WriteString(last); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	s.whole.Store(true)
	return nil
}

// chunks writes the file in chunks, limit bytes of it at most (-1: to
// its end), and says whether the file ended.
func (s *sender) chunks(w *bufio.Writer, limit int64) (eof bool, err error) {
	buf := make([]byte, chunkSize)
	for written := int64(0); limit < 0 || written < limit; {
		want := int64(len(buf))
		if limit >= 0 {
			want = min(want, limit-written)
		}
		n, rerr := io.ReadFull(s.r, buf[:want])
		if n > 0 {
			s.sent.Write(buf[:n])
			s.n += int64(n)
			written += int64(n)
			fmt.Fprintf(w, "%x\r\n", n)
			w.Write(buf[:n])
			if _, err := w.WriteString("\r\n"); err != nil {
				return false, err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return true, nil
		}
		if rerr != nil {
			_ = s.conn.Close() // the server waits for more: no answer comes
			return false, &sourceError{rerr}
		}
	}
	// At the limit: the file ended there if nothing follows. A byte read
	// ahead goes out (and is hashed) with the next chunk.
	if limit >= 0 {
		var one [1]byte
		n, rerr := io.ReadFull(s.r, one[:])
		if n == 0 && (rerr == io.EOF || rerr == io.ErrUnexpectedEOF) {
			return true, nil
		}
		if n == 0 {
			_ = s.conn.Close()
			return false, &sourceError{rerr}
		}
		s.r = io.MultiReader(bytes.NewReader(one[:n]), s.r)
	}
	return false, nil
}

// answer reads the server's answer to RESPMOD and judges it.
func (c *Client) answer(ctx context.Context, br *bufio.Reader, s *sender) (scan.Verdict, error) {
	resp, err := readResponse(br)
	if err != nil {
		return scan.Verdict{}, err
	}
	if resp.status == 100 {
		close(s.cont)
		if resp, err = readResponse(br); err != nil {
			return scan.Verdict{}, err
		}
	}
	wholeBefore := s.whole.Load()
	if sig := infection(resp); sig != "" && (resp.status == 200 || resp.status == 403) {
		return scan.Verdict{Result: scan.Infected, Signature: sig}, nil
	}
	switch resp.status {
	case 204:
		if !wholeBefore {
			return scan.Verdict{Result: scan.TooLarge}, nil
		}
		return scan.Verdict{Result: scan.Clean}, nil
	case 413:
		return scan.Verdict{Result: scan.TooLarge}, nil
	case 403:
		return scan.Verdict{Result: scan.Infected, Signature: "ICAP 403 " + resp.reason}, nil
	case 200:
		return c.echo(ctx, br, resp, s)
	}
	return scan.Verdict{}, fmt.Errorf("%w: RESPMOD answered %d %s", ErrAnswer, resp.status, resp.reason)
}

// echo judges a 200 answer by what it carries: the file itself,
// unmodified and whole (clean), or something else in its place. An echo
// may begin before the whole file is sent (c-icap sends early while it
// scans large files); it can only end once the server has read it all.
func (c *Client) echo(ctx context.Context, br *bufio.Reader, resp response, s *sender) (scan.Verdict, error) {
	sections, err := encapsulated(resp.header.Get("Encapsulated"))
	if err != nil {
		return scan.Verdict{}, err
	}
	httpStatus, hasBody := "", false
	for i, sec := range sections {
		if strings.HasSuffix(sec.name, "-hdr") {
			if i+1 == len(sections) {
				return scan.Verdict{}, fmt.Errorf("%w: Encapsulated ends with a header section", ErrAnswer)
			}
			buf := make([]byte, sections[i+1].offset-sec.offset)
			if _, err := io.ReadFull(br, buf); err != nil {
				return scan.Verdict{}, err
			}
			if sec.name == "res-hdr" {
				httpStatus, _, _ = strings.Cut(string(buf), "\r\n")
			}
			continue
		}
		hasBody = sec.name == "res-body"
	}
	if _, code, _ := strings.Cut(httpStatus, " "); !strings.HasPrefix(code, "200") {
		return scan.Verdict{Result: scan.Infected, Signature: "blocked by the ICAP server (" + httpStatus + ")"}, nil
	}
	got, n := sha256.New(), int64(0)
	if hasBody {
		if n, err = io.Copy(got, httputil.NewChunkedReader(br)); err != nil {
			return scan.Verdict{}, fmt.Errorf("reading the echoed file: %w", err)
		}
	}
	if n != s.size {
		return scan.Verdict{Result: scan.Infected, Signature: "replaced by the ICAP server"}, nil
	}
	// The whole file echoed means the server read it all: the sender
	// is done, or is about to be.
	select {
	case <-s.done:
	case <-ctx.Done():
		return scan.Verdict{}, ctx.Err()
	}
	if !s.whole.Load() {
		return scan.Verdict{Result: scan.TooLarge}, nil
	}
	if n != s.n || !bytes.Equal(got.Sum(nil), s.sent.Sum(nil)) {
		return scan.Verdict{Result: scan.Infected, Signature: "replaced by the ICAP server"}, nil
	}
	return scan.Verdict{Result: scan.Clean}, nil
}

type section struct {
	name   string
	offset int
}

// encapsulated parses "req-hdr=0, res-hdr=45, res-body=120".
func encapsulated(h string) ([]section, error) {
	var out []section
	for _, part := range strings.Split(h, ",") {
		name, off, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(off)
		if !ok || err != nil || n < 0 || (len(out) > 0 && n < out[len(out)-1].offset) {
			return nil, fmt.Errorf("%w: Encapsulated: %q", ErrAnswer, h)
		}
		out = append(out, section{name: name, offset: n})
	}
	return out, nil
}

// infection returns the signature an answer's headers name: c-icap's
// X-Infection-Found ("Type=0; Resolution=2; Threat=NAME;"), else
// X-Violations-Found (count, then per finding: file, threat, ids), else
// X-Virus-ID.
func infection(resp response) string {
	if v := resp.header.Get("X-Infection-Found"); v != "" {
		for _, field := range strings.Split(v, ";") {
			if name, ok := strings.CutPrefix(strings.TrimSpace(field), "Threat="); ok && name != "" {
				return name
			}
		}
		return strings.TrimSpace(v)
	}
	if v := resp.header.Get("X-Violations-Found"); v != "" {
		if f := strings.Fields(v); len(f) >= 3 {
			return f[2]
		}
		return "X-Violations-Found: " + v
	}
	return strings.TrimSpace(resp.header.Get("X-Virus-ID"))
}
