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
// password or its token, through the login gate, which a valid credential
// always passes; over its source's budget the client is told to wait.
func (s *Server) login(md ssh.ConnMetadata, method, secret string) (*ssh.Permissions, error) {
	ctx, cancel := context.WithTimeout(s.ctx, verifyTimeout)
	defer cancel()
	claims, err := s.gate.Password(ctx, knock(md, method+" login"), md.User(), secret)
	if err != nil {
		return nil, s.refused(md, err)
	}
	s.loggedIn(md, method, claims, "")
	return permissions(claims), nil
}

// publicKey accepts the SSH key attached to the credential named by
// md.User(), while that credential opens its case. The gate neither counts
// nor records a key turned down: an offer proves nothing (the signature
// that does comes next).
func (s *Server) publicKey(md ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	ctx, cancel := context.WithTimeout(s.ctx, verifyTimeout)
	defer cancel()
	claims, err := s.gate.Key(ctx, knock(md, "publickey login"), md.User(), key)
	if err != nil {
		return nil, s.refused(md, err)
	}
	return permissions(claims), nil
}

// knock is who logs in on md, as the gate logs and records them.
func knock(md ssh.ConnMetadata, on string) auth.Knock {
	return auth.Knock{Door: via, Remote: clientaddr.FromNetAddr(md.RemoteAddr()), User: loggable(md.User()), On: on}
}

// refused is the SSH answer to what the gate said: "permission denied",
// with a banner that tells a legitimate user to wait when its source is
// over its budget. A check that failed (the store) is logged.
func (s *Server) refused(md ssh.ConnMetadata, err error) error {
	var r *auth.Refused
	switch {
	case errors.As(err, &r) && r.Limited:
		return errTooManyTries
	case auth.Reason(err) == "":
		s.log.Error("sftp credential check failed", "remote", md.RemoteAddr().String(), "err", err)
	}
	return errLogin
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
