package metrics_test

import (
	"context"
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
		if _, ok := metrics.Store(disk, nil).(storage.Digester); ok {
			t.Error("the wrapper of diskstore claims storage.Digester")
		}
	})
	t.Run("a Digester is wrapped as one, and its calls reach it", func(t *testing.T) {
		inner := &tagging{Store: disk, tags: map[string]string{}}
		d, ok := metrics.Store(inner, nil).(storage.Digester)
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
