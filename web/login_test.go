package web_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/clientaddr"
	"github.com/casedrop/casedrop/web"
)

// withLimiter gives the server a limiter of 10 failures a minute on the
// test clock, and trusts proxies (a comma-separated list) if any.
func withLimiter(e **env, proxies string) func(*web.Config) {
	return func(c *web.Config) {
		c.Limiter = auth.NewLimiter(10, time.Minute, c.Now)
		p, err := clientaddr.ParseProxies(proxies)
		if err != nil {
			panic(err)
		}
		c.TrustedProxies = p
	}
}

func (e *env) serverTrail() []map[string]any {
	e.t.Helper()
	var trail struct{ Events []map[string]any }
	if err := json.Unmarshal(e.expect(e.do("GET", "/api/v1/audit", adminToken, nil), 200), &trail); err != nil {
		e.t.Fatal(err)
	}
	return trail.Events
}

func TestFailedLoginsNeverLockOutAValidCredential(t *testing.T) {
	var e *env
	e = newEnv(t, withLimiter(&e, ""))
	cred := e.openCase("c1")
	for i := range 10 {
		e.expect(e.do("GET", "/api/v1/cases/c1/files", "bad."+strconv.Itoa(i)+".token", nil), http.StatusUnauthorized)
	}
	resp := e.do("GET", "/api/v1/cases/c1/files", "bad.11.token", nil)
	body := e.expect(resp, http.StatusTooManyRequests)
	if !strings.Contains(string(body), `"too_many_attempts"`) {
		t.Errorf("the eleventh bad token got %s, want code too_many_attempts", body)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q, want 1 to 60 seconds", resp.Header.Get("Retry-After"))
	}

	e.expect(e.do("GET", "/api/v1/cases/c1", adminToken, nil), http.StatusOK)
	e.files("c1", cred.Token)
	path := e.create(cred.Token, 2, meta("filename", "ok.txt"))
	e.expect(e.patch(cred.Token, path, 0, []byte("ok")), http.StatusNoContent)
	e.expect(e.do("GET", "/api/v1/cases/c1/files", "bad.12.token", nil), http.StatusTooManyRequests)

	e.clock.Advance(time.Minute)
	e.expect(e.do("GET", "/api/v1/cases/c1/files", "bad.13.token", nil), http.StatusUnauthorized)
}

func TestFailedLoginsAreCountedPerClientBehindATrustedProxy(t *testing.T) {
	tests := []struct {
		name      string
		proxies   string
		attacker  []string // headers of the guesser's requests
		bystander []string // headers of another client's bad token
		want      int      // the bystander's status
	}{
		{"clients named by a trusted proxy have their own budgets", "127.0.0.1",
			[]string{"X-Forwarded-For", "203.0.113.7"}, []string{"X-Forwarded-For", "203.0.113.8"}, http.StatusUnauthorized},
		{"an untrusted peer cannot escape its budget by naming other clients", "",
			[]string{"X-Forwarded-For", "203.0.113.7"}, []string{"X-Forwarded-For", "203.0.113.8"}, http.StatusTooManyRequests},
		{"two addresses of one IPv6 /64 share a budget", "127.0.0.1",
			[]string{"X-Forwarded-For", "2001:db8:1:2::7"}, []string{"X-Forwarded-For", "2001:db8:1:2:ffff::8"}, http.StatusTooManyRequests},
		{"another /64 has its own budget", "127.0.0.1",
			[]string{"X-Forwarded-For", "2001:db8:1:2::7"}, []string{"X-Forwarded-For", "2001:db8:1:3::7"}, http.StatusUnauthorized},
		{"Forwarded for= names the client too", "127.0.0.1",
			[]string{"Forwarded", "for=203.0.113.7"}, []string{"Forwarded", `for="[2001:db8::1]"`}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *env
			e = newEnv(t, withLimiter(&e, tt.proxies))
			for range 10 {
				e.expect(e.do("GET", "/api/v1/cases/c1/files", "bad.bad.bad", nil, tt.attacker...), http.StatusUnauthorized)
			}
			e.expect(e.do("GET", "/api/v1/cases/c1/files", "bad.bad.bad", nil, tt.attacker...), http.StatusTooManyRequests)
			e.expect(e.do("GET", "/api/v1/cases/c1/files", "bad.bad.bad", nil, tt.bystander...), tt.want)
		})
	}
}

func TestRefusedLoginsGoToTheServerWideTrailNeverUnderTheNamedCase(t *testing.T) {
	var e *env
	e = newEnv(t, withLimiter(&e, "127.0.0.1"))
	e.openCase("victim")
	e.expect(e.do("GET", "/api/v1/cases/victim/files", "bad.bad.bad", nil, "X-Forwarded-For", "203.0.113.9"), http.StatusUnauthorized)
	e.clock.Advance(time.Second)
	e.expect(e.do("GET", "/api/v1/cases/nonexistent/files", "bad.bad.bad", nil), http.StatusUnauthorized)

	var trail struct{ Events []map[string]any }
	_ = json.Unmarshal(e.expect(e.do("GET", "/api/v1/cases/victim/audit", adminToken, nil), 200), &trail)
	for _, ev := range trail.Events {
		if ev["type"] == "login.failed" {
			t.Errorf("a refused login was filed under the case it named: %v", ev)
		}
	}
	if infos, err := e.store.List(t.Context(), "audit/nonexistent/"); err != nil || len(infos) != 0 {
		t.Errorf("a refused login wrote %d records under audit/nonexistent/ (%v)", len(infos), err)
	}
	events := e.serverTrail()
	if len(events) != 2 {
		t.Fatalf("the server-wide trail holds %d events, want the 2 refused logins: %v", len(events), events)
	}
	if ev := events[0]; ev["remote"] != "203.0.113.9" || ev["case"] != nil ||
		!strings.Contains(ev["detail"].(string), "invalid credential on GET /api/v1/cases/victim/files") {
		t.Errorf("the first refused login is recorded as %v", ev)
	}
	if ev := events[1]; ev["remote"] != "127.0.0.1" {
		t.Errorf("the second refused login is recorded from %v, want 127.0.0.1", ev["remote"])
	}
}

func TestAGuesserCannotFloodTheAuditTrail(t *testing.T) {
	var e *env
	e = newEnv(t, withLimiter(&e, ""))
	for range 200 {
		e.do("GET", "/api/v1/cases/c1/files", "bad.bad.bad", nil)
	}
	if n := len(e.serverTrail()); n != 11 {
		t.Fatalf("200 bad tokens in a minute made %d records, want 11 (10 in the budget, 1 over it)", n)
	}
	e.clock.Advance(time.Minute)
	e.do("GET", "/api/v1/cases/c1/files", "bad.bad.bad", nil)
	events := e.serverTrail()
	if n := len(events); n != 12 {
		t.Fatalf("%d records, want 12", n)
	}
	if d := events[11]["detail"].(string); !strings.Contains(d, "189 more failures") {
		t.Errorf("the record a minute later says %q, want the 189 failures not recorded", d)
	}
}

func TestATokenWithWhitespaceInsideIsRefused(t *testing.T) {
	var e *env
	e = newEnv(t, withLimiter(&e, ""))
	cred := e.openCase("ws")
	e.files("ws", cred.Token)
	for name, token := range map[string]string{
		"a space inside":                      cred.Token[:30] + " " + cred.Token[30:],
		"a tab inside":                        cred.Token[:30] + "\t" + cred.Token[30:],
		"two spaces before it":                " " + cred.Token,
		"the admin token with a space inside": adminToken[:4] + " " + adminToken[4:],
	} {
		t.Run(name, func(t *testing.T) {
			e.expect(e.do("GET", "/api/v1/cases/ws/files", token, nil), http.StatusUnauthorized)
		})
	}
}
