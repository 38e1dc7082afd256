package sftpd

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/metrics"
)

// verifyTimeout bounds one credential check (it reads the store).
const verifyTimeout = 10 * time.Second

// errLogin is all a refused client learns: the same for an unknown user, a
// bad password and a revoked credential, so it never helps a guesser.
var errLogin = errors.New("permission denied")

// errTooManyTries refuses a source over the failed-login limit, with a
// banner that tells a legitimate user to wait.
var errTooManyTries = &ssh.BannerError{
	Err:     errLogin,
	Message: "Too many failed logins from your address: try again in a minute.\n",
}

// claimsKey keys the verified claims in ssh.Permissions.ExtraData.
type claimsKey struct{}

func (s *Server) password(md ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
	return s.login(md, "password", string(password))
}

// keyboardInteractive takes the token as the one answer to a password
// prompt, for clients that prefer this method (PuTTY, WinSCP, FileZilla).
func (s *Server) keyboardInteractive(md ssh.ConnMetadata, challenge ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	if !s.allowed(md, "keyboard-interactive") {
		return nil, errTooManyTries
	}
	answers, err := challenge("", "", []string{"Password: "}, []bool{false})
	if err != nil {
		return nil, err
	}
	if len(answers) != 1 {
		return nil, errLogin
	}
	return s.login(md, "keyboard-interactive", answers[0])
}

// allowed checks the source's failed-login budget before a credential is
// even looked at.
func (s *Server) allowed(md ssh.ConnMetadata, method string) bool {
	if s.cfg.Limiter == nil || s.cfg.Limiter.Allow(sourceIP(md.RemoteAddr())) {
		return true
	}
	s.refused(md, method, "too many failed logins")
	return false
}

// login checks a token offered for md.User(). Failures that look like
// guessing (a bad token, a good token under another user name) count
// against the source address.
func (s *Server) login(md ssh.ConnMetadata, method, token string) (*ssh.Permissions, error) {
	if !s.allowed(md, method) {
		return nil, errTooManyTries
	}
	ctx, cancel := context.WithTimeout(s.ctx, verifyTimeout)
	defer cancel()
	claims, err := s.cfg.Verifier.Verify(ctx, token)
	if err == nil && claims.Username != md.User() {
		err = errWrongUser
	}
	if err != nil {
		if s.cfg.Limiter != nil && (errors.Is(err, auth.ErrInvalid) || errors.Is(err, errWrongUser)) {
			s.cfg.Limiter.Fail(sourceIP(md.RemoteAddr()))
		}
		reason := reasonOf(err)
		if reason == "error" {
			s.log.Error("sftp credential check failed", "remote", md.RemoteAddr().String(), "err", err)
		}
		s.refused(md, method, reason)
		metrics.FailedLogins.WithLabelValues(via).Inc()
		ev := cases.Event{Type: cases.EventLoginFailed, Detail: reason + " (" + method + ")",
			Actor: cases.Actor{Username: loggable(md.User()), Door: via, Remote: sourceIP(md.RemoteAddr())}}
		if err := s.cfg.Catalog.Audit(ctx, ev); err != nil {
			s.log.Error("audit record lost", "type", ev.Type, "err", err)
		}
		return nil, errLogin
	}
	s.log.Info("sftp login", "remote", md.RemoteAddr().String(), "user", claims.Username,
		"case", claims.Case, "credential", claims.CredentialID, "role", claims.Role, "method", method)
	return &ssh.Permissions{ExtraData: map[any]any{claimsKey{}: claims}}, nil
}

var errWrongUser = errors.New("user name is not the credential's")

// reasonOf names a refusal for the log without any detail of the token.
func reasonOf(err error) string {
	for _, e := range []error{auth.ErrExpired, auth.ErrRevoked, auth.ErrInvalid, errWrongUser} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "error"
}

func (s *Server) refused(md ssh.ConnMetadata, method, reason string) {
	s.log.Warn("sftp login refused", "remote", md.RemoteAddr().String(), "user", loggable(md.User()),
		"method", method, "reason", reason)
}

// loggable shortens and cleans a user name for the log: a client that
// pastes its token into the user name field must not get it logged whole.
func loggable(user string) string {
	const maxLogged = 40
	cut := len(user) > maxLogged
	if cut {
		user = user[:maxLogged]
	}
	user = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, user)
	if cut {
		user += "…"
	}
	return user
}

// sourceIP is the address failed logins are counted against.
func sourceIP(addr net.Addr) string {
	if host, _, err := net.SplitHostPort(addr.String()); err == nil {
		return host
	}
	return addr.String()
}
