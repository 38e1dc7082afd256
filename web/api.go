package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
)

func (s *server) openCase(w http.ResponseWriter, r *http.Request) error {
	c, created, err := s.Catalog.OpenCase(r.Context(), r.PathValue("case"), actor(r, "api"))
	if err := s.done(r, err); err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.log.InfoContext(r.Context(), "case opened", "case", c.ID)
	}
	v, err := s.Catalog.Summarize(r.Context(), c)
	if err != nil {
		return err
	}
	writeJSON(w, status, v)
	return nil
}

func (s *server) showCase(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Catalog.Get(r.Context(), r.PathValue("case"))
	if err != nil {
		return err
	}
	v, err := s.Catalog.Summarize(r.Context(), c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *server) closeCase(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Catalog.CloseCase(r.Context(), r.PathValue("case"), actor(r, "api"))
	if err := s.done(r, err); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "case closed", "case", c.ID)
	return s.showCase(w, r)
}

func (s *server) reopenCase(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Catalog.ReopenCase(r.Context(), r.PathValue("case"), actor(r, "api"))
	if err := s.done(r, err); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "case reopened", "case", c.ID)
	return s.showCase(w, r)
}

type credentialRequest struct {
	Role string `json:"role"`
	// TTLHours shortens the credential's life below the 120 hour maximum.
	TTLHours int `json:"ttl_hours"`
	// SSHPublicKey, one authorized_keys line, logs in on SFTP as the
	// credential for as long as it lives.
	SSHPublicKey string `json:"ssh_public_key"`
}

// Credential is the JSON of a credential just issued: the only time its
// token and its password are shown.
type Credential struct {
	ID       string `json:"id"`
	Case     string `json:"case"`
	Role     string `json:"role"`
	Username string `json:"username"`
	// Password is the short SFTP password; Token the JWT, which SFTP also
	// takes as the password.
	Password  string    `json:"password"`
	Token     string    `json:"token"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// SSHKeyFingerprint is the SHA256 fingerprint of the SSH public key
	// attached, if one was.
	SSHKeyFingerprint string `json:"ssh_key_fingerprint,omitempty"`
	UploadURL         string `json:"upload_url"`
	TusURL            string `json:"tus_url"`
	SFTPHost          string `json:"sftp_host"`
	SFTPPort          int    `json:"sftp_port"`
}

func (s *server) issueCredential(w http.ResponseWriter, r *http.Request) error {
	var req credentialRequest
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return newError(http.StatusBadRequest, "invalid_role", `role must be "customer" or "staff"`)
	}
	if req.TTLHours < 0 || time.Duration(req.TTLHours)*time.Hour > auth.MaxTTL {
		return newError(http.StatusBadRequest, "invalid_ttl", "ttl_hours must be between 1 and 120")
	}
	var key auth.SSHKey
	if req.SSHPublicKey != "" {
		if key, err = auth.ParseSSHKey(req.SSHPublicKey); err != nil {
			return newError(http.StatusBadRequest, "invalid_ssh_key", "ssh_public_key: "+err.Error())
		}
	}
	caseID := r.PathValue("case")
	cred, err := s.Catalog.IssueCredential(r.Context(), s.Issuer, cases.CredentialRequest{
		Case: caseID, Role: role, TTL: time.Duration(req.TTLHours) * time.Hour, SSHKey: key,
	}, actor(r, "api"))
	if err := s.done(r, err); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "credential issued", "case", caseID, "credential", cred.ID, "role", role, "expires_at", cred.ExpiresAt,
		"ssh_key", key.Fingerprint)
	writeJSON(w, http.StatusCreated, s.credentialView(cred))
	return nil
}

// credentialView is the JSON of a credential just issued.
func (s *server) credentialView(cred cases.IssuedCredential) Credential {
	page := "/cases/"
	if cred.Role == auth.RoleStaff {
		page = "/staff/cases/"
	}
	return Credential{
		ID: cred.ID, Case: cred.Case, Role: string(cred.Role), Username: cred.Username,
		Password: cred.Password, Token: cred.Token, IssuedAt: cred.IssuedAt, ExpiresAt: cred.ExpiresAt,
		SSHKeyFingerprint: cred.SSHKeyFingerprint,
		// The secrets ride in the fragment, which browsers never send: the
		// page uses the token and shows the password for SFTP clients.
		UploadURL: s.PublicURL + page + url.PathEscape(cred.Case) + "#token=" + cred.Token + "&password=" + cred.Password,
		TusURL:    s.PublicURL + "/files/",
		SFTPHost:  s.SFTPHost, SFTPPort: s.SFTPPort,
	}
}

func decodeOptionalJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return newError(http.StatusBadRequest, "invalid_json", "request body: "+err.Error())
	}
	return nil
}

func (s *server) listCredentials(w http.ResponseWriter, r *http.Request) error {
	caseID := r.PathValue("case")
	if _, err := s.Catalog.Get(r.Context(), caseID); err != nil {
		return err
	}
	creds, err := s.Catalog.Credentials(r.Context(), caseID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": creds})
	return nil
}

func (s *server) revokeCredential(w http.ResponseWriter, r *http.Request) error {
	cred, err := s.Catalog.RevokeCredential(r.Context(), r.PathValue("id"), actor(r, "api"))
	if err := s.done(r, err); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "credential revoked", "case", cred.Case, "credential", cred.ID)
	writeJSON(w, http.StatusOK, cred)
	return nil
}

// File is one file of a case as the API lists it; the CLI and the tests
// read the list with it too.
type File struct {
	Name       string     `json:"name"`
	Size       int64      `json:"size"`
	SHA256     string     `json:"sha256,omitempty"`
	State      string     `json:"state"`
	Via        string     `json:"via"`
	UploadedBy string     `json:"uploaded_by"`
	StartedAt  time.Time  `json:"started_at"`
	UploadedAt *time.Time `json:"uploaded_at,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	// Finding is what the malware scanner found in a quarantined file.
	Finding string `json:"finding,omitempty"`
	// ScannedAt is when the scanner gave its verdict.
	ScannedAt *time.Time `json:"scanned_at,omitempty"`
	// ReleasedAt and ReleaseReason: an admin released the file from
	// quarantine; Finding still says what the scanner found.
	ReleasedAt    *time.Time `json:"released_at,omitempty"`
	ReleaseReason string     `json:"release_reason,omitempty"`
	// ModifiedAt is the modification time the uploader's client set
	// (SFTP), else when the file was complete.
	ModifiedAt time.Time `json:"modified_at"`
	// Received is how many bytes are stored: the progress of an upload.
	Received int64 `json:"received"`
}

// FileList is the answer to GET /api/v1/cases/{case}/files.
type FileList struct {
	Case  string `json:"case"`
	Files []File `json:"files"`
}

func (s *server) listFiles(w http.ResponseWriter, r *http.Request) error {
	caseID := r.PathValue("case")
	if _, err := s.Catalog.Get(r.Context(), caseID); err != nil {
		return err
	}
	files, err := s.Catalog.Files(r.Context(), caseID)
	if err != nil {
		return err
	}
	views := make([]File, len(files))
	for i, f := range files {
		received, err := s.Ingest.StoredSize(r.Context(), caseID, f)
		if err != nil {
			return err
		}
		views[i] = fileView(f, received)
	}
	s.auditListing(r, caseID, len(views))
	writeJSON(w, http.StatusOK, FileList{Case: caseID, Files: views})
	return nil
}

// fileView is the JSON of f, of which received bytes are stored.
func fileView(f cases.File, received int64) File {
	return File{
		Name: f.Name, Size: f.Size, SHA256: f.SHA256, State: string(f.State), Via: f.Via,
		UploadedBy: f.UploadedBy, StartedAt: f.StartedAt, UploadedAt: f.UploadedAt, Reason: f.Reason,
		Finding: f.Finding, ScannedAt: f.ScannedAt, ReleasedAt: f.ReleasedAt, ReleaseReason: f.ReleaseReason,
		ModifiedAt: f.Modified(), Received: received,
	}
}
