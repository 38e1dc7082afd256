package auth

import (
	"context"
	"encoding/pem"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/storage"
)

func loadKeys(t testing.TB, store KeyStore, clock *fakeClock) *Keys {
	t.Helper()
	k, err := LoadKeys(context.Background(), store, clock.Now)
	if err != nil {
		t.Fatalf("LoadKeys: %v", err)
	}
	return k
}

func currentKID(t *testing.T, k *Keys) string {
	t.Helper()
	kid, _, err := k.signer()
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

func TestLoadKeys(t *testing.T) {
	t.Run("an empty store gets one PKCS#8 PEM key, named by generation, with its kid and creation time", func(t *testing.T) {
		store, clock := newMemStore(), newFakeClock()
		k := loadKeys(t, store, clock)
		if got, want := store.keys(), []string{"system/keys/00000001.pem"}; !slices.Equal(got, want) {
			t.Fatalf("stored %v, want %v", got, want)
		}
		block, _ := pem.Decode(store.objects["system/keys/00000001.pem"])
		if block == nil || block.Type != "PRIVATE KEY" {
			t.Fatalf("stored key is not a PEM private key: %+v", block)
		}
		if got := block.Headers["Kid"]; got != currentKID(t, k) || len(got) != 16 {
			t.Errorf("Kid header %q, want the 16-hex-char signing kid %q", got, currentKID(t, k))
		}
		if got, want := block.Headers["Created"], clock.Now().UTC().Format(time.RFC3339); got != want {
			t.Errorf("Created header %q, want %q", got, want)
		}
	})

	t.Run("loading twice from the same store gives the same key", func(t *testing.T) {
		store, clock := newMemStore(), newFakeClock()
		first, second := loadKeys(t, store, clock), loadKeys(t, store, clock)
		if a, b := currentKID(t, first), currentKID(t, second); a != b {
			t.Fatalf("kids differ: %s then %s", a, b)
		}
		if len(store.keys()) != 1 {
			t.Fatalf("store holds %v, want one key", store.keys())
		}
	})

	t.Run("instances starting at once on an empty store converge on one key", func(t *testing.T) {
		const instances = 4
		store, clock := newMemStore(), newFakeClock()
		// Every instance lists the empty store before any of them writes.
		store.gateLists(instances)
		kids := make([]string, instances)
		errs := make([]error, instances)
		var wg sync.WaitGroup
		for i := range instances {
			wg.Go(func() {
				k, err := LoadKeys(context.Background(), store, clock.Now)
				if errs[i] = err; err == nil {
					kids[i], _, errs[i] = k.signer()
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("instance %d: %v", i, err)
			}
		}
		if len(store.keys()) != 1 {
			t.Fatalf("store holds %v, want one key", store.keys())
		}
		for i := range kids {
			if kids[i] != kids[0] {
				t.Fatalf("instances sign with different kids: %v", kids)
			}
		}
	})

	t.Run("objects under the prefix that are not keys are left alone", func(t *testing.T) {
		store, clock := newMemStore(), newFakeClock()
		store.put("system/keys/README", []byte("not a key"))
		k := loadKeys(t, store, clock)
		if len(k.PublicKeys()) != 1 {
			t.Fatalf("got %d keys, want 1", len(k.PublicKeys()))
		}
	})

	t.Run("a corrupt key object is an error, not a silently new key", func(t *testing.T) {
		store, clock := newMemStore(), newFakeClock()
		store.put("system/keys/00000001.pem", []byte("-----BEGIN PRIVATE KEY-----\nZm9v\n-----END PRIVATE KEY-----\n"))
		if _, err := LoadKeys(context.Background(), store, clock.Now); err == nil {
			t.Fatal("LoadKeys accepted a corrupt key")
		}
	})
}

func TestRotate(t *testing.T) {
	t.Run("a rotated key signs, and tokens signed before still verify", func(t *testing.T) {
		env := newTestEnv(t)
		before := env.issue(t, Claims{Case: "case-1", CredentialID: "cred-1", Username: "u1"}, 0)
		oldKID := currentKID(t, env.keys)

		env.clock.Advance(time.Hour)
		if err := env.keys.Rotate(context.Background()); err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		newKID := currentKID(t, env.keys)
		if newKID == oldKID {
			t.Fatal("Rotate kept the old signing kid")
		}
		if got := slices.Sorted(maps.Keys(env.keys.PublicKeys())); !slices.Equal(got, slices.Sorted(slices.Values([]string{oldKID, newKID}))) {
			t.Fatalf("PublicKeys has kids %v, want the old and the new", got)
		}
		if _, err := env.verifier.Verify(context.Background(), before); err != nil {
			t.Fatalf("token from before the rotation: %v", err)
		}
		after := env.issue(t, Claims{Case: "case-1", CredentialID: "cred-2", Username: "u2"}, 0)
		if got := kidOf(t, after); got != newKID {
			t.Fatalf("new token has kid %s, want %s", got, newKID)
		}
		if _, err := env.verifier.Verify(context.Background(), after); err != nil {
			t.Fatalf("token from after the rotation: %v", err)
		}
		if reloaded := loadKeys(t, env.store, env.clock); currentKID(t, reloaded) != newKID {
			t.Fatal("a fresh LoadKeys does not sign with the rotated key")
		}
	})

	t.Run("List gives every key oldest first, the newest as the one signing", func(t *testing.T) {
		env := newTestEnv(t)
		first := currentKID(t, env.keys)
		created := env.clock.Now().UTC().Truncate(time.Second)
		env.clock.Advance(time.Hour)
		if err := env.keys.Rotate(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := []KeyInfo{
			{KID: first, Generation: 1, Created: created},
			{KID: currentKID(t, env.keys), Generation: 2, Created: created.Add(time.Hour), Signing: true},
		}
		got := env.keys.List()
		if len(got) != len(want) {
			t.Fatalf("List = %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i].KID != want[i].KID || got[i].Generation != want[i].Generation || !got[i].Created.Equal(want[i].Created) || got[i].Signing != want[i].Signing {
				t.Errorf("List()[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
	})

	t.Run("instances rotating at once converge on one new key", func(t *testing.T) {
		store, clock := newMemStore(), newFakeClock()
		a, b := loadKeys(t, store, clock), loadKeys(t, store, clock)
		store.gateLists(2)
		var wg sync.WaitGroup
		var errA, errB error
		wg.Go(func() { errA = a.Rotate(context.Background()) })
		wg.Go(func() { errB = b.Rotate(context.Background()) })
		wg.Wait()
		if errA != nil || errB != nil {
			t.Fatalf("Rotate: %v, %v", errA, errB)
		}
		if got := store.keys(); len(got) != 2 || !strings.HasSuffix(got[1], "00000002.pem") {
			t.Fatalf("store holds %v, want generations 1 and 2", got)
		}
		if currentKID(t, a) != currentKID(t, b) {
			t.Fatal("instances sign with different kids after rotating at once")
		}
	})
}

func TestKeysRotatedByAnotherInstance(t *testing.T) {
	ctx := context.Background()
	// two instances on one store, each with its own Keys.
	instances := func(t *testing.T) (store *memStore, clock *fakeClock, a, b *testEnv) {
		store, clock = newMemStore(), newFakeClock()
		env := func() *testEnv {
			k := loadKeys(t, store, clock)
			return &testEnv{store: store, clock: clock, keys: k,
				issuer:   &Issuer{Keys: k, Issuer: testIssuer, Now: clock.Now},
				verifier: &Verifier{Keys: k, Issuer: testIssuer, Now: clock.Now}}
		}
		return store, clock, env(), env()
	}
	claims := Claims{Case: "case-1", CredentialID: "cred-1", Username: "u1"}

	t.Run("a token signed with a key rotated on one instance verifies on the other", func(t *testing.T) {
		_, _, a, b := instances(t)
		if err := a.keys.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		token := a.issue(t, claims, 0)
		if _, err := b.verifier.Verify(ctx, token); err != nil {
			t.Fatalf("the other instance refuses the rotated key's token: %v", err)
		}
		if currentKID(t, b.keys) != currentKID(t, a.keys) {
			t.Fatal("the reload did not make the other instance sign with the new key too")
		}
	})

	t.Run("unknown kids read the store at most once per interval, and are refused", func(t *testing.T) {
		store, clock, _, b := instances(t)
		forged := signWithNewKey(t, b.validClaims(), "0123456789abcdef")
		before := store.listed.Load()
		for range 5 {
			if _, err := b.verifier.Verify(ctx, forged); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			}
		}
		if got := store.listed.Load() - before; got != 1 {
			t.Fatalf("5 unknown-kid tokens listed the store %d times, want 1", got)
		}
		clock.Advance(ReloadInterval)
		if _, err := b.verifier.Verify(ctx, forged); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Verify = %v, want ErrInvalid", err)
		}
		if got := store.listed.Load() - before; got != 2 {
			t.Fatalf("after the interval the store was listed %d times in all, want 2", got)
		}
	})

	t.Run("a kid no key of ours could have never reads the store", func(t *testing.T) {
		store, _, _, b := instances(t)
		before := store.listed.Load()
		if _, err := b.verifier.Verify(ctx, signWithNewKey(t, b.validClaims(), "../../etc/passwd")); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Verify = %v, want ErrInvalid", err)
		}
		if store.listed.Load() != before {
			t.Fatal("a malformed kid made the verifier list the store")
		}
	})

	t.Run("a key rotated in just after a reload verifies once the interval has passed", func(t *testing.T) {
		_, clock, a, b := instances(t)
		_, _ = b.verifier.Verify(ctx, signWithNewKey(t, b.validClaims(), "0123456789abcdef"))
		if err := a.keys.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		token := a.issue(t, claims, 0)
		clock.Advance(ReloadInterval - time.Second)
		if _, err := b.verifier.Verify(ctx, token); !errors.Is(err, ErrInvalid) {
			t.Fatalf("within the interval: %v, want ErrInvalid (no reload yet)", err)
		}
		clock.Advance(time.Second)
		if _, err := b.verifier.Verify(ctx, token); err != nil {
			t.Fatalf("after the interval: %v", err)
		}
	})

	t.Run("the other instance signs with the rotated key once it reloads, without meeting a token first", func(t *testing.T) {
		_, _, a, b := instances(t)
		oldKID := currentKID(t, b.keys)
		if err := a.keys.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		if currentKID(t, b.keys) != oldKID {
			t.Fatal("the other instance switched keys before any reload")
		}
		if err := b.keys.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if got := kidOf(t, b.issue(t, claims, 0)); got != currentKID(t, a.keys) {
			t.Fatalf("after Reload the other instance signs with kid %s, want the rotated %s", got, currentKID(t, a.keys))
		}
	})

	t.Run("a store failure while reloading is a failed check, not a refused token", func(t *testing.T) {
		store, _, a, b := instances(t)
		if err := a.keys.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		store.listErr = storage.ErrUnavailable
		_, err := b.verifier.Verify(ctx, a.issue(t, claims, 0))
		if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, ErrInvalid) {
			t.Fatalf("Verify = %v, want the store's ErrUnavailable", err)
		}
	})
}
