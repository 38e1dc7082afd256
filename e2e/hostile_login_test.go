package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/internal/testserver"
)

// What a guesser tries against the logins of the built binary: none of it
// may lock out a valid credential, choose where audit records go, or get a
// token in under another spelling.

// status sends GET path with token and headers (name, value, ...) and
// returns the response, body read.
func status(t *testing.T, srv *testserver.Server, path, token string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func wantStatus(t *testing.T, resp *http.Response, want int, what string) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d", what, resp.StatusCode, want)
	}
}

// sftpLoginAfter logs in over SSH with password, after sending preamble
// (a PROXY header) on the connection.
func sftpLoginAfter(srv *testserver.Server, user, password string, preamble []byte) error {
	nc, err := net.DialTimeout("tcp", srv.SFTPAddr(), 10*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := nc.Write(preamble); err != nil {
		return err
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, srv.SFTPAddr(), &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.Password(password)}, HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		return err
	}
	ssh.NewClient(sc, chans, reqs).Close()
	return nil
}

func proxyHeader(t *testing.T, version byte, client string) []byte {
	t.Helper()
	var b bytes.Buffer
	h := proxyproto.HeaderProxyFromAddrs(version, &net.TCPAddr{IP: net.ParseIP(client), Port: 40000}, &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 2222})
	if _, err := h.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func serverTrail(t *testing.T, srv *testserver.Server) []map[string]any {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/api/v1/audit", nil)
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Events []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/audit: %d, %v", resp.StatusCode, err)
	}
	return out.Events
}

func TestHostileBadTokensNeverLockOutTheAdminOrAValidCredentialFromTheSameAddress(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "nat")
	cred := srv.Credential(t, "nat", "customer")
	for i := range 12 {
		status(t, srv, "/api/v1/cases/nat/files", "bad.token."+strconv.Itoa(i))
	}
	wantStatus(t, status(t, srv, "/api/v1/cases/nat", srv.AdminToken), http.StatusOK, "the admin token after 12 bad tokens")
	wantStatus(t, status(t, srv, "/api/v1/cases/nat/files", cred.Token), http.StatusOK, "a valid case token after 12 bad tokens")
	if err := sftpLoginAfter(srv, cred.Username, cred.Password, nil); err != nil {
		t.Fatalf("a valid SFTP login after 12 bad tokens: %v", err)
	}
	resp := status(t, srv, "/api/v1/cases/nat/files", "bad.token.13")
	wantStatus(t, resp, http.StatusTooManyRequests, "a 13th bad token")
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q, want 1 to 60 seconds", resp.Header.Get("Retry-After"))
	}
	if err := sftpLoginAfter(srv, cred.Username, "wrong", nil); err == nil {
		t.Fatal("a bad SFTP password was accepted")
	}
	if err := sftpLoginAfter(srv, cred.Username, cred.Password, nil); err != nil {
		t.Fatalf("a valid SFTP login after a refused one: %v", err)
	}
}

func TestHostileClientsBehindATrustedProxyHaveTheirOwnBudgets(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Args: []string{"--trusted-proxies", "127.0.0.1"}})
	bad := func(client string) int {
		return status(t, srv, "/api/v1/cases/c/files", "bad.bad.bad", "X-Forwarded-For", client).StatusCode
	}
	for range 10 {
		bad("203.0.113.7")
	}
	if got := bad("203.0.113.7"); got != http.StatusTooManyRequests {
		t.Fatalf("the guesser's 11th bad token: %d, want 429", got)
	}
	if got := bad("203.0.113.8"); got != http.StatusUnauthorized {
		t.Fatalf("another client's bad token: %d, want 401 (its own budget)", got)
	}
	for range 10 {
		bad("2001:db8:1:2::7")
	}
	if got := bad("2001:db8:1:2:ffff::8"); got != http.StatusTooManyRequests {
		t.Fatalf("a bad token from the same /64: %d, want 429 (one budget)", got)
	}
	found := false
	for _, ev := range serverTrail(t, srv) {
		found = found || ev["remote"] == "203.0.113.8"
	}
	if !found {
		t.Error("no refused login recorded from the address the trusted proxy named")
	}
}

func TestHostileSFTPProxyHeaderIsBelievedFromTrustedProxiesOnly(t *testing.T) {
	t.Run("from a trusted proxy the refused login is recorded from the client", func(t *testing.T) {
		srv := testserver.Start(t, testserver.Options{Args: []string{"--trusted-proxies", "127.0.0.1"}})
		srv.OpenCase(t, "px")
		cred := srv.Credential(t, "px", "customer")
		if err := sftpLoginAfter(srv, cred.Username, "wrong", proxyHeader(t, 2, "198.51.100.9")); err == nil {
			t.Fatal("a bad password was accepted")
		}
		events := serverTrail(t, srv)
		if len(events) != 1 || events[0]["remote"] != "198.51.100.9" || events[0]["door"] != "sftp" {
			t.Fatalf("server-wide trail %v, want one sftp refusal from 198.51.100.9", events)
		}
		if err := sftpLoginAfter(srv, cred.Username, cred.Password, proxyHeader(t, 2, "198.51.100.9")); err != nil {
			t.Fatalf("a valid login through the proxy: %v", err)
		}
		if err := sftpLoginAfter(srv, cred.Username, cred.Password, nil); err != nil {
			t.Fatalf("the proxy's own connection without a header: %v", err)
		}
	})
	t.Run("from an untrusted peer the connection is refused", func(t *testing.T) {
		srv := testserver.Start(t, testserver.Options{})
		srv.OpenCase(t, "px")
		cred := srv.Credential(t, "px", "customer")
		for _, version := range []byte{1, 2} {
			if err := sftpLoginAfter(srv, cred.Username, cred.Password, proxyHeader(t, version, "198.51.100.9")); err == nil {
				t.Fatalf("a PROXY v%d header from an untrusted peer was accepted", version)
			}
		}
	})
}

// nonCanonical respells a token's last character (an Ed25519 signature's
// 86 base64url characters leave 4 unused bits in it).
func nonCanonical(token string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, token[len(token)-1])
	return token[:len(token)-1] + string(alphabet[last^1])
}

// rawGet sends a hand-written HTTP/1.1 request with header lines as given
// and returns the status code.
func rawGet(t *testing.T, srv *testserver.Server, path string, headerLines ...string) int {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(srv.URL, "https://"), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: casedrop\r\nConnection: close\r\n" + strings.Join(headerLines, "\r\n") + "\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestHostileTokensSpelledAnotherWayAreRefusedOnBothDoors(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "spell")
	cred := srv.Credential(t, "spell", "customer")
	tok := cred.Token
	wantStatus(t, status(t, srv, "/api/v1/cases/spell/files", nonCanonical(tok)), http.StatusUnauthorized, "a non-canonical token over HTTPS")
	wantStatus(t, status(t, srv, "/api/v1/cases/spell/files", tok[:40]+" "+tok[40:]), http.StatusUnauthorized, "a token with a space inside over HTTPS")
	if got := rawGet(t, srv, "/api/v1/cases/spell/files", "Authorization: Bearer "+tok[:len(tok)-10], " "+tok[len(tok)-10:]); got == http.StatusOK {
		t.Fatal("a token folded over two header lines was accepted over HTTPS")
	}
	if got := rawGet(t, srv, "/api/v1/cases/spell/files", "Authorization: Bearer "+tok); got != http.StatusOK {
		t.Fatalf("the token itself over raw HTTP/1.1: %d", got)
	}
	for name, password := range map[string]string{
		"a non-canonical token":           nonCanonical(tok),
		"a token with a newline inside":   tok[:len(tok)-10] + "\n" + tok[len(tok)-10:],
		"a token with a trailing newline": tok + "\n",
	} {
		if err := sftpLoginAfter(srv, cred.Username, password, nil); err == nil {
			t.Errorf("%s was accepted as SFTP password", name)
		}
	}
	wantStatus(t, status(t, srv, "/api/v1/cases/spell/files", tok), http.StatusOK, "the token itself over HTTPS")
	if err := sftpLoginAfter(srv, cred.Username, tok, nil); err != nil {
		t.Fatalf("the token itself over SFTP: %v", err)
	}
}

func TestHostileBadTokensWriteNothingUnderTheCaseTheyName(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "SOMEONE-ELSE")
	wantStatus(t, status(t, srv, "/api/v1/cases/SOMEONE-ELSE/files", "bad.bad.bad"), http.StatusUnauthorized, "a bad token")
	wantStatus(t, status(t, srv, "/api/v1/cases/NO-SUCH-CASE/files", "bad.bad.bad"), http.StatusUnauthorized, "a bad token")
	for _, c := range []string{"SOMEONE-ELSE", "NO-SUCH-CASE"} {
		entries, _ := os.ReadDir(filepath.Join(srv.DataDir, "store", "audit", c))
		for _, e := range entries {
			data, _ := os.ReadFile(filepath.Join(srv.DataDir, "store", "audit", c, e.Name()))
			if strings.Contains(string(data), "login.failed") {
				t.Errorf("a refused login was written under audit/%s/: %s", c, data)
			}
		}
	}
	if n := len(serverTrail(t, srv)); n != 2 {
		t.Errorf("the server-wide trail holds %d refused logins, want 2", n)
	}
}

func TestHostileShortAdminTokenRefusesToStart(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := srv.CLI(ctx, "serve", "--data-dir", t.TempDir(), "--https-addr", "127.0.0.1:0", "--sftp-addr", "127.0.0.1:0")
	cmd.Env = append(cmd.Env, "CASEDROP_ADMIN_TOKEN=a")
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "at least 32") {
		t.Fatalf("serve with a 1-character admin token: %v, context %v, output:\n%s", err, ctx.Err(), out)
	}
	if strings.Contains(string(out), "=a\n") {
		t.Error("the output quotes the token")
	}
}
