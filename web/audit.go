package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/casedrop/casedrop/cases"
)

// actor describes the caller of r for the audit trail.
func actor(r *http.Request, door string) cases.Actor {
	remote := clientAddr(r).String()
	c := callerFrom(r.Context())
	switch {
	case c.Admin:
		return cases.AdminActor(door, remote)
	case c.Claims.CredentialID != "":
		return cases.ActorOf(c.Claims, door, remote)
	}
	return cases.Actor{Door: door, Remote: remote}
}

// audit records ev as done by the caller of r through the API; the
// detail of one by a download link starts with "link". A failure to
// record is logged; it does not fail the request.
func (s *server) audit(r *http.Request, ev cases.Event) {
	ev.Actor = actor(r, "api")
	if callerFrom(r.Context()).Link {
		ev.Detail = strings.TrimSuffix("link, "+ev.Detail, ", ")
	}
	if err := s.Catalog.Audit(r.Context(), ev); err != nil {
		s.log.ErrorContext(r.Context(), "audit record lost", "type", ev.Type, "case", ev.Case, "err", err)
	}
}

// done lets an operation through whose only failure was its audit record
// (cases.ErrNotAudited): that is logged, and the client told what was done.
func (s *server) done(r *http.Request, err error) error {
	if errors.Is(err, cases.ErrNotAudited) {
		s.log.ErrorContext(r.Context(), "audit record lost", "err", err)
		return nil
	}
	return err
}

// listingGate coalesces listing events: the pages poll a case's file list
// every few seconds while an upload runs, and one record a minute per
// caller and address says all the trail needs to say.
type listingGate struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// first reports whether key's listing at now is the first in a minute.
func (g *listingGate) first(key string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = map[string]time.Time{}
	}
	if t, ok := g.last[key]; ok && now.Sub(t) < time.Minute {
		return false
	}
	if len(g.last) > 10000 { // forget the old ones; memory stays bounded
		for k, t := range g.last {
			if now.Sub(t) >= time.Minute {
				delete(g.last, k)
			}
		}
	}
	g.last[key] = now
	return true
}

// auditListing records a listing of the case, once a minute per caller.
func (s *server) auditListing(r *http.Request, caseID string, n int) {
	a := actor(r, "api")
	if s.listings.first(caseID+"|"+string(a.Role)+"|"+a.CredentialID+"|"+a.Remote, s.Now()) {
		s.audit(r, cases.Event{Type: cases.EventFilesListed, Case: caseID, Size: int64(n)})
	}
}

// auditTrail answers "who did what with this case, from where, when":
// GET /api/v1/cases/{case}/audit?since=&until=&type=&credential=&file=&limit=
func (s *server) auditTrail(w http.ResponseWriter, r *http.Request) error {
	caseID := r.PathValue("case")
	if err := cases.ValidCaseID(caseID); err != nil {
		return err
	}
	return s.writeTrail(w, r, caseID)
}

// serverTrail answers with the server-wide trail (refused logins), with
// the same filters: GET /api/v1/audit?since=&until=&type=&limit=
func (s *server) serverTrail(w http.ResponseWriter, r *http.Request) error {
	return s.writeTrail(w, r, "")
}

// writeTrail answers with the events of caseID's trail ("": the
// server-wide one) that the query's filters select.
func (s *server) writeTrail(w http.ResponseWriter, r *http.Request, caseID string) error {
	q := r.URL.Query()
	f := cases.AuditFilter{CredentialID: q.Get("credential"), File: q.Get("file")}
	for _, p := range []struct {
		name string
		into *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return newError(http.StatusBadRequest, "invalid_time", p.name+" must be an RFC 3339 time")
			}
			*p.into = t
		}
	}
	if v := q.Get("type"); v != "" {
		f.Types = strings.Split(v, ",")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return newError(http.StatusBadRequest, "invalid_limit", "limit must be a whole number")
		}
		f.Limit = n
	}
	events, err := s.Catalog.AuditTrail(r.Context(), caseID, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"case": caseID, "events": events})
	return nil
}
