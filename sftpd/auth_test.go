package sftpd_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/clientaddr"
	"github.com/casedrop/casedrop/sftpd"
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

func TestBadPasswordsNeverLockOutTheRightOneAndAreSlowedPastTen(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issue(t, "case-1", 0)
	for i := range 10 {
		_, err := e.dial(t, clientConfig(cr.user, passwordAuth("wrong")))
		if err == nil || strings.Contains(e.logs.String(), "limited=true") {
			t.Fatalf("bad password %d: %v, or limited within the budget", i+1, err)
		}
		e.clock.Advance(time.Second)
	}
	var banner string
	cfg := clientConfig(cr.user, passwordAuth("wrong"))
	cfg.BannerCallback = func(message string) error { banner = message; return nil }
	if _, err := e.dial(t, cfg); err == nil || !strings.Contains(banner, "Too many failed logins") {
		t.Fatalf("the eleventh bad password: %v, banner %q; want refused with the too-many banner", err, banner)
	}
	e.login(t, cr) // the right password, from the same address
	answer := ssh.KeyboardInteractive(func(_, _ string, _ []string, _ []bool) ([]string, error) {
		return []string{cr.token}, nil
	})
	if _, err := e.dial(t, clientConfig(cr.user, answer)); err != nil {
		t.Fatalf("keyboard-interactive with the right token after 11 failures: %v", err)
	}
	e.clock.Advance(time.Minute)
	banner = ""
	if _, err := e.dial(t, cfg); err == nil || banner != "" {
		t.Fatalf("a bad password a minute later: %v, banner %q; want an ordinary refusal", err, banner)
	}
}

func TestATokenSpelledAnyOtherWayIsRefusedAsPassword(t *testing.T) {
	e := newEnv(t, diskStore(t))
	cr := e.issue(t, "case-1", 0)
	sig := cr.token[strings.LastIndexByte(cr.token, '.')+1:]
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
	respelled := cr.token[:len(cr.token)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last^1])
	for name, password := range map[string]string{
		"with a newline inside its signature": cr.token[:len(cr.token)-10] + "\n" + cr.token[len(cr.token)-10:],
		"with a trailing newline":             cr.token + "\n",
		"with a space before it":              " " + cr.token,
		"with a non-canonical last character": respelled,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := e.dial(t, clientConfig(cr.user, passwordAuth(password))); err == nil {
				t.Fatal("accepted as password")
			}
			answer := ssh.KeyboardInteractive(func(_, _ string, _ []string, _ []bool) ([]string, error) {
				return []string{password}, nil
			})
			if _, err := e.dial(t, clientConfig(cr.user, answer)); err == nil {
				t.Fatal("accepted as keyboard-interactive answer")
			}
		})
	}
	e.login(t, cr)
}

func TestAPROXYHeaderNamesTheClientOnlyFromATrustedProxy(t *testing.T) {
	proxied := &net.TCPAddr{IP: net.ParseIP("198.51.100.9"), Port: 50000}
	header := func(t *testing.T, version byte) []byte {
		var b bytes.Buffer
		h := proxyproto.HeaderProxyFromAddrs(version, proxied, &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 2222})
		if _, err := h.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	trust := func(list string) func(*sftpd.Config) {
		return func(c *sftpd.Config) {
			p, err := clientaddr.ParseProxies(list)
			if err != nil {
				t.Fatal(err)
			}
			c.TrustedProxies = p
		}
	}
	for _, version := range []byte{1, 2} {
		t.Run(fmt.Sprintf("v%d from a trusted proxy: logins and the trail carry the client's address", version), func(t *testing.T) {
			e := newEnv(t, diskStore(t), trust("127.0.0.1"))
			cr := e.issue(t, "case-1", 0)
			if _, err := e.dialAfter(t, clientConfig(cr.user, passwordAuth("wrong")), header(t, version)); err == nil {
				t.Fatal("bad password accepted")
			}
			failed, err := e.catalog.AuditTrail(context.Background(), "", cases.AuditFilter{})
			if err != nil || len(failed) != 1 || failed[0].Remote != "198.51.100.9" {
				t.Fatalf("refused login recorded as %+v (%v), want from 198.51.100.9", failed, err)
			}
			c, err := e.dialAfter(t, clientConfig(cr.user, passwordAuth(cr.token)), header(t, version))
			if err != nil {
				t.Fatal(err)
			}
			put(t, c, "p.txt", []byte("proxied"))
			events, _ := e.catalog.AuditTrail(context.Background(), "case-1", cases.AuditFilter{Types: []string{cases.EventUploadFinished}})
			if len(events) != 1 || events[0].Remote != "198.51.100.9" {
				t.Fatalf("upload recorded as %+v, want from 198.51.100.9", events)
			}
			if !strings.Contains(e.logs.String(), `msg="sftp login" remote=198.51.100.9:50000`) {
				t.Error("the login was not logged with the client's address")
			}
			e.login(t, cr) // the trusted proxy's own connection, without a header
		})
	}
	t.Run("from an untrusted peer the connection is closed", func(t *testing.T) {
		e := newEnv(t, diskStore(t), trust("192.0.2.0/24"))
		cr := e.issue(t, "case-1", 0)
		if _, err := e.dialAfter(t, clientConfig(cr.user, passwordAuth(cr.token)), header(t, 2)); err == nil {
			t.Fatal("a PROXY header from an untrusted peer was accepted")
		}
		if _, err := e.dialAfter(t, clientConfig(cr.user, passwordAuth(cr.token)), header(t, 1)); err == nil {
			t.Fatal("a PROXY v1 header from an untrusted peer was accepted")
		}
		e.login(t, cr)
	})
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
