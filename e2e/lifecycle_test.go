package e2e

import (
	"bytes"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/internal/testserver"
	"github.com/casedrop/casedrop/webhook"
)

// crmSecret is the case system's webhook secret (CASEDROP_WEBHOOK_SECRET).
const crmSecret = "whsec_Y3JtLXNlY3JldC1jcm0tc2VjcmV0LWNybS1zZWNyZXQ="

// caseSystem is the CRM's webhook receiver, on loopback.
type caseSystem struct {
	mu      sync.Mutex
	events  []webhook.Payload
	badSig  int
	arrived chan struct{} // a value per delivery
}

func (c *caseSystem) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	key, _ := webhook.ParseSecret(crmSecret)
	secs, _ := strconv.ParseInt(r.Header.Get(webhook.TimestampHeader), 10, 64)
	id := r.Header.Get(webhook.IDHeader)
	if !hmac.Equal([]byte(r.Header.Get(webhook.SignatureHeader)), []byte(webhook.Sign(key, id, time.Unix(secs, 0), body))) {
		c.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p webhook.Payload
	_ = json.Unmarshal(body, &p)
	c.events = append(c.events, p)
	select {
	case c.arrived <- struct{}{}:
	default:
	}
}

// startWithCaseSystem starts casedrop with opts and its webhook pointed
// at a new case system on loopback, which it returns too.
func startWithCaseSystem(t *testing.T, opts testserver.Options) (*testserver.Server, *caseSystem) {
	t.Helper()
	crm := &caseSystem{arrived: make(chan struct{}, 1)}
	hook := httptest.NewServer(crm)
	t.Cleanup(hook.Close)
	opts.Args = append(opts.Args, "--webhook-url", hook.URL)
	opts.Env = append(opts.Env, "CASEDROP_WEBHOOK_SECRET="+crmSecret)
	return testserver.Start(t, opts), crm
}

func (c *caseSystem) waitFor(t *testing.T, typ, file string) webhook.Payload {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		for _, e := range c.events {
			if e.Type == typ && e.File != nil && e.File.Name == file {
				c.mu.Unlock()
				return e
			}
		}
		c.mu.Unlock()
		select {
		case <-c.arrived:
		case <-deadline:
			t.Fatalf("the case system never heard %s of %s", typ, file)
		}
	}
}

func TestACaseLifeThroughTheCLIClosesBothDoorsAndTellsTheCaseSystem(t *testing.T) {
	srv, crm := startWithCaseSystem(t, testserver.Options{})
	cli := func(want int, args ...string) string {
		t.Helper()
		cmd := srv.CLI(t.Context(), args...)
		cmd.Env = append(cmd.Env, "CASEDROP_SERVER="+srv.URL, "CASEDROP_ADMIN_TOKEN="+srv.AdminToken, "CASEDROP_DATA_DIR="+srv.DataDir)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != want {
			t.Fatalf("casedrop %s: exit %d (%v), want %d\n%s%s", strings.Join(args, " "), code, err, want, out.String(), errOut.String())
		}
		return out.String()
	}

	cli(0, "case", "open", "CRM-42")
	var cred testserver.Credential
	if err := json.Unmarshal([]byte(cli(0, "credentials", "issue", "CRM-42", "--json")), &cred); err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("log line\n", 1000))
	url := srv.Create(t, cred.Token, "app.log", int64(len(data)), "")
	if _, _, err := srv.Patch(t.Context(), cred.Token, url, 0, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}

	fileSHA := fileNamed(t, srv.Files(t, "CRM-42"), "app.log").SHA256
	t.Run("the case system hears the file landed, with its digest", func(t *testing.T) {
		ev := crm.waitFor(t, "file.completed", "app.log")
		if ev.Case != "CRM-42" || ev.File.Size != int64(len(data)) || ev.File.SHA256 != fileNamed(t, srv.Files(t, "CRM-42"), "app.log").SHA256 {
			t.Fatalf("event %+v", ev)
		}
	})

	cli(0, "case", "close", "CRM-42")
	t.Run("after the close the credential is refused on tus, the API and SFTP", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/files/", nil)
		req.Header.Set("Authorization", "Bearer "+cred.Token)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Length", "1")
		req.Header.Set("Upload-Metadata", "filename eA==")
		resp, err := srv.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("tus after close: %d", resp.StatusCode)
		}
		req, _ = http.NewRequest(http.MethodGet, srv.URL+"/api/v1/cases/CRM-42/files", nil)
		req.Header.Set("Authorization", "Bearer "+cred.Token)
		if resp, err = srv.Client.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("case API after close: %d", resp.StatusCode)
		}
		_, err = ssh.Dial("tcp", srv.SFTPAddr(), &ssh.ClientConfig{
			User: cred.Username, Auth: []ssh.AuthMethod{ssh.Password(cred.Token)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
		})
		if err == nil {
			t.Error("SFTP login after close succeeded")
		}
	})
	t.Run("staff can still download until the purge", func(t *testing.T) {
		body, _ := srv.Download(t, "CRM-42", "app.log")
		if !bytes.Equal(body, data) {
			t.Fatal("download after close differs")
		}
		if out := cli(0, "case", "show", "CRM-42"); !strings.Contains(out, "closed") || !strings.Contains(out, "purge at") {
			t.Fatalf("case show: %s", out)
		}
	})
	t.Run("the audit trail answers who uploaded and who was refused", func(t *testing.T) {
		out := cli(0, "audit", "CRM-42", "--json")
		for _, want := range []string{`"upload.finished"`, `"case.closed"`, cred.ID} {
			if !strings.Contains(out, want) {
				t.Errorf("audit lacks %s", want)
			}
		}
		// Refused logins are in the server-wide trail, never under a case.
		if server := cli(0, "audit", "--json"); !strings.Contains(server, `"login.failed"`) || strings.Contains(server, cred.Token) {
			t.Errorf("the server-wide trail lacks the refused logins, or shows a token:\n%s", server)
		}
		if strings.Contains(out, cred.Token) {
			t.Error("a token is in the audit trail")
		}
	})
	t.Run("the CLI's exit codes tell scripts what happened", func(t *testing.T) {
		cli(3, "case", "show", "NO-SUCH-CASE")
		cli(2, "case", "frobnicate", "X")
		cli(2, "purge", "--as-of", "tomorrow")
		if out := cli(0, "purge", "--dry-run"); !strings.Contains(out, "nothing due") {
			t.Fatalf("purge --dry-run today: %s", out)
		}
	})
	t.Run("a purge as of 31 days on removes the files and leaves a record", func(t *testing.T) {
		later := time.Now().Add(31 * 24 * time.Hour).UTC().Format(time.RFC3339)
		if out := cli(0, "purge", "--as-of", later); !strings.Contains(out, "purged") || !strings.Contains(out, "CRM-42") {
			t.Fatalf("purge: %s", out)
		}
		if files := srv.Files(t, "CRM-42"); len(files) != 0 {
			t.Fatalf("files after the purge: %+v", files)
		}
		out := cli(0, "audit", "CRM-42", "--type", "case.purged", "--json")
		if !strings.Contains(out, `"app.log"`) || !strings.Contains(out, fileSHA) {
			t.Fatalf("purge record: %s", out)
		}
	})
}

func TestAWebhookEventOutlivesARestartOfTheServer(t *testing.T) {
	crm := &caseSystem{arrived: make(chan struct{}, 1)}
	var down sync.Mutex
	refusing := true
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		down.Lock()
		refuse := refusing
		down.Unlock()
		if refuse {
			w.WriteHeader(http.StatusServiceUnavailable) // the case system is down
			return
		}
		crm.ServeHTTP(w, r)
	}))
	t.Cleanup(hook.Close)
	srv := testserver.Start(t, testserver.Options{
		Args: []string{"--webhook-url", hook.URL},
		Env:  []string{"CASEDROP_WEBHOOK_SECRET=" + crmSecret},
	})
	srv.OpenCase(t, "RESTART")
	token := srv.Credential(t, "RESTART", "customer").Token
	url := srv.Create(t, token, "core.txt", 4, "")
	if _, _, err := srv.Patch(t.Context(), token, url, 0, strings.NewReader("core"), 4); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	down.Lock()
	refusing = false
	down.Unlock()
	srv.Restart(t)
	ev := crm.waitFor(t, "file.completed", "core.txt")
	if ev.Case != "RESTART" || ev.File.Size != 4 {
		t.Fatalf("event after the restart: %+v", ev)
	}
}
