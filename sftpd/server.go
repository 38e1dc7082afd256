// Package sftpd is casedrop's SFTP door: an SSH server on which a case
// credential logs in (user name = the credential's user name; password =
// its short password or its token, or the SSH key attached to it) and
// finds its case as the root of a flat file system. Uploads go
// through the same resumable ingest as tus uploads (package upload): a
// dropped upload stays listed with the size of its stored bytes, and the
// client resumes it by writing from there. A handle's close finishes an
// upload, except for WinSCP's "name.filepart", which its rename to "name"
// finishes (filepart.go).
package sftpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/clientaddr"
	"github.com/casedrop/casedrop/internal/slots"
	"github.com/casedrop/casedrop/metrics"
	"github.com/casedrop/casedrop/upload"
)

// Defaults for the limits of Config.
const (
	DefaultMaxSessionsPerCredential = 8
	DefaultMaxSessions              = 256
	// DefaultMaxReadsPerCredential caps the files one credential has open
	// for reading at once, over all its sessions (each holds a 4 MiB window).
	DefaultMaxReadsPerCredential = 16
	DefaultIdleTimeout           = 30 * time.Minute
	DefaultRecheckInterval       = 5 * time.Second
	DefaultKeepAliveInterval     = 30 * time.Second
)

const (
	// keepAliveMisses is how many keep-alives in a row may go unanswered
	// before the connection is dropped.
	keepAliveMisses = 3
	// handshakeTimeout bounds key exchange and login together.
	handshakeTimeout = 30 * time.Second
	// maxChannels bounds the sessions (channels) of one connection.
	maxChannels = 10
	// refusedGrace is how long a connection over the caps is kept for
	// its client to ask for a session and learn why there is none.
	refusedGrace = 10 * time.Second
	// maxAuthTries is how many refused login attempts one connection may
	// make, key offers included. OpenSSH offers every key of its agent
	// before it asks for a password; sshd's 6 would leave a customer with
	// many keys no try of the password. Guessing is held back by the
	// failed-login limiter, which counts passwords per source.
	maxAuthTries = 20
)

// Modern algorithms only: no SHA-1, no CBC. x/crypto/ssh has no
// diffie-hellman-group18-sha512.
var (
	kexAlgorithms = []string{
		ssh.KeyExchangeMLKEM768X25519,
		ssh.KeyExchangeCurve25519, "curve25519-sha256@libssh.org",
		ssh.KeyExchangeECDHP256, ssh.KeyExchangeECDHP384, ssh.KeyExchangeECDHP521,
		ssh.KeyExchangeDH16SHA512,
	}
	ciphers = []string{
		ssh.CipherAES128GCM, ssh.CipherAES256GCM, ssh.CipherChaCha20Poly1305,
		ssh.CipherAES128CTR, ssh.CipherAES192CTR, ssh.CipherAES256CTR,
	}
	macs = []string{ssh.HMACSHA256ETM, ssh.HMACSHA512ETM, ssh.HMACSHA256, ssh.HMACSHA512}
)

// ErrServerClosed is what Serve returns once Shutdown was called.
var ErrServerClosed = errors.New("sftpd: server closed")

// Config is what the SFTP door needs.
type Config struct {
	Catalog  *cases.Catalog
	Ingest   *upload.Ingest
	Verifier *auth.Verifier
	// Limiter, if not nil, slows down sources with too many failed logins.
	Limiter *auth.Limiter
	// Metrics, if not nil, counts refused logins.
	Metrics *metrics.Registry
	// TrustedProxies may open a connection with a PROXY protocol header
	// naming the client; from anyone else such a header closes it.
	TrustedProxies clientaddr.Proxies
	// HostKeys are presented to clients (see LoadHostKeys).
	HostKeys []ssh.Signer
	Logger   *slog.Logger
	Now      func() time.Time
	// MaxSessionsPerCredential and MaxSessions cap the connections logged
	// in with one credential and in all.
	MaxSessionsPerCredential, MaxSessions int
	// MaxReadsPerCredential caps the files one credential reads at once.
	MaxReadsPerCredential int
	// IdleTimeout drops a connection after that long without an SFTP request.
	IdleTimeout time.Duration
	// RecheckInterval is how often a connection's credential is checked
	// again: a revoked or expired credential, or a closed case, ends it.
	RecheckInterval time.Duration
	// KeepAliveInterval is how often the server asks whether the client is
	// still there; after 3 unanswered asks the connection is dropped.
	KeepAliveInterval time.Duration
}

// Server is the SFTP door.
type Server struct {
	cfg  Config
	ssh  *ssh.ServerConfig
	log  *slog.Logger
	gate *auth.Gate
	// writing holds the handles open for upload, by upload id: a size a
	// client sets on a file it is writing is checked against what it wrote.
	writing *openWrites
	// ctx is where storage work runs: it outlives requests and connections
	// (what arrived is stored after a drop) and ends when Shutdown gives up.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	sessions  int
	perCred   map[string]int
	reads     *slots.PerKey // open read handles per credential
	wg        sync.WaitGroup
}

// New returns a server ready to Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Catalog == nil || cfg.Ingest == nil || cfg.Verifier == nil || cfg.Now == nil {
		return nil, errors.New("sftpd: Config needs Catalog, Ingest, Verifier and Now")
	}
	if cfg.Verifier.Accounts == nil {
		return nil, errors.New("sftpd: Config.Verifier needs Accounts, for logins by password or SSH key")
	}
	if len(cfg.HostKeys) == 0 {
		return nil, errors.New("sftpd: Config needs host keys")
	}
	setDefault(&cfg.MaxSessionsPerCredential, DefaultMaxSessionsPerCredential)
	setDefault(&cfg.MaxSessions, DefaultMaxSessions)
	setDefault(&cfg.MaxReadsPerCredential, DefaultMaxReadsPerCredential)
	setDefault(&cfg.IdleTimeout, DefaultIdleTimeout)
	setDefault(&cfg.RecheckInterval, DefaultRecheckInterval)
	setDefault(&cfg.KeepAliveInterval, DefaultKeepAliveInterval)
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		writing:   &openWrites{byID: make(map[string]*writeHandle)},
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
		perCred:   make(map[string]int),
		reads:     slots.New(cfg.MaxReadsPerCredential),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	countRefusal := func(string) {}
	if cfg.Metrics != nil {
		countRefusal = cfg.Metrics.FailedLogin
	}
	s.gate = &auth.Gate{Verifier: cfg.Verifier, Limiter: cfg.Limiter, Trail: cfg.Catalog, Log: s.log,
		CountRefusal: countRefusal}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ssh = &ssh.ServerConfig{
		Config:                      ssh.Config{KeyExchanges: kexAlgorithms, Ciphers: ciphers, MACs: macs},
		PasswordCallback:            s.password,
		KeyboardInteractiveCallback: s.keyboardInteractive,
		PublicKeyCallback:           s.publicKey,
		VerifiedPublicKeyCallback:   s.verifiedKey,
		MaxAuthTries:                maxAuthTries,
		ServerVersion:               "SSH-2.0-casedrop",
	}
	for _, k := range cfg.HostKeys {
		s.ssh.AddHostKey(k)
	}
	return s, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Serve accepts connections on ln until Shutdown; it always returns an
// error, ErrServerClosed after Shutdown. Connections may begin with a
// PROXY protocol header if they come from a trusted proxy.
func (s *Server) Serve(ln net.Listener) error {
	ln = s.cfg.TrustedProxies.ProxyProtocol(ln)
	if !s.track(func() { s.listeners[ln] = struct{}{} }) {
		return ErrServerClosed
	}
	defer s.track(func() { delete(s.listeners, ln) })
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shuttingDown() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("sftp accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.track(func() { s.conns[nc] = struct{}{}; s.wg.Add(1) }) {
			nc.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.wg.Done()
			defer s.track(func() { delete(s.conns, nc) })
			defer nc.Close()
			s.serveConn(nc)
		}()
	}
}

// track runs f under the server's lock unless the server is shutting down.
func (s *Server) track(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	f()
	return true
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting and ends every connection. Open uploads end as
// after a dropped connection: what arrived is stored and stays resumable.
// It waits for that until ctx ends, then cancels the storing.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel() // uploads still storing stop at their last stored part
		return ctx.Err()
	}
}

// admit counts a logged-in connection against the caps. It returns a
// release func, or the reason for refusing.
func (s *Server) admit(credentialID string) (func(), string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.perCred[credentialID] >= s.cfg.MaxSessionsPerCredential:
		return nil, fmt.Sprintf("too many sessions for this credential (at most %d): close one and try again", s.cfg.MaxSessionsPerCredential)
	case s.sessions >= s.cfg.MaxSessions:
		return nil, "the server has too many sessions: try again later"
	}
	s.sessions++
	s.perCred[credentialID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.sessions--
			if s.perCred[credentialID]--; s.perCred[credentialID] == 0 {
				delete(s.perCred, credentialID)
			}
		})
	}, ""
}
