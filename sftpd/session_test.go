package sftpd_test

import (
	"context"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/sftpd"
)

func TestALiveSessionEndsSoonAfterItsCredentialIsRevokedOrItsCaseClosed(t *testing.T) {
	const recheck = 20 * time.Millisecond
	for _, tc := range []struct {
		name   string
		end    func(e *env, cr cred) error
		reason string
	}{
		{"revoked", func(e *env, cr cred) error { _, err := e.catalog.Revoke(context.Background(), cr.id); return err }, "credential revoked"},
		{"case closed", func(e *env, cr cred) error { _, err := e.catalog.Close(context.Background(), "case-1"); return err }, "case closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, diskStore(t), func(c *sftpd.Config) { c.RecheckInterval = recheck })
			cr := e.issue(t, "case-1", 0)
			c := e.login(t, cr)
			f, err := c.OpenFile("in-flight.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(randomBytes(70000, 1)); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Second)
			if err := tc.end(e, cr); err != nil {
				t.Fatal(err)
			}
			ended := time.Now()
			eventually(t, "the server closes the session", c.closed)
			if took := time.Since(ended); took > 50*recheck {
				t.Errorf("the session lasted %v after the %s, with checks every %v", took, tc.name, recheck)
			}
			if !strings.Contains(e.logs.String(), `reason="`+tc.reason+`"`) {
				t.Errorf("no close logged with reason %q", tc.reason)
			}
			if _, err := e.dial(t, clientConfig(cr.user, passwordAuth(cr.token))); err == nil {
				t.Fatal("a new login succeeded")
			}
			eventually(t, "the upload in flight is kept as a partial", func() bool {
				f, err := e.catalog.File(context.Background(), "case-1", "in-flight.bin")
				n, _ := e.ingest.StoredSize(context.Background(), "case-1", f)
				return err == nil && f.State == cases.FileUploading && n == 70000
			})
		})
	}
}

func TestSessionsOverTheCapsAreRefusedWithAClearMessage(t *testing.T) {
	e := newEnv(t, diskStore(t), func(c *sftpd.Config) { c.MaxSessionsPerCredential, c.MaxSessions = 2, 3 })
	alice, bob := e.issue(t, "case-1", 0), e.issue(t, "case-1", 0)
	a1, _ := e.login(t, alice), e.login(t, alice)
	_, err := e.dial(t, clientConfig(alice.user, passwordAuth(alice.token)))
	if err == nil || !strings.Contains(err.Error(), "too many sessions for this credential") {
		t.Fatalf("third session of one credential: %v", err)
	}
	e.login(t, bob)
	_, err = e.dial(t, clientConfig(bob.user, passwordAuth(bob.token)))
	if err == nil || !strings.Contains(err.Error(), "too many sessions") {
		t.Fatalf("session over the total cap: %v", err)
	}
	a1.Close()
	a1.ssh.Close()
	eventually(t, "a session ends and frees its place", func() bool {
		c, err := e.dial(t, clientConfig(alice.user, passwordAuth(alice.token)))
		if err == nil {
			c.ssh.Close()
		}
		return err == nil
	})
}

func TestAnIdleConnectionIsClosed(t *testing.T) {
	e := newEnv(t, diskStore(t), func(c *sftpd.Config) { c.IdleTimeout = 100 * time.Millisecond })
	c := e.login(t, e.issue(t, "case-1", 0))
	eventually(t, "the idle connection is closed", c.closed)
	if !strings.Contains(e.logs.String(), `reason=idle`) {
		t.Error("no idle close logged")
	}
}

func TestKeepAlivesDropAClientThatStopsAnsweringAndKeepOneThatAnswers(t *testing.T) {
	e := newEnv(t, diskStore(t), func(c *sftpd.Config) { c.KeepAliveInterval = 10 * time.Millisecond })
	cr := e.issue(t, "case-1", 0)
	connect := func() (ssh.Conn, <-chan *ssh.Request) {
		tcp, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		sc, chans, reqs, err := ssh.NewClientConn(tcp, e.addr, clientConfig(cr.user, passwordAuth(cr.token)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sc.Close() })
		go func() {
			for nch := range chans {
				_ = nch.Reject(ssh.Prohibited, "")
			}
		}()
		return sc, reqs
	}

	answering, reqs := connect()
	var answered atomic.Int32
	go func() {
		for r := range reqs {
			answered.Add(1)
			_ = r.Reply(false, nil) // as OpenSSH does
		}
	}()
	silent, _ := connect() // its requests are never answered
	silentDone := make(chan struct{})
	go func() { _ = silent.Wait(); close(silentDone) }()
	eventually(t, "the silent client is dropped", func() bool {
		select {
		case <-silentDone:
			return true
		default:
			return false
		}
	})
	eventually(t, "ten keep-alives answered", func() bool { return answered.Load() >= 10 })
	if ok, _, err := answering.SendRequest("still-there@example.com", true, nil); ok || err != nil {
		t.Fatalf("the answering client's connection: %v, %v", ok, err)
	}
}

func TestCommandsAndShellsAreRefusedButTheConnectionStaysUsable(t *testing.T) {
	e := newEnv(t, diskStore(t))
	c := e.login(t, e.issue(t, "case-1", 0))
	s, err := c.ssh.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run("cat /etc/passwd"); err == nil {
		t.Fatal("a command ran")
	}
	if _, err := c.ssh.Dial("tcp", "127.0.0.1:22"); err == nil {
		t.Fatal("port forwarding worked")
	}
	if _, err := c.ReadDir("/"); err != nil {
		t.Fatal(err)
	}
}
