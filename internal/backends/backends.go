// Package backends runs a test against both object stores: local disk and
// a real MinIO (internal/miniotest; call miniotest.Main in TestMain).
package backends

import (
	"context"
	"testing"

	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/storage/s3store"
)

// Each runs fn as subtests "on local disk" and "on MinIO". newStore
// returns a new Store value over the same data at every call, as another
// process (a restart, a second instance) would open it.
func Each(t *testing.T, fn func(t *testing.T, newStore func() storage.Store)) {
	t.Run("on local disk", func(t *testing.T) {
		root := t.TempDir()
		fn(t, func() storage.Store {
			s, err := diskstore.New(root)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("on MinIO", func(t *testing.T) {
		srv := miniotest.Shared(t)
		bucket := srv.NewBucket(t)
		fn(t, func() storage.Store {
			s, err := s3store.New(context.Background(), s3store.Config{
				Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Insecure: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}
