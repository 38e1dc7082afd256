// Package icap is a scan.Scanner that asks an ICAP server (RFC 3507), the
// protocol managed-file-transfer products use to reach antivirus engines
// and DLP: each file goes to the server as the body of an HTTP response in
// a RESPMOD request, chunked as it is read from the store, and the server's
// answer is the verdict (204 or an unmodified echo: clean; virus headers or
// a replaced body: infected).
package icap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrAddress: an address that is not icap://host[:port]/service.
var ErrAddress = errors.New("the ICAP address must be icap://host[:port]/service")

// ErrAnswer: the ICAP server answered something that is no verdict (an
// error status, a malformed answer, no RESPMOD).
var ErrAnswer = errors.New("the ICAP server gave no verdict")

// defaultPort is ICAP's well-known port.
const defaultPort = "1344"

// Config configures a Client.
type Config struct {
	// URL is icap://host[:port]/service, with the service's arguments as
	// a query if it takes any.
	URL string
	// DialTimeout bounds the connection to the server (default 5 s).
	DialTimeout time.Duration
	// OptionsTimeout bounds the OPTIONS request each scan starts with
	// (default 30 s).
	OptionsTimeout time.Duration
}

// Client scans with one ICAP service. Each Scan asks OPTIONS first (what
// the service does, its preview size, whether it answers 204) and then
// sends RESPMOD, each on a connection of its own.
type Client struct {
	url            string // as sent in request lines
	host, hostPort string
	dialer         net.Dialer
	optionsTimeout time.Duration
}

// New returns a Client for cfg.URL, or ErrAddress.
func New(cfg Config) (*Client, error) {
	u, hostPort, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.OptionsTimeout <= 0 {
		cfg.OptionsTimeout = 30 * time.Second
	}
	return &Client{url: u.String(), host: u.Host, hostPort: hostPort,
		dialer: net.Dialer{Timeout: cfg.DialTimeout}, optionsTimeout: cfg.OptionsTimeout}, nil
}

// ParseURL checks an icap://host[:port]/service address and returns it
// with host:port to dial (port 1344 when it names none).
func ParseURL(s string) (*url.URL, string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, "", fmt.Errorf("%w (%q: %v)", ErrAddress, s, err)
	}
	if u.Scheme != "icap" || u.Hostname() == "" || u.User != nil || u.Fragment != "" ||
		strings.Trim(u.Path, "/") == "" {
		return nil, "", fmt.Errorf("%w (got %q)", ErrAddress, s)
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, "", fmt.Errorf("%w (port of %q)", ErrAddress, s)
	}
	return u, net.JoinHostPort(u.Hostname(), port), nil
}

// Ping checks that the service answers OPTIONS and offers RESPMOD.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.respmodOptions(ctx)
	return err
}

// respmodOptions asks OPTIONS and wants RESPMOD among the methods.
func (c *Client) respmodOptions(ctx context.Context) (Options, error) {
	o, err := c.Options(ctx)
	if err == nil && !o.offers("RESPMOD") {
		err = fmt.Errorf("%w: %s offers %v, not RESPMOD", ErrAnswer, c.url, o.Methods)
	}
	return o, err
}

// String names the scanner in logs.
func (c *Client) String() string { return "ICAP " + c.url }

// Options is what an ICAP service says of itself in answer to OPTIONS.
type Options struct {
	// Methods the service offers (RESPMOD, REQMOD).
	Methods []string
	// Preview is how many bytes the service reads first to decide
	// whether it needs the rest; -1 when it takes no preview.
	Preview int
	// Allow204 says the service answers 204 for a file it leaves as is.
	Allow204 bool
}

func (o Options) offers(method string) bool {
	for _, m := range o.Methods {
		if strings.EqualFold(m, method) {
			return true
		}
	}
	return false
}

// Options asks the service what it does (also a check that it answers).
func (c *Client) Options(ctx context.Context) (Options, error) {
	ctx, cancel := context.WithTimeout(ctx, c.optionsTimeout)
	defer cancel()
	conn, err := c.dial(ctx)
	if err != nil {
		return Options{}, err
	}
	defer conn.Close()
	req := "OPTIONS " + c.url + " ICAP/1.0\r\nHost: " + c.host + "\r\nUser-Agent: casedrop\r\nEncapsulated: null-body=0\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return Options{}, c.failed(ctx, "OPTIONS", err)
	}
	resp, err := readResponse(bufio.NewReader(conn))
	if err != nil {
		return Options{}, c.failed(ctx, "OPTIONS", err)
	}
	if resp.status != 200 {
		return Options{}, fmt.Errorf("%w: %s answered OPTIONS with %d %s", ErrAnswer, c.url, resp.status, resp.reason)
	}
	o := Options{Preview: -1}
	for _, m := range strings.Split(resp.header.Get("Methods"), ",") {
		if m = strings.TrimSpace(m); m != "" {
			o.Methods = append(o.Methods, m)
		}
	}
	if p, err := strconv.Atoi(strings.TrimSpace(resp.header.Get("Preview"))); err == nil && p >= 0 {
		o.Preview = p
	}
	for _, a := range strings.Split(resp.header.Get("Allow"), ",") {
		o.Allow204 = o.Allow204 || strings.TrimSpace(a) == "204"
	}
	return o, nil
}

// dial connects to the server; ctx ending closes the connection's
// reads and writes.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, "tcp", c.hostPort)
	if err != nil {
		return nil, fmt.Errorf("ICAP server at %s: %w", c.hostPort, err)
	}
	context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	return conn, nil
}

// failed words an error of a request to the server; ctx's own error when
// that is why.
func (c *Client) failed(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("ICAP server at %s: %s: %w", c.hostPort, what, err)
}

// response is an ICAP response's status and headers.
type response struct {
	status int
	reason string
	header textproto.MIMEHeader
}

// readResponse reads an ICAP status line and headers.
func readResponse(br *bufio.Reader) (response, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return response{}, err
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, reason, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if proto != "ICAP/1.0" || err != nil {
		return response{}, fmt.Errorf("%w: status line %q", ErrAnswer, line)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return response{}, err
	}
	return response{status: status, reason: reason, header: h}, nil
}
