package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/casedrop/casedrop/internal/storedkey"
	"github.com/casedrop/casedrop/storage"
)

// keyPrefix is where the signing keys live in the object store.
const keyPrefix = "system/keys/"

// PEM headers kept with each key.
const (
	headerKID     = "Kid"
	headerCreated = "Created"
)

// KeyStore is the part of storage.Store that Keys uses.
type KeyStore interface {
	Open(ctx context.Context, key string) (storage.Object, error)
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error
	List(ctx context.Context, prefix string) ([]storage.Info, error)
}

// signingKey is one Ed25519 key with the generation it was created in.
type signingKey struct {
	kid     string
	gen     int
	created time.Time
	private ed25519.PrivateKey
}

// Keys is the set of Ed25519 signing keys: the newest signs, every known key
// verifies, so tokens signed before a rotation stay valid. It is safe for
// concurrent use.
//
// Each key is stored as a PKCS#8 PEM object named by its generation,
// "system/keys/00000001.pem", "00000002.pem", ..., with its kid and creation
// time as PEM headers. Naming by generation rather than by kid is what lets
// several instances starting (or rotating) at once converge: they race for
// the same object name with PutIfAbsent, exactly one wins, and the others
// load the winner's key.
//
// A key rotated by another instance is found when a token names a kid not
// yet in memory: the set is read from the store again, at most once every
// ReloadInterval, so tokens with made-up kids cannot turn every request into
// a store read. Such a key signs here from the next Reload.
type Keys struct {
	store KeyStore
	now   func() time.Time

	mu      sync.RWMutex
	byKID   map[string]signingKey
	current signingKey

	reloadMu   sync.Mutex // held while a verification reloads the set
	lastReload time.Time  // when a verification last reloaded it
}

// ReloadInterval is the least time between two reloads of the key set
// triggered by tokens naming unknown kids.
const ReloadInterval = 10 * time.Second

// LoadKeys loads every signing key kept in store. If there is none yet, it
// creates the first one, so that all instances sharing the store end up with
// the same key set.
func LoadKeys(ctx context.Context, store KeyStore, now func() time.Time) (*Keys, error) {
	k := &Keys{store: store, now: now}
	if err := k.reload(ctx); err != nil {
		return nil, err
	}
	if k.current.private != nil {
		return k, nil
	}
	if err := k.addGeneration(ctx, 1); err != nil {
		return nil, err
	}
	return k, nil
}

// Rotate adds a new signing key, which signs from now on; the older keys
// still verify. If another instance rotates at the same moment, both end up
// signing with the same new key. Other instances verify the new key's
// tokens once they meet the first one, and sign with it after their next
// Reload (see Keys).
func (k *Keys) Rotate(ctx context.Context) error {
	if err := k.reload(ctx); err != nil {
		return err
	}
	k.mu.RLock()
	next := k.current.gen + 1
	k.mu.RUnlock()
	return k.addGeneration(ctx, next)
}

// Reload reads the key set from the store again, so that a key rotated
// elsewhere (by another instance, or by `casedrop keys rotate`) signs here
// too. A running server calls it now and then: a verification reloads only
// for a token whose kid it does not know, and no token carries the new
// kid until some instance signs with it.
func (k *Keys) Reload(ctx context.Context) error {
	k.reloadMu.Lock() // not to overwrite a verification's newer reload
	defer k.reloadMu.Unlock()
	return k.reload(ctx)
}

// KeyInfo describes one signing key, without its private half.
type KeyInfo struct {
	KID        string    `json:"kid"`
	Generation int       `json:"generation"`
	Created    time.Time `json:"created"`
	// Signing marks the newest key, which signs new credentials.
	Signing bool `json:"signing"`
}

// List describes the known keys, oldest first.
func (k *Keys) List() []KeyInfo {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]KeyInfo, 0, len(k.byKID))
	for _, sk := range k.byKID {
		out = append(out, KeyInfo{KID: sk.kid, Generation: sk.gen, Created: sk.created, Signing: sk.gen == k.current.gen})
	}
	slices.SortFunc(out, func(a, b KeyInfo) int { return a.Generation - b.Generation })
	return out
}

// PublicKeys returns the public half of every known key, by kid.
func (k *Keys) PublicKeys() map[string]ed25519.PublicKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	pubs := make(map[string]ed25519.PublicKey, len(k.byKID))
	for kid, sk := range k.byKID {
		pubs[kid] = sk.private.Public().(ed25519.PublicKey)
	}
	return pubs
}

// signer returns the key that signs new tokens.
func (k *Keys) signer() (kid string, private ed25519.PrivateKey, err error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.current.private == nil {
		return "", nil, errors.New("auth: no signing key loaded")
	}
	return k.current.kid, k.current.private, nil
}

// publicKey returns the key that verifies tokens carrying kid.
func (k *Keys) publicKey(kid string) (ed25519.PublicKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	sk, ok := k.byKID[kid]
	if !ok {
		return nil, false
	}
	return sk.private.Public().(ed25519.PublicKey), true
}

// verifyingKey is publicKey that, for a kid not in memory, reloads the set
// from the store first, unless a reload happened less than ReloadInterval
// ago. An unknown kid is ErrInvalid; any other error is the store's.
func (k *Keys) verifyingKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if pub, ok := k.publicKey(kid); ok {
		return pub, nil
	}
	if !validKID(kid) || k.store == nil {
		return nil, ErrInvalid // no kid we could ever have made
	}
	// One reload at a time: the others wait for it and look again, so a
	// burst of tokens signed with a new key costs one read of the store.
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	if pub, ok := k.publicKey(kid); ok {
		return pub, nil
	}
	now := k.now()
	if !k.lastReload.IsZero() && now.Sub(k.lastReload) < ReloadInterval {
		return nil, ErrInvalid
	}
	k.lastReload = now
	if err := k.reload(ctx); err != nil {
		return nil, err
	}
	if pub, ok := k.publicKey(kid); ok {
		return pub, nil
	}
	return nil, ErrInvalid
}

// addGeneration creates a key for generation gen, stores it unless another
// instance already stored that generation, and reloads the set.
func (k *Keys) addGeneration(ctx context.Context, gen int) error {
	kid, err := newKID()
	if err != nil {
		return err
	}
	_, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("auth: generating signing key: %w", err)
	}
	data, err := encodeKey(kid, k.now(), private)
	if err != nil {
		return err
	}
	if err := storedkey.Create(ctx, k.store, keyObject(gen), data); err != nil {
		return fmt.Errorf("auth: signing key: %w", err)
	}
	return k.reload(ctx)
}

// reload replaces the key set with what the store holds.
func (k *Keys) reload(ctx context.Context) error {
	store := k.store
	infos, err := store.List(ctx, keyPrefix)
	if err != nil {
		return fmt.Errorf("auth: listing signing keys: %w", err)
	}
	byKID := make(map[string]signingKey, len(infos))
	var current signingKey
	for _, info := range infos {
		gen, ok := parseKeyObject(info.Key)
		if !ok {
			continue // not a key of ours; leave it alone
		}
		sk, err := readKey(ctx, store, info.Key)
		if err != nil {
			return err
		}
		sk.gen = gen
		if _, dup := byKID[sk.kid]; dup {
			return fmt.Errorf("auth: signing key %s: kid %s used twice", info.Key, sk.kid)
		}
		byKID[sk.kid] = sk
		if sk.gen > current.gen {
			current = sk
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.byKID, k.current = byKID, current
	return nil
}

func readKey(ctx context.Context, store KeyStore, name string) (signingKey, error) {
	data, err := storedkey.Read(ctx, store, name)
	if err != nil {
		return signingKey{}, fmt.Errorf("auth: signing key: %w", err)
	}
	sk, err := decodeKey(data)
	if err != nil {
		return signingKey{}, fmt.Errorf("auth: signing key %s: %w", name, err)
	}
	return sk, nil
}

// keyObject names the object that holds the key of generation gen.
func keyObject(gen int) string { return fmt.Sprintf("%s%08d.pem", keyPrefix, gen) }

// parseKeyObject returns the generation of a key object name.
func parseKeyObject(name string) (gen int, ok bool) {
	digits, found := strings.CutSuffix(strings.TrimPrefix(name, keyPrefix), ".pem")
	if !found || len(digits) != 8 {
		return 0, false
	}
	if _, err := fmt.Sscanf(digits, "%d", &gen); err != nil || gen < 1 || keyObject(gen) != name {
		return 0, false
	}
	return gen, true
}

func encodeKey(kid string, created time.Time, private ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(private)
	if err != nil {
		return nil, fmt.Errorf("auth: encoding signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{
		Type: "PRIVATE KEY",
		Headers: map[string]string{
			headerKID:     kid,
			headerCreated: created.UTC().Format(time.RFC3339),
		},
		Bytes: der,
	}), nil
}

func decodeKey(data []byte) (signingKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return signingKey{}, errors.New("not a PEM private key")
	}
	kid := block.Headers[headerKID]
	if !validKID(kid) {
		return signingKey{}, errors.New("missing or malformed kid")
	}
	created, err := time.Parse(time.RFC3339, block.Headers[headerCreated])
	if err != nil {
		return signingKey{}, fmt.Errorf("creation time: %w", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return signingKey{}, fmt.Errorf("parsing: %w", err)
	}
	private, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return signingKey{}, fmt.Errorf("a %T, not an Ed25519 key", parsed)
	}
	return signingKey{kid: kid, created: created, private: private}, nil
}

// kidBytes is the number of random bytes in a kid (16 hex characters).
const kidBytes = 8

func newKID() (string, error) {
	b := make([]byte, kidBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: generating kid: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func validKID(kid string) bool {
	if len(kid) != 2*kidBytes {
		return false
	}
	_, err := hex.DecodeString(kid)
	return err == nil
}
