package web

import (
	"net/http"
	"time"

	"github.com/casedrop/casedrop/cases"
)

// listCases answers GET /api/v1/cases.
func (s *server) listCases(w http.ResponseWriter, r *http.Request) error {
	all, err := s.Catalog.Cases(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"cases": all})
	return nil
}

// purge answers POST /api/v1/purge?dry_run=true&as_of=RFC3339: it purges
// (or, dry, lists) the closed cases due by as_of (default now). A future
// as_of purges early, on the operator's explicit word; it is logged.
func (s *server) purge(w http.ResponseWriter, r *http.Request) error {
	if s.Purger == nil {
		return newError(http.StatusServiceUnavailable, "purge_unavailable", "this server has no purger")
	}
	now := s.Now()
	asOf := now
	if v := r.URL.Query().Get("as_of"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return newError(http.StatusBadRequest, "invalid_time", "as_of must be an RFC 3339 time")
		}
		asOf = t
	}
	dry := r.URL.Query().Get("dry_run") == "true"
	if asOf.After(now) && !dry {
		// The operator asks, explicitly, to purge what will be due then.
		s.log.WarnContext(r.Context(), "purging as of a future time: cases are purged before their 30 days are over", "as_of", asOf)
	}
	reports, err := s.Purger.PurgeDue(r.Context(), asOf, dry)
	if reports == nil {
		reports = []cases.PurgeReport{}
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "purge failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"purged": reports, "error": err.Error(), "code": "purge_incomplete"})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"purged": reports, "dry_run": dry, "as_of": asOf})
	return nil
}
