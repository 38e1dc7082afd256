package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testserver"
)

// A signing key rotated with `casedrop keys rotate` on the bucket two
// running instances share: a credential it signs is taken by both, though
// both loaded their keys before the rotation, and one signed before still
// is. (That running instances sign with the new key within a minute is
// cmd/casedrop's test of refreshKeys: waiting for it here would cost that
// minute.)
func TestAKeyRotatedOnTheBucketIsTakenByEveryRunningInstance(t *testing.T) {
	minio := miniotest.Shared(t)
	bucket := minio.NewBucket(t)
	opts := func(name string) testserver.Options {
		return testserver.Options{S3: minio, Bucket: bucket, Args: []string{"--instance", name}}
	}
	a := testserver.Start(t, opts("a"))
	b := testserver.Start(t, opts("b"))
	a.OpenCase(t, "keys")
	before := a.Credential(t, "keys", "customer")

	onBucket := func(args ...string) []byte {
		t.Helper()
		cmd := a.CLI(t.Context(), append(args, "--s3-endpoint", minio.Endpoint, "--s3-bucket", bucket,
			"--s3-access-key", minio.AccessKey, "--s3-insecure", "--json")...)
		cmd.Env = append(cmd.Env, "CASEDROP_S3_SECRET_KEY="+minio.SecretKey)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("casedrop %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	var rotated struct{ KID string }
	if err := json.Unmarshal(onBucket("keys", "rotate"), &rotated); err != nil || rotated.KID == "" || rotated.KID == testserver.TokenKID(t, before.Token) {
		t.Fatalf("keys rotate: %+v %v; want a new kid", rotated, err)
	}
	var after testserver.Credential
	if err := json.Unmarshal(onBucket("credentials", "issue", "keys"), &after); err != nil {
		t.Fatal(err)
	}
	if got := testserver.TokenKID(t, after.Token); got != rotated.KID {
		t.Fatalf("the credential issued after the rotation has kid %s, want %s", got, rotated.KID)
	}
	for _, srv := range []*testserver.Server{a, b} {
		for name, token := range map[string]string{"signed before the rotation": before.Token, "signed with the rotated key": after.Token} {
			if status := whoami(t, srv, token); status != http.StatusOK {
				t.Errorf("instance %s answers %d to a credential %s, want 200", srv.URL, status, name)
			}
		}
	}
}

// whoami is srv's status for GET /api/v1/whoami with token.
func whoami(t *testing.T, srv *testserver.Server, token string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/api/v1/whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
