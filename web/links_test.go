package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// publicOrigin is the origin of newEnv's PublicURL, which the pages'
// requests name.
const publicOrigin = "https://casedrop.example"

type uploadLink struct {
	Code      string    `json:"code"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// link asks for an upload link of caseID with body (nil for none).
func (e *env) link(caseID, body string) uploadLink {
	e.t.Helper()
	var in io.Reader
	if body != "" {
		in = strings.NewReader(body)
	}
	var l uploadLink
	resp := e.do("POST", "/api/v1/cases/"+caseID+"/links", adminToken, in)
	if err := json.Unmarshal(e.expect(resp, http.StatusCreated), &l); err != nil {
		e.t.Fatal(err)
	}
	return l
}

// redeem sends the page's redeem of code for caseID, from the server's
// own origin unless headers say otherwise.
func (e *env) redeem(caseID, code string, headers ...string) *http.Response {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"case": caseID, "code": code})
	if len(headers) == 0 {
		headers = []string{"Origin", publicOrigin}
	}
	return e.do("POST", "/api/v1/links/redeem", "", strings.NewReader(string(body)), append(headers, "Content-Type", "application/json")...)
}

func TestAnUploadLinkOpensTheCasePageOnceWithACredentialOfItsOwn(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("PUT", "/api/v1/cases/c1", adminToken, nil), http.StatusCreated)
	link := e.link("c1", "")
	if want := "https://casedrop.example/cases/c1#link=" + link.Code; link.URL != want || len(link.Code) < 22 {
		t.Fatalf("link %+v: want the url %s and a code of 128 bits or more", link, want)
	}
	if !link.ExpiresAt.Equal(e.clock.Now().Add(10 * time.Minute)) {
		t.Errorf("expires at %v, want ten minutes on", link.ExpiresAt)
	}

	e.clock.Advance(time.Second)
	body := e.expect(e.redeem("c1", link.Code), http.StatusOK)
	var cred credential
	if err := json.Unmarshal(body, &cred); err != nil {
		t.Fatal(err)
	}
	if cred.Token == "" || cred.Password == "" || cred.Username == "" || !cred.ExpiresAt.Equal(e.clock.Now().Add(120*time.Hour)) {
		t.Fatalf("redeemed for %s", body)
	}
	var me struct{ Case, Role string }
	if err := json.Unmarshal(e.expect(e.do("GET", "/api/v1/whoami", cred.Token, nil), http.StatusOK), &me); err != nil {
		t.Fatal(err)
	}
	if me.Case != "c1" || me.Role != "customer" {
		t.Errorf("the credential is %+v, want a customer's of c1", me)
	}

	again := e.expect(e.redeem("c1", link.Code), http.StatusGone)
	if !strings.Contains(string(again), `"link_used"`) {
		t.Errorf("a second redeem got %s, want link_used", again)
	}

	t.Run("the trail has it issued and redeemed, and neither the code nor a secret is kept anywhere", func(t *testing.T) {
		var trail struct {
			Events []struct{ Type, Detail, CredentialID string }
		}
		raw := e.expect(e.do("GET", "/api/v1/cases/c1/audit", adminToken, nil), http.StatusOK)
		if err := json.Unmarshal(raw, &trail); err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, ev := range trail.Events {
			types = append(types, ev.Type)
		}
		if got := strings.Join(types, " "); got != "case.opened link.issued credential.issued link.redeemed" {
			t.Errorf("the case's trail: %s", got)
		}
		server := e.expect(e.do("GET", "/api/v1/audit", adminToken, nil), http.StatusOK)
		for what, text := range map[string]string{"the log": e.logs.String(), "the case's trail": string(raw), "the server's trail": string(server)} {
			for _, secret := range []string{link.Code, cred.Token, cred.Password} {
				if strings.Contains(text, secret) {
					t.Errorf("%s holds a secret %q", what, secret[:6]+"…")
				}
			}
		}
	})
}

func TestOfTwoRedeemsOfOneLinkAtOnceOneGetsTheCredential(t *testing.T) {
	e := newEnv(t)
	e.expect(e.do("PUT", "/api/v1/cases/c1", adminToken, nil), http.StatusCreated)
	link := e.link("c1", "")
	statuses := make([]int, 4)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(map[string]string{"case": "c1", "code": link.Code})
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/links/redeem", strings.NewReader(string(body)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	won := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			won++
		case http.StatusGone:
		default:
			t.Errorf("a redeem answered %d", s)
		}
	}
	if won != 1 {
		t.Errorf("statuses %v: want one 200, the others 410", statuses)
	}
}

func TestAnUploadLinkIsRefusedPlainly(t *testing.T) {
	tests := []struct {
		name    string
		ttl     string
		before  func(e *env)
		code    func(l uploadLink) string
		headers []string
		status  int
		errCode string
	}{
		{name: "after its ten minutes", before: func(e *env) { e.clock.Advance(10 * time.Minute) },
			status: http.StatusGone, errCode: "link_expired"},
		{name: "after the life it was asked for", ttl: `{"ttl_seconds": 60}`, before: func(e *env) { e.clock.Advance(time.Minute) },
			status: http.StatusGone, errCode: "link_expired"},
		{name: "with a code that is no link's", code: func(l uploadLink) string { return strings.Repeat("a", len(l.Code)) },
			status: http.StatusNotFound, errCode: "link_not_found"},
		{name: "once its case is closed", before: func(e *env) { e.expect(e.do("POST", "/api/v1/cases/c1/close", adminToken, nil), http.StatusOK) },
			status: http.StatusForbidden, errCode: "case_closed"},
		{name: "from a page of another origin", headers: []string{"Origin", "https://portal.example"},
			status: http.StatusForbidden, errCode: "cross_origin"},
		{name: "from a sandboxed frame", headers: []string{"Origin", "null"},
			status: http.StatusForbidden, errCode: "cross_origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.expect(e.do("PUT", "/api/v1/cases/c1", adminToken, nil), http.StatusCreated)
			link := e.link("c1", tt.ttl)
			if tt.before != nil {
				tt.before(e)
			}
			code := link.Code
			if tt.code != nil {
				code = tt.code(link)
			}
			resp := e.redeem("c1", code, tt.headers...)
			body := e.expect(resp, tt.status)
			if !strings.Contains(string(body), `"`+tt.errCode+`"`) {
				t.Errorf("answered %s, want code %s", body, tt.errCode)
			}
			for name := range resp.Header {
				if strings.HasPrefix(name, "Access-Control-") {
					t.Errorf("the refusal carries %s: %s", name, resp.Header.Get(name))
				}
			}
			if strings.Contains(e.logs.String(), code) {
				t.Error("the code is in the log")
			}
		})
	}

	t.Run("a cross-origin attempt leaves the link to the page", func(t *testing.T) {
		e := newEnv(t)
		e.expect(e.do("PUT", "/api/v1/cases/c1", adminToken, nil), http.StatusCreated)
		link := e.link("c1", "")
		e.expect(e.redeem("c1", link.Code, "Origin", "https://portal.example"), http.StatusForbidden)
		e.expect(e.redeem("c1", link.Code, "Origin", publicOrigin+":443"), http.StatusForbidden)
		e.expect(e.redeem("c1", link.Code), http.StatusOK)
	})
}

func TestAnUploadLinkIsIssuedOnlyToTheAdminForAnOpenCaseForAnHourAtMost(t *testing.T) {
	e := newEnv(t)
	cred := e.openCase("c1")
	for _, tc := range []struct {
		name, token, body string
		status            int
	}{
		{"a customer's credential", cred.Token, "", http.StatusForbidden},
		{"no token", "", "", http.StatusUnauthorized},
		{"a life over an hour", adminToken, `{"ttl_seconds": 3601}`, http.StatusBadRequest},
		{"a negative life", adminToken, `{"ttl_seconds": -1}`, http.StatusBadRequest},
		{"a role", adminToken, `{"role": "staff"}`, http.StatusBadRequest},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			e.expect(e.do("POST", "/api/v1/cases/c1/links", tc.token, strings.NewReader(tc.body)), tc.status)
		})
	}
	if l := e.link("c1", `{"ttl_seconds": 3600}`); !l.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
		t.Errorf("a link for an hour expires at %v", l.ExpiresAt)
	}
	e.expect(e.do("POST", "/api/v1/cases/nobody/links", adminToken, nil), http.StatusNotFound)
	e.expect(e.do("POST", "/api/v1/cases/c1/close", adminToken, nil), http.StatusOK)
	e.expect(e.do("POST", "/api/v1/cases/c1/links", adminToken, nil), http.StatusForbidden)
}

func TestUnknownLinkCodesCountAsFailedLoginsAndNeverShutOutAValidLink(t *testing.T) {
	var e *env
	e = newEnv(t, withLimiter(&e, ""))
	e.expect(e.do("PUT", "/api/v1/cases/c1", adminToken, nil), http.StatusCreated)
	link := e.link("c1", "")
	for range 10 {
		e.expect(e.redeem("c1", strings.Repeat("b", len(link.Code))), http.StatusNotFound)
	}
	resp := e.redeem("c1", "guess")
	if body := e.expect(resp, http.StatusTooManyRequests); !strings.Contains(string(body), `"too_many_attempts"`) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("the eleventh guess got %s (Retry-After %q)", body, resp.Header.Get("Retry-After"))
	}
	e.expect(e.do("GET", "/api/v1/cases/c1/files", "bad.bad.bad", nil), http.StatusTooManyRequests)

	e.expect(e.redeem("c1", link.Code), http.StatusOK)

	events := e.serverTrail()
	if len(events) == 0 {
		t.Fatal("no refused redeem is in the server-wide trail")
	}
	if ev := events[0]; ev["type"] != "login.failed" || ev["case"] != nil ||
		!strings.Contains(ev["detail"].(string), "upload link not found on POST /api/v1/links/redeem") {
		t.Errorf("the first refused redeem is recorded as %v", ev)
	}
	if u, _ := url.Parse(link.URL); strings.Contains(e.logs.String(), u.Fragment) {
		t.Error("the code is in the log")
	}
}
