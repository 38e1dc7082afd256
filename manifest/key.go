package manifest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/casedrop/casedrop/internal/storedkey"
	"github.com/casedrop/casedrop/storage"
	"golang.org/x/crypto/ssh"
)

// KeyObject is the object that holds the manifest signing key (PKCS#8
// PEM), beside the credential keys under system/.
const KeyObject = "system/manifest/signing-key.pem"

// ErrNoKey: the store holds no manifest key yet (no server has started on it).
var ErrNoKey = errors.New("manifest: no signing key in the store yet; it is created when the server first starts")

// KeyStore is the part of storage.Store the manifest key needs.
type KeyStore = storedkey.Store

// Signer signs manifests with the server's manifest key. It is its own
// key, not a credential key: rotating credential keys must not change
// the key customers and auditors were given to check manifests.
type Signer struct {
	private   ed25519.PrivateKey
	ssh       ssh.Signer // the same key, for SSHSIG signatures
	publicPEM []byte
}

// LoadSigner loads the manifest key from store, creating it first if the
// store has none. Instances starting together race with a conditional
// write; exactly one key is stored and every instance reads it back.
func LoadSigner(ctx context.Context, store KeyStore) (*Signer, error) {
	data, err := storedkey.Load(ctx, store, KeyObject, func() ([]byte, error) {
		_, private, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(private)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	})
	if err != nil {
		return nil, fmt.Errorf("manifest: signing key: %w", err)
	}
	return parseSigner(data)
}

// PublicKeyPEM reads the public half of the manifest key kept in store
// without creating one: ErrNoKey when there is none.
func PublicKeyPEM(ctx context.Context, store KeyStore) ([]byte, error) {
	data, err := storedkey.Read(ctx, store, KeyObject)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("manifest: signing key: %w", err)
	}
	s, err := parseSigner(data)
	if err != nil {
		return nil, err
	}
	return s.PublicKeyPEM(), nil
}

func parseSigner(data []byte) (*Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("manifest: %s is not a PEM private key", KeyObject)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("manifest: parsing %s: %w", KeyObject, err)
	}
	private, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("manifest: %s holds a %T, not an Ed25519 key", KeyObject, parsed)
	}
	pub, err := x509.MarshalPKIXPublicKey(private.Public())
	if err != nil {
		return nil, fmt.Errorf("manifest: encoding the public key: %w", err)
	}
	sshSigner, err := ssh.NewSignerFromKey(private)
	if err != nil {
		return nil, fmt.Errorf("manifest: the signing key as an SSH key: %w", err)
	}
	return &Signer{private: private, ssh: sshSigner, publicPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})}, nil
}

// Sign returns the raw 64-byte Ed25519 signature of manifest, which
// `openssl pkeyutl -verify -pubin -inkey key.pem -rawin` checks.
func (s *Signer) Sign(manifest []byte) []byte { return ed25519.Sign(s.private, manifest) }

// PublicKeyPEM returns the public key as PEM (SubjectPublicKeyInfo), the
// form openssl reads with -pubin.
func (s *Signer) PublicKeyPEM() []byte { return bytes.Clone(s.publicPEM) }
