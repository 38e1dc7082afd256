package web_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestTheAuditTrailsLimitAnswersTheNewestEvents(t *testing.T) {
	e := newEnv(t)
	e.openCase("lim") // case.opened, credential.issued
	for range 3 {
		e.clock.Advance(time.Second)
		e.credential("lim", "staff")
	}
	for range 4 {
		e.clock.Advance(time.Second)
		e.expect(e.do("GET", "/api/v1/cases/lim/files", "not a token", nil), http.StatusUnauthorized) // the server-wide trail
	}
	trail := func(path string) []map[string]any {
		t.Helper()
		var body struct{ Events []map[string]any }
		if err := json.Unmarshal(e.expect(e.do("GET", path, adminToken, nil), http.StatusOK), &body); err != nil {
			t.Fatal(err)
		}
		return body.Events
	}
	for _, path := range []string{"/api/v1/cases/lim/audit", "/api/v1/audit"} {
		t.Run(path+" answers the last two of all with limit=2", func(t *testing.T) {
			all := trail(path)
			if len(all) < 3 {
				t.Fatalf("%d events; the test needs more than the limit", len(all))
			}
			if got := trail(path + "?limit=2"); !reflect.DeepEqual(got, all[len(all)-2:]) {
				t.Fatalf("limit=2 answered %d events, want the newest 2 of %d: %v", len(got), len(all), got)
			}
		})
	}
	t.Run("a limit that is not a whole number is refused", func(t *testing.T) {
		for _, bad := range []string{"-1", "two"} {
			e.expect(e.do("GET", "/api/v1/cases/lim/audit?limit="+bad, adminToken, nil), http.StatusBadRequest)
		}
	})
}
