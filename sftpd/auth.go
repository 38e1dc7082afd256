package sftpd

import (
	"context"
	"errors"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/clientaddr"
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

// keyboardInteractive takes the password or the token as the one answer to
// a password prompt, for clients that prefer this method (PuTTY, WinSCP,
// FileZilla).
func (s *Server) keyboardInteractive(md ssh.ConnMetadata, challenge ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	answers, err := challenge("", "", []string{"Password: "}, []bool{false})
	if err != nil {
		return nil, err
	}
	if len(answers) != 1 {
		return nil, errLogin
	}
	return s.login(md, "keyboard-interactive", answers[0])
}

// login checks a secret offered for md.User(), the credential's short
// password or its token, before anything else: a valid credential always
// gets in, whoever else shares its address. A refused one counts against
// its source (see refuse).
func (s *Server) login(md ssh.ConnMetadata, method, secret string) (*ssh.Permissions, error) {
	ctx, cancel := context.WithTimeout(s.ctx, verifyTimeout)
	defer cancel()
	claims, err := s.cfg.Verifier.Login(ctx, md.User(), secret)
	if err != nil {
		return nil, s.refuse(ctx, md, method, err)
	}
	s.loggedIn(md, method, claims, "")
	return permissions(claims), nil
}

// publicKey accepts the SSH key attached to the credential named by
// md.User(), while that credential opens its case. An offer proves
// nothing (the signature that does comes next), and OpenSSH offers every
// key it has before it asks for a password: a key turned down is neither
// counted against its source nor audited.
func (s *Server) publicKey(md ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	ctx, cancel := context.WithTimeout(s.ctx, verifyTimeout)
	defer cancel()
	claims, err := s.cfg.Verifier.LoginWithKey(ctx, md.User(), key)
	if err != nil {
		if auth.Reason(err) == "" {
			s.log.Error("sftp credential check failed", "remote", md.RemoteAddr().String(), "err", err)
		} else {
			s.log.Debug("sftp public key not accepted", "remote", md.RemoteAddr().String(), "user", loggable(md.User()),
				"key", ssh.FingerprintSHA256(key), "reason", auth.Reason(err))
		}
		return nil, errLogin
	}
	return permissions(claims), nil
}

// verifiedKey is called once the client has signed with the key publicKey
// accepted: only now is it logged in.
func (s *Server) verifiedKey(md ssh.ConnMetadata, key ssh.PublicKey, perms *ssh.Permissions, _ string) (*ssh.Permissions, error) {
	claims, ok := perms.ExtraData[claimsKey{}].(auth.Claims)
	if !ok {
		return nil, errLogin
	}
	s.loggedIn(md, "publickey", claims, ssh.FingerprintSHA256(key))
	return perms, nil
}

func permissions(claims auth.Claims) *ssh.Permissions {
	return &ssh.Permissions{ExtraData: map[any]any{claimsKey{}: claims}}
}

func (s *Server) loggedIn(md ssh.ConnMetadata, method string, claims auth.Claims, key string) {
	attrs := []any{"remote", md.RemoteAddr().String(), "user", claims.Username,
		"case", claims.Case, "credential", claims.CredentialID, "role", claims.Role, "method", method}
	if key != "" {
		attrs = append(attrs, "key", key)
	}
	s.log.Info("sftp login", attrs...)
}

// refuse counts a refused login against its source and records it in the
// server-wide audit trail: each one while the source is within its budget,
// then one a minute with a count. Over the budget the client is told to
// wait.
func (s *Server) refuse(ctx context.Context, md ssh.ConnMetadata, method string, err error) error {
	reason := auth.Reason(err)
	if reason == "" {
		s.log.Error("sftp credential check failed", "remote", md.RemoteAddr().String(), "err", err)
		return errLogin
	}
	metrics.FailedLogins.WithLabelValues(via).Inc()
	client := clientaddr.FromNetAddr(md.RemoteAddr())
	attempt := auth.Attempt{Record: true}
	if s.cfg.Limiter != nil {
		attempt = s.cfg.Limiter.Fail(client)
	}
	if attempt.Record {
		s.log.Warn("sftp login refused", "remote", md.RemoteAddr().String(), "user", loggable(md.User()),
			"method", method, "reason", reason, "limited", attempt.Limited)
		ev := cases.Event{Type: cases.EventLoginFailed, Detail: attempt.Detail(reason + " (" + method + ")"),
			Actor: cases.Actor{Username: loggable(md.User()), Door: via, Remote: client.String()}}
		if err := s.cfg.Catalog.Audit(ctx, ev); err != nil {
			s.log.Error("audit record lost", "type", ev.Type, "err", err)
		}
	} else {
		s.log.Debug("sftp login refused", "remote", md.RemoteAddr().String(), "method", method, "reason", reason, "limited", true)
	}
	if attempt.Limited {
		return errTooManyTries
	}
	return errLogin
}

// loggable shortens and cleans a user name for the log: a client that
// pastes its token into the user name field must not get it logged whole.
func loggable(user string) string {
	const maxLogged = 40
	cut := len(user) > maxLogged
	if cut {
		user = user[:maxLogged]
	}
	user = cases.CleanDetail(user)
	if cut {
		user += "…"
	}
	return user
}

// sourceIP is the client's address for the audit trail: the peer, or the
// client a trusted proxy named in its PROXY header.
func sourceIP(addr net.Addr) string {
	return clientaddr.FromNetAddr(addr).String()
}
