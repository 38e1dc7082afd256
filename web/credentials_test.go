package web_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func newAuthorizedKey(t *testing.T) (ssh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return key, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

func jsonBody(t *testing.T, v any) *strings.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReader(string(b))
}

func TestACredentialsShortPasswordIsShownOnceAndRidesInItsLinksFragment(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("c1")
	if len(cred.Password) < 20 || len(cred.Password) > 64 || strings.Trim(cred.Password, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		t.Fatalf("password %q: want 20 to 64 lowercase letters and digits", cred.Password)
	}
	link, err := url.Parse(cred.UploadURL)
	if err != nil {
		t.Fatal(err)
	}
	fragment, err := url.ParseQuery(link.Fragment)
	if err != nil || fragment.Get("token") != cred.Token || fragment.Get("password") != cred.Password {
		t.Fatalf("upload_url %q: fragment %v (%v), want the token and the password", cred.UploadURL, fragment, err)
	}
	if link.Path != "/cases/c1" || link.RawQuery != "" {
		t.Fatalf("upload_url %q: the secrets belong in the fragment only", cred.UploadURL)
	}

	other := e.credential("c1", "customer")
	if other.Password == cred.Password {
		t.Fatal("two credentials got the same password")
	}
	listed := string(e.expect(e.do("GET", "/api/v1/cases/c1/credentials", adminToken, nil), http.StatusOK))
	revoked := string(e.expect(e.do("DELETE", "/api/v1/credentials/"+cred.ID, adminToken, nil), http.StatusOK))
	for what, text := range map[string]string{"the list": listed, "the revocation": revoked, "the log": e.logs.String()} {
		if strings.Contains(text, cred.Password) || strings.Contains(text, other.Password) || strings.Contains(text, "password_hash") {
			t.Errorf("%s shows a password or its hash: %s", what, text)
		}
	}
}

func TestAnSSHKeyAttachedAtIssueComesBackAsItsFingerprint(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("PUT", "/api/v1/cases/c1", adminToken, nil), http.StatusCreated)
	key, line := newAuthorizedKey(t)
	body := e.expect(e.do("POST", "/api/v1/cases/c1/credentials", adminToken,
		jsonBody(t, map[string]string{"role": "customer", "ssh_public_key": line + " jane@laptop"})), http.StatusCreated)
	var got struct {
		ID          string
		Password    string
		Fingerprint string `json:"ssh_key_fingerprint"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Fingerprint != ssh.FingerprintSHA256(key) || got.Password == "" {
		t.Fatalf("response %s: want ssh_key_fingerprint %s and a password", body, ssh.FingerprintSHA256(key))
	}
	var list struct {
		Credentials []struct {
			ID          string
			Key         string `json:"ssh_public_key"`
			Fingerprint string `json:"ssh_key_fingerprint"`
		}
	}
	if err := json.Unmarshal(e.expect(e.do("GET", "/api/v1/cases/c1/credentials", adminToken, nil), http.StatusOK), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Credentials) != 1 || list.Credentials[0].Key != line || list.Credentials[0].Fingerprint != got.Fingerprint {
		t.Fatalf("listed as %+v, want the key %q", list.Credentials, line)
	}
	plain := e.expect(e.do("POST", "/api/v1/cases/c1/credentials", adminToken, nil), http.StatusCreated)
	if strings.Contains(string(plain), "ssh_key_fingerprint") {
		t.Fatalf("a credential issued without a key shows a fingerprint: %s", plain)
	}
}

func TestABadSSHKeyIsRefusedWithAClearErrorAndNoCredential(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("PUT", "/api/v1/cases/c1", adminToken, nil), http.StatusCreated)
	_, line := newAuthorizedKey(t)
	private := "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"
	for _, tc := range []struct{ name, key, says string }{
		{"not a key", "my key", "not an OpenSSH public key"},
		{"a cut key", line[:30], "not an OpenSSH public key"},
		{"two keys", line + "\n" + line, "one key"},
		{"a key with options", `command="sh" ` + line, "options"},
		{"a private key", private, "private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do("POST", "/api/v1/cases/c1/credentials", adminToken, jsonBody(t, map[string]string{"ssh_public_key": tc.key}))
			body := e.expect(resp, http.StatusBadRequest)
			var apiErr struct{ Error, Code string }
			if err := json.Unmarshal(body, &apiErr); err != nil || apiErr.Code != "invalid_ssh_key" ||
				!strings.Contains(apiErr.Error, "ssh_public_key") || !strings.Contains(apiErr.Error, tc.says) {
				t.Fatalf("answer %s: want JSON with code invalid_ssh_key and an error about ssh_public_key saying %q", body, tc.says)
			}
			if strings.Contains(string(body), "b3BlbnNzaC1rZXkt") || len(tc.key) > 20 && strings.Contains(string(body), tc.key[12:20]) {
				t.Fatalf("the answer repeats the key: %s", body)
			}
		})
	}
	var list struct{ Credentials []any }
	if err := json.Unmarshal(e.expect(e.do("GET", "/api/v1/cases/c1/credentials", adminToken, nil), http.StatusOK), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Credentials) != 0 {
		t.Fatalf("refused requests issued credentials: %+v", list.Credentials)
	}
}
