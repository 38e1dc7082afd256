package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
)

// writePublicKey writes a new ed25519 public key as a .pub file.
func writePublicKey(t *testing.T) (path string, key ssh.PublicKey) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if key, err = ssh.NewPublicKey(pub); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "id_ed25519.pub")
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + " jane@laptop\n"
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, key
}

func TestCredentialsIssuePrintsTheShortPasswordAndAttachesAnSSHKeyOnTheDataAndThroughTheServer(t *testing.T) {
	ts := startServer(t)
	getenv := env(map[string]string{"CASEDROP_ADMIN_TOKEN": "admin-token"})
	for mode, where := range map[string][]string{
		"on the data":        {"--data-dir", ts.dataDir},
		"through the server": {"--server", ts.url, "--cacert", ts.cacert},
	} {
		t.Run(mode, func(t *testing.T) {
			keyFile, key := writePublicKey(t)
			issue := func(extra ...string) string {
				t.Helper()
				var out bytes.Buffer
				args := append(append([]string{"issue", "C-1", "--ssh-key", keyFile}, where...), extra...)
				if err := credentialsCommand(context.Background(), args, getenv, &out); err != nil {
					t.Fatalf("credentials %s: %v", strings.Join(args, " "), err)
				}
				return out.String()
			}
			var cred struct {
				ID, Username, Password, Token string
				Fingerprint                   string `json:"ssh_key_fingerprint"`
			}
			if err := json.Unmarshal([]byte(issue("--json")), &cred); err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^[a-z0-9]{20,64}$`).MatchString(cred.Password) || cred.Password == cred.Token || cred.Token == "" {
				t.Fatalf("issued %+v: want a short password of its own and a token", cred)
			}
			if cred.Fingerprint != ssh.FingerprintSHA256(key) {
				t.Fatalf("fingerprint %q, want %q", cred.Fingerprint, ssh.FingerprintSHA256(key))
			}
			record, err := os.ReadFile(filepath.Join(ts.dataDir, "store", "cases", "C-1", "credentials", cred.ID+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(record), cred.Password) || !strings.Contains(string(record), "password_hash") ||
				!strings.Contains(string(record), cred.Fingerprint) {
				t.Fatalf("the record holds the password, or no hash or key: %s", record)
			}

			text := issue()
			password := regexp.MustCompile(`(?m)^password\s+([a-z0-9]+)$`).FindStringSubmatch(text)
			token := regexp.MustCompile(`(?m)^token\s+(\S+)$`).FindStringSubmatch(text)
			if password == nil || token == nil || password[1] == token[1] || !strings.Contains(text, ssh.FingerprintSHA256(key)) {
				t.Fatalf("issue printed:\n%s\nwant a password line, a token line and the key's fingerprint", text)
			}
		})
	}
}

func TestCredentialsIssueRefusesAKeyFileThatIsNoPublicKey(t *testing.T) {
	ts := startServer(t)
	dir := t.TempDir()
	private := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(private, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(garbage, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, says := range map[string]string{
		private:                       "private key",
		garbage:                       "not an OpenSSH public key",
		filepath.Join(dir, "missing"): "no such file",
	} {
		var out bytes.Buffer
		err := credentialsCommand(context.Background(), []string{"issue", "C-1", "--ssh-key", file, "--data-dir", ts.dataDir}, env(nil), &out)
		if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), says) {
			t.Errorf("--ssh-key %s: %v, want a usage error saying %q", filepath.Base(file), err, says)
		}
		if err != nil && strings.Contains(err.Error(), "b3BlbnNzaC1rZXktdjE") {
			t.Errorf("the error repeats the private key: %v", err)
		}
	}
	creds, err := ts.catalog.Credentials(context.Background(), "C-1")
	if err != nil || len(creds) != 0 {
		t.Fatalf("refused commands issued credentials: %+v %v", creds, err)
	}
}

func TestCredentialsLinkPrintsAnUploadLinkThatRedeemsOnTheDataAndThroughTheServer(t *testing.T) {
	ts := startServer(t)
	keys, err := auth.LoadKeys(context.Background(), ts.store, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	signer := &auth.Issuer{Keys: keys, Issuer: "casedrop", Now: time.Now}
	getenv := env(map[string]string{"CASEDROP_ADMIN_TOKEN": "admin-token", "CASEDROP_PUBLIC_URL": "https://files.example.com/"})
	for mode, tc := range map[string]struct {
		where []string
		base  string // of the URL printed
	}{
		// The server's test surface has no public URL of its own.
		"through the server": {[]string{"--server", ts.url, "--cacert", ts.cacert}, ""},
		"on the data":        {[]string{"--data-dir", ts.dataDir}, "https://files.example.com"},
	} {
		t.Run(mode, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"link", "C-1", "--ttl", "90s"}, tc.where...)
			if err := credentialsCommand(context.Background(), args, getenv, &out); err != nil {
				t.Fatalf("credentials %s: %v", strings.Join(args, " "), err)
			}
			m := regexp.MustCompile(`^` + regexp.QuoteMeta(tc.base+"/cases/C-1#link=") + `([a-z0-9]{32})\n$`).FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("printed %q, want the link's URL alone", out.String())
			}
			cred, err := ts.catalog.RedeemLink(context.Background(), signer, "C-1", m[1], cases.Actor{Door: "api"})
			if err != nil || cred.Role != auth.RoleCustomer {
				t.Fatalf("redeeming the printed link: %+v, %v", cred, err)
			}
		})
	}
	for _, ttl := range []string{"0s", "61m", "soon"} {
		err := credentialsCommand(context.Background(), []string{"link", "C-1", "--ttl", ttl, "--data-dir", ts.dataDir}, getenv, &bytes.Buffer{})
		if !errors.As(err, new(usageError)) {
			t.Errorf("--ttl %s: %v, want a usage error", ttl, err)
		}
	}
	err = credentialsCommand(context.Background(), []string{"link", "C-404", "--data-dir", ts.dataDir}, getenv, &bytes.Buffer{})
	if !errors.Is(err, errNotFound) {
		t.Errorf("a link for a case that is not: %v, want errNotFound (exit status 3)", err)
	}
}
