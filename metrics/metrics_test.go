package metrics_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/metrics"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
)

// tagging is a store with the optional Digester capability.
type tagging struct {
	storage.Store
	tags map[string]string
}

func (s *tagging) SetDigest(_ context.Context, key, sha256hex string) error {
	s.tags[key] = sha256hex
	return nil
}

func (s *tagging) Digest(_ context.Context, key string) (string, error) { return s.tags[key], nil }

func TestTheWrapperHasTheOptionalCapabilitiesOfTheStoreItWrapsAndNoOthers(t *testing.T) {
	disk, err := diskstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a store without Digester is wrapped without it", func(t *testing.T) {
		if _, ok := metrics.New().Store(disk, nil).(storage.Digester); ok {
			t.Error("the wrapper of diskstore claims storage.Digester")
		}
	})
	t.Run("a Digester is wrapped as one, and its calls reach it", func(t *testing.T) {
		inner := &tagging{Store: disk, tags: map[string]string{}}
		d, ok := metrics.New().Store(inner, nil).(storage.Digester)
		if !ok {
			t.Fatal("the wrapper of a Digester is not one")
		}
		if err := d.SetDigest(t.Context(), "k", "abc"); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Digest(t.Context(), "k"); err != nil || got != "abc" || inner.tags["k"] != "abc" {
			t.Errorf("Digest = %q, %v; stored %q; want abc", got, err, inner.tags["k"])
		}
	})
}

// Two registries count apart: two servers in one test process do not see
// each other's numbers.
func TestTwoRegistriesCountApart(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.Received("tus", 5)
	a.FailedLogin("sftp")
	scrape := func(r *metrics.Registry) string {
		rec := httptest.NewRecorder()
		r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	if got := scrape(a); !strings.Contains(got, `casedrop_upload_bytes_received_total{door="tus"} 5`) || !strings.Contains(got, `casedrop_failed_logins_total{door="sftp"} 1`) {
		t.Errorf("the registry counted into lacks its counts:\n%s", got)
	}
	if got := scrape(b); !strings.Contains(got, `casedrop_upload_bytes_received_total{door="tus"} 0`) || !strings.Contains(got, `casedrop_failed_logins_total{door="sftp"} 0`) {
		t.Errorf("another registry shows the first one's counts:\n%s", got)
	}
}
