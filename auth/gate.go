package auth

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"golang.org/x/crypto/ssh"
)

// Gate is the one login path of both doors: it checks a credential, and
// counts, limits and records the refused ones. A credential is checked
// before the limiter is asked, so a valid one always gets in, whoever
// else shares its address; only a refusal counts against its source.
// Each door maps what the Gate returns to its own answer.
type Gate struct {
	Verifier *Verifier
	// Limiter slows down sources that keep failing; nil limits nothing
	// and records every refusal.
	Limiter *Limiter
	// Trail records refused logins in the server-wide audit trail.
	Trail RefusalTrail
	// CountRefusal counts a refused credential at door (the failed-login
	// metric); nil counts nothing.
	CountRefusal func(door string)
	Log          *slog.Logger
}

// Knock is who tries to log in, as the door sees them. It never holds
// the secret offered.
type Knock struct {
	// Door is the door knocked at: api, tus or sftp.
	Door string
	// Remote is the client; the limiter counts its source.
	Remote netip.Addr
	// User is the user name offered (SFTP), cut and cleaned by the door
	// for the log and the trail: a token pasted into it must not be
	// recorded whole.
	User string
	// On is what the attempt was for, for the log and the trail: the
	// request ("GET /api/v1/...") or the SFTP method ("password login"),
	// cleaned by the door.
	On string
}

// Refusal is a refused login as the audit trail records it.
type Refusal struct {
	Knock
	// Detail says why, with what the limiter knows of the source; never
	// a secret.
	Detail string
}

// RefusalTrail records refused logins, in no case's trail: a client
// chooses the case its request names. The cases package implements it.
type RefusalTrail interface {
	RecordRefusal(ctx context.Context, r Refusal) error
}

// Refused is the error of a login the Gate turned down: Err is why
// (ErrInvalid, ErrExpired, ErrRevoked, ErrWrongCase or ErrWrongUser; for
// a download link also ErrDownloadExpired or ErrWrongDownload),
// for the door's message. Limited says the source is over its budget:
// answer "too many attempts", and that it may try again after RetryAfter.
type Refused struct {
	Err        error
	Limited    bool
	RetryAfter time.Duration
}

func (r *Refused) Error() string { return r.Err.Error() }
func (r *Refused) Unwrap() error { return r.Err }

// Token checks a bearer token (HTTPS, or an SFTP password that is a
// token): for caseID when it is not empty. A refusal is a *Refused; any
// other error means the check itself failed (the store), and counts
// against nobody.
func (g *Gate) Token(ctx context.Context, k Knock, token, caseID string) (Claims, error) {
	var (
		c   Claims
		err error
	)
	if caseID != "" {
		c, err = g.Verifier.VerifyForCase(ctx, token, caseID)
	} else {
		c, err = g.Verifier.Verify(ctx, token)
	}
	if err != nil {
		return Claims{}, g.refuse(ctx, k, err)
	}
	return c, nil
}

// Password checks a secret offered with user name user on the SFTP door:
// the credential's short password or its token (Verifier.Login). It
// refuses as Token does.
func (g *Gate) Password(ctx context.Context, k Knock, user, secret string) (Claims, error) {
	c, err := g.Verifier.Login(ctx, user, secret)
	if err != nil {
		return Claims{}, g.refuse(ctx, k, err)
	}
	return c, nil
}

// Key checks that key is the SSH key attached to the credential named
// user (Verifier.LoginWithKey). An offer proves nothing, and OpenSSH
// offers every key it has before it asks for a password: a key turned
// down is neither counted against its source nor recorded, and the error
// is never a *Refused.
func (g *Gate) Key(ctx context.Context, k Knock, user string, key ssh.PublicKey) (Claims, error) {
	c, err := g.Verifier.LoginWithKey(ctx, user, key)
	if err != nil {
		if reason := Reason(err); reason != "" {
			g.log().DebugContext(ctx, "public key not accepted", "door", k.Door, "remote", k.Remote.String(), "user", k.User,
				"key", ssh.FingerprintSHA256(key), "reason", reason)
		}
		return Claims{}, err
	}
	return c, nil
}

// Refuse counts and records a secret refused that is no credential (an
// upload link's code) as a refused credential is: err says why, and its
// message goes into the log and the trail, so it must hold no secret.
func (g *Gate) Refuse(ctx context.Context, k Knock, err error) *Refused {
	return g.count(ctx, k, err.Error(), err)
}

// refuse counts a refused credential against its source and records it,
// as count does. It returns err as a *Refused, or unchanged when it is no
// refusal (the check failed).
func (g *Gate) refuse(ctx context.Context, k Knock, err error) error {
	reason := Reason(err)
	if reason == "" {
		return err
	}
	return g.count(ctx, k, reason, err)
}

// count counts a refusal against its source and records it: each one
// while the source is within its budget, then one a minute with a count,
// so that a guesser cannot flood the trail.
func (g *Gate) count(ctx context.Context, k Knock, reason string, err error) *Refused {
	if g.CountRefusal != nil {
		g.CountRefusal(k.Door)
	}
	attempt := Attempt{Record: true}
	if g.Limiter != nil {
		attempt = g.Limiter.Fail(k.Remote)
	}
	attrs := []any{"door", k.Door, "remote", k.Remote.String(), "on", k.On, "reason", reason, "limited", attempt.Limited}
	if k.User != "" {
		attrs = append(attrs, "user", k.User)
	}
	if !attempt.Record {
		g.log().DebugContext(ctx, "credential refused", attrs...)
	} else {
		g.log().WarnContext(ctx, "credential refused", attrs...)
		r := Refusal{Knock: k, Detail: attempt.Detail(reason + " on " + k.On)}
		if err := g.Trail.RecordRefusal(ctx, r); err != nil {
			g.log().ErrorContext(ctx, "audit record lost", "type", "login.failed", "err", err)
		}
	}
	return &Refused{Err: err, Limited: attempt.Limited, RetryAfter: attempt.RetryAfter}
}

func (g *Gate) log() *slog.Logger {
	if g.Log == nil {
		return slog.Default()
	}
	return g.Log
}
