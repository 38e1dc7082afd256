package sftpd

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/internal/storedkey"
)

// HostKeyStore is the part of storage.Store that LoadHostKeys uses.
type HostKeyStore = storedkey.Store

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
	data, err := storedkey.Load(ctx, store, object, func() ([]byte, error) {
		key, err := generate()
		if err != nil {
			return nil, err
		}
		block, err := ssh.MarshalPrivateKey(key, "casedrop host key")
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(block), nil
	})
	if err != nil {
		return nil, fmt.Errorf("sftpd: host key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("sftpd: host key %s: %w", object, err)
	}
	return s, nil
}
