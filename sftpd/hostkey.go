package sftpd

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/storage"
)

// HostKeyStore is the part of storage.Store that LoadHostKeys uses.
type HostKeyStore interface {
	Open(ctx context.Context, key string) (storage.Object, error)
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error
}

// maxHostKeyObject bounds what is read from one host key object.
const maxHostKeyObject = 16 << 10

// hostKeys are the keys the server presents, each in OpenSSH PEM format
// under a fixed object name: Ed25519 for today's clients, ECDSA P-256 for
// older ones (PuTTY before 0.68, and with it older WinSCP and FileZilla).
var hostKeys = []struct {
	object   string
	generate func() (crypto.PrivateKey, error)
}{
	{"system/ssh/host_ed25519.pem", func() (crypto.PrivateKey, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}},
	{"system/ssh/host_ecdsa.pem", func() (crypto.PrivateKey, error) {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}},
}

// LoadHostKeys returns the SSH host keys kept in store, creating them on
// first use. Instances sharing the store present the same keys: each key is
// written with a conditional write and read back, so of instances starting
// together exactly one key wins.
func LoadHostKeys(ctx context.Context, store HostKeyStore) ([]ssh.Signer, error) {
	signers := make([]ssh.Signer, 0, len(hostKeys))
	for _, hk := range hostKeys {
		s, err := loadHostKey(ctx, store, hk.object, hk.generate)
		if err != nil {
			return nil, err
		}
		signers = append(signers, s)
	}
	return signers, nil
}

func loadHostKey(ctx context.Context, store HostKeyStore, object string, generate func() (crypto.PrivateKey, error)) (ssh.Signer, error) {
	s, err := readHostKey(ctx, store, object)
	if !errors.Is(err, storage.ErrNotFound) {
		return s, err
	}
	key, err := generate()
	if err != nil {
		return nil, fmt.Errorf("sftpd: generating host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(key, "casedrop host key")
	if err != nil {
		return nil, fmt.Errorf("sftpd: encoding host key: %w", err)
	}
	data := pem.EncodeToMemory(block)
	err = store.PutIfAbsent(ctx, object, bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, storage.ErrExists) {
		return nil, fmt.Errorf("sftpd: storing host key %s: %w", object, err)
	}
	// Whoever won the race, the stored key is the one to present.
	return readHostKey(ctx, store, object)
}

func readHostKey(ctx context.Context, store HostKeyStore, object string) (ssh.Signer, error) {
	obj, err := store.Open(ctx, object)
	if err != nil {
		return nil, fmt.Errorf("sftpd: opening host key %s: %w", object, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, maxHostKeyObject))
	if err != nil {
		return nil, fmt.Errorf("sftpd: reading host key %s: %w", object, err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("sftpd: host key %s: %w", object, err)
	}
	return s, nil
}
