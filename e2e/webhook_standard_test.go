package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/testserver"
)

// delivery is one webhook request as it arrived.
type delivery struct {
	Body         string            `json:"body"`
	Headers      map[string]string `json:"headers"`
	LaterSeconds int               `json:"laterSeconds,omitempty"`
}

// recordingCaseSystem keeps every delivery as it arrived; it refuses the
// first one of each webhook-id, so that the server has to retry.
type recordingCaseSystem struct {
	mu      sync.Mutex
	seen    []delivery
	arrived chan struct{}
}

func (c *recordingCaseSystem) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := delivery{Body: string(body), Headers: map[string]string{}}
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature", "content-type"} {
		d.Headers[name] = r.Header.Get(name)
	}
	c.mu.Lock()
	first := true
	for _, s := range c.seen {
		if s.Headers["webhook-id"] == d.Headers["webhook-id"] {
			first = false
		}
	}
	c.seen = append(c.seen, d)
	c.mu.Unlock()
	select {
	case c.arrived <- struct{}{}:
	default:
	}
	if first {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
}

// waitForRetry returns the two attempts of the first delivery once the
// server has retried it.
func (c *recordingCaseSystem) waitForRetry(t *testing.T) (first, retry delivery) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		if len(c.seen) >= 2 {
			for _, s := range c.seen[1:] {
				if s.Headers["webhook-id"] == c.seen[0].Headers["webhook-id"] {
					first, retry = c.seen[0], s
					c.mu.Unlock()
					return first, retry
				}
			}
		}
		c.mu.Unlock()
		select {
		case <-c.arrived:
		case <-deadline:
			t.Fatal("the server never retried a refused delivery")
		}
	}
}

func TestWebhookDeliveriesVerifyWithTheStandardWebhooksLibraryAndAReplayIsRefused(t *testing.T) {
	root := requireNodeModule(t, "standardwebhooks")
	crm := &recordingCaseSystem{arrived: make(chan struct{}, 1)}
	hook := httptest.NewServer(crm)
	t.Cleanup(hook.Close)
	srv := testserver.Start(t, testserver.Options{
		Args: []string{"--webhook-url", hook.URL},
		Env:  []string{"CASEDROP_WEBHOOK_SECRET=" + crmSecret},
	})
	srv.OpenCase(t, "hooks")
	uploadBytes(t, srv, srv.Credential(t, "hooks", "customer").Token, "trace.pcap", []byte("captured"))
	first, retry := crm.waitForRetry(t)

	tampered := retry
	tampered.Body = strings.Replace(retry.Body, "trace.pcap", "other.pcap", 1)
	replayed := retry
	replayed.LaterSeconds = 6 * 60 // past the library's five minutes
	otherSecret := "whsec_" + strings.Repeat("QUFB", 11)
	var out struct {
		Results []struct {
			OK    bool
			Type  string
			Error string
		}
	}
	job := map[string]any{"secret": crmSecret, "deliveries": []delivery{first, retry, tampered, replayed}}
	runPageScript(t, root, "verify_webhooks.mjs", job, &out)
	if len(out.Results) != 4 {
		t.Fatalf("results %+v", out.Results)
	}
	for i, name := range []string{"the first attempt", "the retry"} {
		if r := out.Results[i]; !r.OK || r.Type != "file.completed" {
			t.Errorf("standardwebhooks refused %s: %+v\n%+v", name, r, []delivery{first, retry}[i])
		}
	}
	if r := out.Results[2]; r.OK {
		t.Error("standardwebhooks verified a delivery whose body was changed")
	}
	if r := out.Results[3]; r.OK || !strings.Contains(r.Error, "too old") {
		t.Errorf("standardwebhooks took a delivery replayed six minutes later: %+v", r)
	}
	t.Run("a delivery does not verify with another secret", func(t *testing.T) {
		runPageScript(t, root, "verify_webhooks.mjs", map[string]any{"secret": otherSecret, "deliveries": []delivery{retry}}, &out)
		if len(out.Results) != 1 || out.Results[0].OK {
			t.Fatalf("verified with another secret: %+v", out.Results)
		}
	})
}

// requireNodeModule returns the module root once node and the npm package
// are installed.
func requireNodeModule(t *testing.T, pkg string) string {
	t.Helper()
	needTools(t, "node")
	root, err := testserver.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", pkg, "package.json")); err != nil {
		t.Fatalf("%s is not installed: run `npm ci` in %s (%v)", pkg, root, err)
	}
	return root
}
