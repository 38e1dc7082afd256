package storedkey_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/casedrop/casedrop/internal/storedkey"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
)

func TestInstancesLoadingAtOnceAllGetTheOneKeyStored(t *testing.T) {
	store, err := diskstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := storedkey.Read(ctx, store, "system/k.pem"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("reading a key never made: %v, want storage.ErrNotFound", err)
	}
	const instances = 8
	got := make([][]byte, instances)
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() {
			key, err := storedkey.Load(ctx, store, "system/k.pem", func() ([]byte, error) {
				return fmt.Appendf(nil, "key of instance %d", i), nil
			})
			if err != nil {
				t.Error(err)
			}
			got[i] = key
		})
	}
	wg.Wait()
	for i := range got {
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("instance %d got %q, instance 0 %q", i, got[i], got[0])
		}
	}
	again, err := storedkey.Load(ctx, store, "system/k.pem", func() ([]byte, error) { return []byte("a new key"), nil })
	if err != nil || !bytes.Equal(again, got[0]) {
		t.Fatalf("a later load: %q, %v; want the stored %q", again, err, got[0])
	}
}
