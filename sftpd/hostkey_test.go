package sftpd_test

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/sftpd"
	"github.com/casedrop/casedrop/storage"
)

func TestEveryServerOnAStorePresentsTheSameHostKeys(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		// Instances starting together race to create the keys.
		const instances = 4
		keys := make([][]ssh.Signer, instances)
		errs := make([]error, instances)
		var wg sync.WaitGroup
		for i := range instances {
			wg.Go(func() { keys[i], errs[i] = sftpd.LoadHostKeys(context.Background(), store) })
		}
		wg.Wait()
		for i := range instances {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if len(keys[i]) != 2 {
				t.Fatalf("%d host keys, want Ed25519 and ECDSA", len(keys[i]))
			}
			for j, k := range keys[i] {
				if !bytes.Equal(k.PublicKey().Marshal(), keys[0][j].PublicKey().Marshal()) {
					t.Fatalf("instance %d has another %s key", i, k.PublicKey().Type())
				}
			}
		}

		// Two servers on the store: a client sees one host key.
		var seen [][]byte
		for range 2 {
			e := newEnv(t, store)
			cr := e.issue(t, "case-1", 0)
			cfg := clientConfig(cr.user, passwordAuth(cr.token))
			cfg.HostKeyCallback = func(_ string, _ net.Addr, key ssh.PublicKey) error {
				seen = append(seen, key.Marshal())
				return nil
			}
			if _, err := e.dial(t, cfg); err != nil {
				t.Fatal(err)
			}
		}
		if len(seen) != 2 || !bytes.Equal(seen[0], seen[1]) {
			t.Fatal("the two servers presented different host keys")
		}
		if !bytes.Equal(seen[0], keys[0][0].PublicKey().Marshal()) && !bytes.Equal(seen[0], keys[0][1].PublicKey().Marshal()) {
			t.Fatal("the servers presented a key that is not the stored one")
		}
	})
}
