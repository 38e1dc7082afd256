package testserver

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// A small tus 1.0 client: just enough to drive uploads byte-exactly from
// Go tests (tus-js-client is the real client, run from Node).

const tusVersion = "1.0.0"

// Create starts a tus upload of size bytes named filename, declaring
// sha256hex in the metadata unless it is empty, and returns its absolute URL.
func (s *Server) Create(t testing.TB, token, filename string, size int64, sha256hex string) (uploadURL string) {
	t.Helper()
	meta := "filename " + base64.StdEncoding.EncodeToString([]byte(filename))
	if sha256hex != "" {
		meta += ",sha256 " + base64.StdEncoding.EncodeToString([]byte(sha256hex))
	}
	req := s.request(t, http.MethodPost, "/files/", token, nil)
	req.Header.Set("Tus-Resumable", tusVersion)
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	req.Header.Set("Upload-Metadata", meta)
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("tus: create %s: %v", filename, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("tus: create %s: %s: %s", filename, resp.Status, readSome(resp.Body))
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("tus: create %s: no usable Location: %v", filename, err)
	}
	return loc.String()
}

// Patch sends contentLength bytes read from body, to be stored at offset.
// The body is streamed, never held whole. It returns the offset the server
// answers with, the status (0 if no answer came) and an error for anything
// but 204 No Content.
func (s *Server) Patch(ctx context.Context, token, uploadURL string, offset int64, body io.Reader, contentLength int64) (newOffset int64, status int, err error) {
	return s.PatchWith(ctx, s.Client, token, uploadURL, offset, body, contentLength)
}

// NewClient returns a client like Client with connections of its own, as
// another browser would have.
func (s *Server) NewClient() *http.Client {
	return &http.Client{Transport: s.Client.Transport.(*http.Transport).Clone()}
}

// PatchWith is Patch sent with client.
func (s *Server) PatchWith(ctx context.Context, client *http.Client, token, uploadURL string, offset int64, body io.Reader, contentLength int64) (newOffset int64, status int, err error) {
	if contentLength == 0 {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, uploadURL, body)
	if err != nil {
		return 0, 0, err
	}
	// An arbitrary reader has no length the transport can see.
	req.ContentLength = contentLength
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Tus-Resumable", tusVersion)
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("tus: PATCH at %d: %w", offset, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return 0, resp.StatusCode, fmt.Errorf("tus: PATCH at %d: %s: %s", offset, resp.Status, readSome(resp.Body))
	}
	newOffset, err = strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		return 0, resp.StatusCode, fmt.Errorf("tus: PATCH at %d: bad Upload-Offset: %w", offset, err)
	}
	return newOffset, resp.StatusCode, nil
}

// Head returns the upload's stored offset.
func (s *Server) Head(t testing.TB, token, uploadURL string) int64 {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodHead, uploadURL, nil)
	if err != nil {
		t.Fatalf("tus: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Tus-Resumable", tusVersion)
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("tus: HEAD %s: %v", uploadURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tus: HEAD %s: %s", uploadURL, resp.Status)
	}
	offset, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		t.Fatalf("tus: HEAD %s: bad Upload-Offset %q", uploadURL, resp.Header.Get("Upload-Offset"))
	}
	return offset
}

func readSome(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4<<10))
	return strings.TrimSpace(string(b))
}
