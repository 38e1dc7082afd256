package sftpd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/cases"
)

func TestRevokedExpiredForgedAndMisnamedCredentialsAreRefusedAtLogin(t *testing.T) {
	e := newEnv(t, diskStore(t))
	revoked := e.issue(t, "case-1", 0)
	if _, err := e.catalog.Revoke(context.Background(), revoked.id); err != nil {
		t.Fatal(err)
	}
	expired := e.issue(t, "case-1", time.Hour)
	good := e.issue(t, "case-1", 0)
	e.clock.Advance(time.Hour + time.Second)

	for _, tc := range []struct {
		name, user, password, reason string
	}{
		{"a revoked credential", revoked.user, revoked.token, "credential revoked"},
		{"an expired credential", expired.user, expired.token, "credential expired"},
		{"a tampered token", good.user, good.token[:len(good.token)-4] + "AAAA", "invalid credential"},
		{"a good token under another user name", "root", good.token, "user name is not the credential's"},
		{"an unknown user", "nobody", "guess", "invalid credential"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.dial(t, clientConfig(tc.user, passwordAuth(tc.password)))
			if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
				t.Fatalf("login: %v, want refused", err)
			}
			if !strings.Contains(e.logs.String(), `reason="`+tc.reason+`"`) {
				t.Errorf("no refusal logged with reason %q", tc.reason)
			}
		})
	}
	e.login(t, good)
}

func TestKeyboardInteractiveLoginTakesTheTokenAsTheAnswer(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issue(t, "case-1", 0)
	answer := ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
		return []string{cr.token}, nil
	})
	c, err := e.dial(t, clientConfig(cr.user, answer))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadDir("/"); err != nil {
		t.Fatal(err)
	}
}

func TestElevenBadPasswordsInAMinuteLockTheSourceOutUntilTheWindowPasses(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issue(t, "case-1", 0)
	for i := range 10 {
		if _, err := e.dial(t, clientConfig(cr.user, passwordAuth("wrong"))); err == nil {
			t.Fatalf("bad password %d accepted", i+1)
		}
		e.clock.Advance(time.Second)
	}
	if _, err := e.dial(t, clientConfig(cr.user, passwordAuth(cr.token))); err == nil {
		t.Fatal("the right password was accepted after 10 failures within a minute")
	}
	if !strings.Contains(e.logs.String(), `reason="too many failed logins"`) {
		t.Error("the lock-out was not logged")
	}
	e.clock.Advance(time.Minute)
	e.login(t, cr)
}

func TestOnlyModernAlgorithmsAreOffered(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issue(t, "case-1", 0)
	for _, tc := range []struct {
		name string
		set  func(*ssh.Config)
	}{
		{"SHA-1 key exchange", func(c *ssh.Config) { c.KeyExchanges = []string{"diffie-hellman-group14-sha1"} }},
		{"CBC cipher", func(c *ssh.Config) { c.Ciphers = []string{"aes128-cbc"} }},
		{"SHA-1 MAC", func(c *ssh.Config) { c.Ciphers, c.MACs = []string{ssh.CipherAES128CTR}, []string{"hmac-sha1"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clientConfig(cr.user, passwordAuth(cr.token))
			tc.set(&cfg.Config)
			if _, err := e.dial(t, cfg); err == nil || !strings.Contains(err.Error(), "no common algorithm") {
				t.Fatalf("handshake: %v, want no common algorithm", err)
			}
		})
	}
	for _, kex := range []string{"curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "diffie-hellman-group16-sha512"} {
		cfg := clientConfig(cr.user, passwordAuth(cr.token))
		cfg.KeyExchanges = []string{kex}
		if _, err := e.dial(t, cfg); err != nil {
			t.Errorf("%s: %v", kex, err)
		}
	}
}

func TestUploadsDownloadsRenamesAndFailedLoginsAreAudited(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issue(t, "case-1", 0)
	c := e.login(t, cr)
	put(t, c, "a.txt.filepart", []byte("audited"))
	if err := c.Rename("a.txt.filepart", "a.txt"); err != nil {
		t.Fatal(err)
	}
	get(t, c, "a.txt")
	if _, err := e.dial(t, clientConfig(cr.user, passwordAuth("wrong"))); err == nil {
		t.Fatal("bad password accepted")
	}

	ctx := context.Background()
	events, err := e.catalog.AuditTrail(ctx, "case-1", cases.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]cases.Event{}
	for _, ev := range events {
		seen[ev.Type] = ev
	}
	for _, typ := range []string{cases.EventUploadStarted, cases.EventUploadFinished, cases.EventFileRenamed, cases.EventFileDownloaded} {
		ev, ok := seen[typ]
		if !ok {
			t.Errorf("no %s event in %+v", typ, events)
			continue
		}
		if ev.Door != "sftp" || ev.CredentialID != cr.id || ev.Username != cr.user || ev.Remote != "127.0.0.1" {
			t.Errorf("%s recorded as done by %+v", typ, ev.Actor)
		}
	}
	if ev := seen[cases.EventFileDownloaded]; ev.File != "a.txt" || ev.SHA256 != sha([]byte("audited")) {
		t.Errorf("download recorded as %+v", ev)
	}
	failed, err := e.catalog.AuditTrail(ctx, "", cases.AuditFilter{Types: []string{cases.EventLoginFailed}})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].Door != "sftp" || failed[0].Username != cr.user || failed[0].Remote != "127.0.0.1" {
		t.Fatalf("failed logins recorded: %+v", failed)
	}
}
