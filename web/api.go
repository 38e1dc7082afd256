package web

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
)

type caseView struct {
	cases.Case
	FileCount int   `json:"file_count"`
	Bytes     int64 `json:"bytes"`
}

func (s *server) caseView(r *http.Request, c cases.Case) (caseView, error) {
	files, err := s.Catalog.Files(r.Context(), c.ID)
	if err != nil {
		return caseView{}, err
	}
	v := caseView{Case: c}
	for _, f := range files {
		if f.State == cases.FileComplete {
			v.FileCount++
			v.Bytes += f.Size
		}
	}
	return v, nil
}

func (s *server) openCase(w http.ResponseWriter, r *http.Request) error {
	c, created, err := s.Catalog.Open(r.Context(), r.PathValue("case"))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.log.InfoContext(r.Context(), "case opened", "case", c.ID)
	}
	v, err := s.caseView(r, c)
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
	v, err := s.caseView(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *server) closeCase(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Catalog.Close(r.Context(), r.PathValue("case"))
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "case closed", "case", c.ID)
	return s.showCase(w, r)
}

func (s *server) reopenCase(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Catalog.Reopen(r.Context(), r.PathValue("case"))
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "case reopened", "case", c.ID)
	return s.showCase(w, r)
}

type credentialRequest struct {
	Role string `json:"role"`
	// TTLHours shortens the credential's life below the 120 hour maximum.
	TTLHours int `json:"ttl_hours"`
}

type credentialResponse struct {
	ID        string    `json:"id"`
	Case      string    `json:"case"`
	Role      string    `json:"role"`
	Username  string    `json:"username"`
	Password  string    `json:"password"`
	Token     string    `json:"token"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UploadURL string    `json:"upload_url"`
	TusURL    string    `json:"tus_url"`
	SFTPHost  string    `json:"sftp_host"`
	SFTPPort  int       `json:"sftp_port"`
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
	caseID := r.PathValue("case")
	c, err := s.Catalog.Get(r.Context(), caseID)
	if err != nil {
		return err
	}
	// Staff may still download from a closed case until its purge.
	if c.State != cases.StateOpen && role != auth.RoleStaff {
		return cases.ErrCaseClosed
	}
	id := newCredentialID()
	token, claims, err := s.Issuer.Issue(auth.Claims{
		Case: caseID, CredentialID: id, Username: caseID + "-" + id[:6], Role: role,
	}, time.Duration(req.TTLHours)*time.Hour)
	if err != nil {
		return err
	}
	if err := s.Catalog.AddCredential(r.Context(), cases.Credential{
		ID: id, Case: caseID, Username: claims.Username, Role: string(role),
		IssuedAt: claims.IssuedAt, ExpiresAt: claims.ExpiresAt,
	}); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "credential issued", "case", caseID, "credential", id, "role", role, "expires_at", claims.ExpiresAt)
	page := "/cases/"
	if role == auth.RoleStaff {
		page = "/staff/cases/"
	}
	writeJSON(w, http.StatusCreated, credentialResponse{
		ID: id, Case: caseID, Role: string(role), Username: claims.Username,
		Password: token, Token: token, IssuedAt: claims.IssuedAt, ExpiresAt: claims.ExpiresAt,
		// The token rides in the fragment, which browsers never send.
		UploadURL: s.PublicURL + page + url.PathEscape(caseID) + "#token=" + token,
		TusURL:    s.PublicURL + "/files/",
		SFTPHost:  s.SFTPHost, SFTPPort: s.SFTPPort,
	})
	return nil
}

func newCredentialID() string {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
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
	cred, err := s.Catalog.Revoke(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "credential revoked", "case", cred.Case, "credential", cred.ID)
	writeJSON(w, http.StatusOK, cred)
	return nil
}

type fileView struct {
	Name       string     `json:"name"`
	Size       int64      `json:"size"`
	SHA256     string     `json:"sha256,omitempty"`
	State      string     `json:"state"`
	Via        string     `json:"via"`
	UploadedBy string     `json:"uploaded_by"`
	StartedAt  time.Time  `json:"started_at"`
	UploadedAt *time.Time `json:"uploaded_at,omitempty"`
	Reason     string     `json:"reason,omitempty"`
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
	views := make([]fileView, len(files))
	for i, f := range files {
		views[i] = fileView{
			Name: f.Name, Size: f.Size, SHA256: f.SHA256, State: string(f.State), Via: f.Via,
			UploadedBy: f.UploadedBy, StartedAt: f.StartedAt, UploadedAt: f.UploadedAt, Reason: f.Reason,
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"case": caseID, "files": views})
	return nil
}

// download serves one complete file: ranges, If-Range and HEAD through
// http.ServeContent, the digest recorded at upload in Repr-Digest.
func (s *server) download(w http.ResponseWriter, r *http.Request) error {
	caseID, name := r.PathValue("case"), r.PathValue("name")
	f, err := s.Catalog.File(r.Context(), caseID, name)
	if err != nil {
		return err
	}
	if f.State != cases.FileComplete {
		return newError(http.StatusConflict, "file_"+string(f.State), fmt.Sprintf("%s is %s, not downloadable", f.Name, f.State))
	}
	obj, err := s.Ingest.Open(r.Context(), caseID, f)
	if err != nil {
		return err
	}
	defer obj.Close()
	sum, err := hex.DecodeString(f.SHA256)
	if err != nil {
		return fmt.Errorf("file %s: bad recorded digest: %w", f.Name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", contentDisposition(f.Name))
	h.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
	h.Set("ETag", `"`+f.SHA256+`"`)
	h.Set("Cache-Control", "private, no-cache")
	modTime := f.StartedAt
	if f.UploadedAt != nil {
		modTime = *f.UploadedAt
	}
	s.log.InfoContext(r.Context(), "download", "case", caseID, "file", f.Name, "range", r.Header.Get("Range"), "credential", callerFrom(r.Context()).Claims.CredentialID)
	http.ServeContent(w, r, "", modTime, obj)
	return nil
}

// contentDisposition names the file for saving, RFC 6266 style: an ASCII
// fallback and the exact UTF-8 name in filename*.
func contentDisposition(name string) string {
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" && !strings.Contains(v, "filename*") {
		return v
	}
	fallback := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, name)
	return fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, fallback, url.PathEscape(name))
}
