package sftpd

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
)

// connection is one logged-in SSH connection.
type connection struct {
	srv    *Server
	ssh    *ssh.ServerConn
	claims auth.Claims
	remote string
	log    *slog.Logger
	seen   atomic.Int64 // reads of SFTP requests, for the idle timeout
}

// session is one SFTP session: the handlers pkg/sftp calls, confined to
// the credential's case.
type session struct {
	srv      *Server
	claims   auth.Claims
	remote   string // the client's address, for the audit trail
	log      *slog.Logger
	bytesIn  atomic.Int64
	bytesOut atomic.Int64
}

// actor is who the session is, for the audit trail.
func (s *session) actor() cases.Actor {
	return cases.ActorOf(s.claims, via, s.remote)
}

// audit records ev as done in this session. A failure to record is
// logged; it does not fail the request.
func (s *session) audit(ctx context.Context, ev cases.Event) {
	ev.Case, ev.Actor = s.claims.Case, s.actor()
	if err := s.srv.cfg.Catalog.Audit(ctx, ev); err != nil {
		s.log.Error("audit record lost", "type", ev.Type, "err", err)
	}
}

// status turns err into the SFTP status sent, logging what is the
// server's fault.
func (s *session) status(op, name string, err error) error {
	st, known := status(err)
	if !known {
		s.log.Error("sftp request failed", "op", op, "file", name, "err", err)
	}
	return st
}

func (s *Server) serveConn(nc net.Conn) {
	// Deadlines are wall-clock times of the socket, not the injected clock.
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	bc := newBatchingConn(nc)
	defer bc.Close()
	sconn, chans, reqs, err := ssh.NewServerConn(bc, s.ssh)
	if err != nil {
		s.log.Debug("ssh handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	claims := sconn.Permissions.ExtraData[claimsKey{}].(auth.Claims)
	c := &connection{
		srv: s, ssh: sconn, claims: claims, remote: sourceIP(nc.RemoteAddr()),
		log: s.log.With("remote", nc.RemoteAddr().String(), "user", claims.Username, "case", claims.Case),
	}
	c.run(chans, reqs)
}

func (c *connection) run(chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request) {
	go ssh.DiscardRequests(reqs)
	release, refusal := c.srv.admit(c.claims.CredentialID)
	if refusal != "" {
		c.refuse(chans, refusal)
		return
	}
	defer release()
	ctx, cancel := context.WithCancel(c.srv.ctx)
	defer cancel()
	go c.keepAlive(ctx)
	go c.watch(ctx)

	var channels sync.WaitGroup
	var open atomic.Int32
	for nch := range chans {
		switch {
		case nch.ChannelType() != "session":
			_ = nch.Reject(ssh.UnknownChannelType, "only SFTP sessions are offered")
		case open.Load() >= maxChannels:
			_ = nch.Reject(ssh.ResourceShortage, "too many sessions on this connection")
		default:
			ch, chReqs, err := nch.Accept()
			if err != nil {
				continue
			}
			open.Add(1)
			channels.Add(1)
			go func() {
				defer channels.Done()
				defer open.Add(-1)
				c.serveChannel(ctx, ch, chReqs)
			}()
		}
	}
	channels.Wait()
}

// refuse turns down a connection over the session caps: its first session
// gets the reason, then the connection ends.
func (c *connection) refuse(chans <-chan ssh.NewChannel, reason string) {
	c.log.Warn("sftp session refused", "reason", reason)
	select {
	case nch, ok := <-chans:
		if ok {
			_ = nch.Reject(ssh.ResourceShortage, reason)
		}
	case <-time.After(refusedGrace):
	}
	_ = c.ssh.Close()
	for nch := range chans {
		_ = nch.Reject(ssh.ResourceShortage, reason)
	}
}

// serveChannel answers a session's requests: the sftp subsystem, or in
// its place one command (exec.go), which is the answer to an exec, a shell
// or another subsystem. A terminal and environment variables are granted
// and go unused, so that ssh shows the answer rather than a warning.
func (c *connection) serveChannel(ctx context.Context, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var done chan struct{}
	pty := false
	for req := range reqs {
		var run func() uint32
		ok := false
		switch {
		case done != nil:
			// One program per session, as in sshd.
		case req.Type == "subsystem" && subsystem(req.Payload) == "sftp":
			ok, run = true, func() uint32 { c.serveSFTP(ch); return 0 }
		case req.Type == "exec" || req.Type == "shell" || req.Type == "subsystem":
			out := newOutput(ch, pty)
			ok, run = true, func() uint32 { c.seen.Add(1); return c.command(ctx, req, out) }
		case req.Type == "pty-req":
			ok, pty = true, true
		case req.Type == "env":
			ok = true
		}
		if req.WantReply {
			_ = req.Reply(ok, nil)
		}
		if run != nil {
			done = make(chan struct{})
			go func() {
				defer close(done)
				status := run()
				_ = ch.CloseWrite()
				_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
				_ = ch.Close() // ends reqs
			}()
		}
	}
	if done != nil {
		<-done
	}
}

func subsystem(payload []byte) string {
	var p struct{ Name string }
	if ssh.Unmarshal(payload, &p) != nil {
		return ""
	}
	return p.Name
}

func (c *connection) serveSFTP(ch ssh.Channel) {
	s := &session{srv: c.srv, claims: c.claims, remote: c.remote, log: c.log}
	// No sftp.WithRSAllocator: it reuses a request's buffer once answered,
	// and writeHandle.keep holds early writes' bytes past their answer.
	rs := sftp.NewRequestServer(newSFTPStream(ch, &c.seen),
		sftp.Handlers{FileGet: s, FilePut: s, FileCmd: s, FileList: s})
	started := c.srv.cfg.Now()
	c.log.Info("sftp session started", "credential", c.claims.CredentialID)
	_ = rs.Serve() // it ends when the client leaves or the connection drops
	c.log.Info("sftp session ended", "bytes_in", s.bytesIn.Load(), "bytes_out", s.bytesOut.Load(),
		"duration", c.srv.cfg.Now().Sub(started).Round(time.Millisecond).String())
}

// channelReadSize is how much of a session's channel one read takes.
// x/crypto/ssh answers every read of a channel whose client keeps its
// window full with a window adjust message, and pkg/sftp reads each
// request in two (its length, then the rest): without a buffer that is
// two messages to the client per 32 KiB write, a tenth of the server's
// CPU in an upload. 64 KiB a read is one for two writes.
const channelReadSize = 64 << 10

// sftpStream is a session's channel as the SFTP server reads it: through
// a buffer, counting reads for the idle timeout.
type sftpStream struct {
	ssh.Channel
	r    *bufio.Reader
	seen *atomic.Int64
}

func newSFTPStream(ch ssh.Channel, seen *atomic.Int64) sftpStream {
	return sftpStream{Channel: ch, r: bufio.NewReaderSize(ch, channelReadSize), seen: seen}
}

func (s sftpStream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.seen.Add(1)
	}
	return n, err
}

// keepAlive asks the client every interval whether it is still there, and
// drops the connection when keepAliveMisses asks in a row go unanswered.
func (c *connection) keepAlive(ctx context.Context) {
	t := time.NewTicker(c.srv.cfg.KeepAliveInterval)
	defer t.Stop()
	answered := make(chan struct{}, 1)
	pending, missed := false, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-answered:
			pending, missed = false, 0
		case <-t.C:
			if !pending {
				pending = true
				go func() {
					// Any reply counts: OpenSSH answers "failure".
					if _, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil); err == nil {
						answered <- struct{}{}
					}
				}()
				continue
			}
			if missed++; missed >= keepAliveMisses {
				c.log.Info("sftp connection dropped: keep-alives unanswered")
				_ = c.ssh.Close()
				return
			}
		}
	}
}

// watch ends the connection when its credential no longer opens the case
// (revoked, expired, or the case closed), checked every RecheckInterval,
// or after IdleTimeout without an SFTP request.
func (c *connection) watch(ctx context.Context) {
	recheck := time.NewTicker(c.srv.cfg.RecheckInterval)
	defer recheck.Stop()
	step := c.srv.cfg.IdleTimeout / 4
	idle := time.NewTicker(step)
	defer idle.Stop()
	seen, quiet := c.seen.Load(), time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-recheck.C:
			if reason := c.invalid(ctx); reason != "" {
				c.log.Warn("sftp connection closed", "reason", reason)
				_ = c.ssh.Close()
				return
			}
		case <-idle.C:
			if n := c.seen.Load(); n != seen {
				seen, quiet = n, 0
				continue
			}
			if quiet += step; quiet >= c.srv.cfg.IdleTimeout {
				c.log.Info("sftp connection closed", "reason", "idle")
				_ = c.ssh.Close()
				return
			}
		}
	}
}

// invalid says why the connection's credential no longer opens its case,
// or "". A failed check keeps the connection: the store may be back soon.
func (c *connection) invalid(ctx context.Context) string {
	if !c.srv.cfg.Now().Before(c.claims.ExpiresAt) {
		return "credential expired"
	}
	revoked, err := c.srv.cfg.Catalog.Revoked(ctx, c.claims.Case, c.claims.CredentialID)
	if err != nil {
		level := slog.LevelWarn
		if storage.Fault(err) != nil {
			level = slog.LevelDebug // an outage of the store is logged once, where it is watched
		}
		c.log.Log(ctx, level, "sftp credential recheck failed", "err", err)
		return ""
	}
	if !revoked {
		return ""
	}
	if rec, err := c.srv.cfg.Catalog.Get(ctx, c.claims.Case); err == nil && rec.State == cases.StateClosed {
		return "case closed"
	}
	return "credential revoked"
}
