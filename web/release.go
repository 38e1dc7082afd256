package web

import (
	"net/http"
)

// ReleaseRequest is the body of POST .../files/{name}/release.
type ReleaseRequest struct {
	// Reason says why the file may be served after all (required): it
	// goes into the audit trail and the file.released event.
	Reason string `json:"reason"`
}

// releaseFile serves a quarantined file after all, on the admin's word
// (the admin token only: the route is admin's).
func (s *server) releaseFile(w http.ResponseWriter, r *http.Request) error {
	var req ReleaseRequest
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	caseID := r.PathValue("case")
	f, err := s.Catalog.ReleaseFile(r.Context(), caseID, r.PathValue("name"), req.Reason, actor(r, "api"))
	if err := s.done(r, err); err != nil {
		return err
	}
	s.log.WarnContext(r.Context(), "file released from quarantine", "case", caseID, "file", f.Name, "sha256", f.SHA256,
		"finding", f.Finding, "reason", f.ReleaseReason)
	writeJSON(w, http.StatusOK, fileView(f, f.Size))
	return nil
}
