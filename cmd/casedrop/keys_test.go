package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/internal/testserver"
	"github.com/casedrop/casedrop/storage/diskstore"
)

// keysOnData runs `casedrop keys ARGS --json` on dataDir and decodes what
// it prints into v.
func keysOnData(t *testing.T, dataDir string, v any, args ...string) {
	t.Helper()
	var out bytes.Buffer
	if err := runKeys(context.Background(), append(args, "--data-dir", dataDir, "--json"), env(nil), &out); err != nil {
		t.Fatalf("casedrop keys %s: %v", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		t.Fatalf("casedrop keys %s printed %q: %v", strings.Join(args, " "), out.String(), err)
	}
}

// issueToken issues a customer credential for C-1 with the admin CLI
// (where: on the data, or through the server) and returns its token.
func issueToken(t *testing.T, where ...string) string {
	t.Helper()
	var out bytes.Buffer
	args := append([]string{"issue", "C-1", "--json"}, where...)
	if err := credentialsCommand(context.Background(), args, env(map[string]string{"CASEDROP_ADMIN_TOKEN": "admin-token"}), &out); err != nil {
		t.Fatalf("credentials %s: %v", strings.Join(args, " "), err)
	}
	var cred struct{ Token string }
	if err := json.Unmarshal(out.Bytes(), &cred); err != nil || cred.Token == "" {
		t.Fatalf("credentials issue printed %q: %v", out.String(), err)
	}
	return cred.Token
}

// whoamiStatus is the running server's answer to GET /api/v1/whoami with token.
func (ts *testServer) whoamiStatus(t *testing.T, token string) int {
	t.Helper()
	pem, err := os.ReadFile(ts.cacert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	req, err := http.NewRequest(http.MethodGet, ts.url+"/api/v1/whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestKeysRotateSignsWithANewKeyAndOldCredentialsStillWork(t *testing.T) {
	ts := startServer(t)
	before := issueToken(t, "--server", ts.url, "--cacert", ts.cacert)

	var rotated auth.KeyInfo
	keysOnData(t, ts.dataDir, &rotated, "rotate")
	if rotated.KID == "" || rotated.KID == testserver.TokenKID(t, before) || rotated.Generation != 2 || !rotated.Signing {
		t.Fatalf("keys rotate printed %+v; want generation 2, signing, with a kid other than %s", rotated, testserver.TokenKID(t, before))
	}
	after := issueToken(t, "--data-dir", ts.dataDir)
	if got := testserver.TokenKID(t, after); got != rotated.KID {
		t.Fatalf("a credential issued after the rotation has kid %s, want the new %s", got, rotated.KID)
	}
	// The server loaded its keys before the rotation: it takes the new
	// kid's credential by reading the keys again, and still the old one's.
	for name, token := range map[string]string{"issued before the rotation": before, "signed with the new key": after} {
		if status := ts.whoamiStatus(t, token); status != http.StatusOK {
			t.Errorf("the running server answers %d to a credential %s, want 200", status, name)
		}
	}

	var listed []auth.KeyInfo
	keysOnData(t, ts.dataDir, &listed, "list")
	if len(listed) != 2 || listed[0].KID != testserver.TokenKID(t, before) || listed[0].Signing || listed[1] != rotated {
		t.Fatalf("keys list printed %+v; want the first key, then the rotated one signing", listed)
	}
	var text bytes.Buffer
	if err := runKeys(context.Background(), []string{"list", "--data-dir", ts.dataDir}, env(nil), &text); err != nil || !strings.Contains(text.String(), rotated.KID) {
		t.Fatalf("keys list printed %q, %v; want a table naming %s", text.String(), err, rotated.KID)
	}
}

func TestKeysRefusesWhatItDoesNotKnow(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{nil, {"drop"}, {"rotate", "extra"}, {"list", "--server", "https://x"}, {"rotate", "--https-addr", ":1"}} {
		err := runKeys(context.Background(), append(args, "--data-dir", dir), env(nil), &bytes.Buffer{})
		if !errors.As(err, new(usageError)) {
			t.Errorf("keys %v: %v, want a usage error", args, err)
		}
	}
	if err := runKeys(context.Background(), []string{"rotate", "--data-dir", filepath.Join(dir, "none")}, env(nil), &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "no casedrop data") {
		t.Fatalf("keys rotate on a directory without data: %v, want it refused", err)
	}
}

func TestRunningServersSignWithARotatedKeyAfterTheirNextRefresh(t *testing.T) {
	dir := t.TempDir()
	store, err := diskstore.New(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	keys, err := auth.LoadKeys(ctx, store, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	go refreshKeys(ctx, keys, 10*time.Millisecond, slog.New(slog.DiscardHandler))

	var rotated auth.KeyInfo
	keysOnData(t, dir, &rotated, "rotate")
	deadline := time.Now().Add(10 * time.Second)
	for signingKey(keys.List()).KID != rotated.KID {
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the rotation the server still signs with %s, not %s", signingKey(keys.List()).KID, rotated.KID)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
