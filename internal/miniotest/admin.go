package miniotest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// Backend is how a MinIO server keeps its data, as its admin API tells
// (what `mc admin info` shows).
type Backend struct {
	// Type is "Erasure" for MinIO's erasure-coded layout (a single drive
	// is a one-drive erasure set).
	Type          string `json:"backendType"`
	OnlineDrives  int    `json:"onlineDisks"`
	OfflineDrives int    `json:"offlineDisks"`
	// StandardParity is how many of an object's shards are parity in the
	// standard storage class: how many drives may fail without data loss.
	StandardParity int `json:"standardSCParity"`
}

// Backend asks the server's admin API how it keeps its data. For a moment
// after it is ready MinIO answers without naming its backend: Backend asks
// again until it does, or ctx ends.
func (s *Server) Backend(ctx context.Context) (Backend, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := s.adminInfoBackend(ctx)
		if err != nil || b.Type != "" {
			return b, err
		}
		select {
		case <-ctx.Done():
			return b, fmt.Errorf("miniotest: admin info names no backend: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func (s *Server) adminInfoBackend(ctx context.Context) (Backend, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Endpoint+"/minio/admin/v3/info", nil)
	if err != nil {
		return Backend{}, err
	}
	empty := sha256.Sum256(nil)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(empty[:]))
	req = signer.SignV4(*req, s.AccessKey, s.SecretKey, "", "us-east-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Backend{}, fmt.Errorf("miniotest: admin info: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Backend{}, fmt.Errorf("miniotest: admin info: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Backend{}, fmt.Errorf("miniotest: admin info: %s: %s", resp.Status, body)
	}
	var info struct {
		Backend Backend `json:"backend"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return Backend{}, fmt.Errorf("miniotest: admin info: %w", err)
	}
	return info.Backend, nil
}
