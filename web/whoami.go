package web

import (
	"net/http"
	"time"
)

// whoamiView is what a case credential's holder learns about itself and
// its case: what the pages show (the case's state, the credential's
// expiry, the SFTP account it opens). No secret: the server keeps only a
// hash of the short SFTP password, which the page takes from its link.
type whoamiView struct {
	Case         string     `json:"case"`
	CaseState    string     `json:"case_state"`
	PurgeAt      *time.Time `json:"purge_at"`
	Role         string     `json:"role"`
	Username     string     `json:"username"`
	CredentialID string     `json:"credential_id"`
	ExpiresAt    time.Time  `json:"expires_at"`
	SFTPHost     string     `json:"sftp_host"`
	SFTPPort     int        `json:"sftp_port"`
	TusURL       string     `json:"tus_url"`
}

// whoami answers GET /api/v1/whoami for a case credential (not the admin
// token, which belongs to no case and no account).
func (s *server) whoami(w http.ResponseWriter, r *http.Request) error {
	c, err := s.authenticate(r, "", false)
	if err != nil {
		return err
	}
	cs, err := s.Catalog.Get(r.Context(), c.Claims.Case)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, whoamiView{
		Case:         cs.ID,
		CaseState:    string(cs.State),
		PurgeAt:      cs.PurgeAt,
		Role:         string(c.Claims.Role),
		Username:     c.Claims.Username,
		CredentialID: c.Claims.CredentialID,
		ExpiresAt:    c.Claims.ExpiresAt,
		SFTPHost:     s.SFTPHost,
		SFTPPort:     s.SFTPPort,
		TusURL:       s.PublicURL + "/files/",
	})
	return nil
}
