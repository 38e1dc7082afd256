package auth

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/storage"
)

// memStore is an in-memory KeyStore. A map is enough here: the storage
// contract itself (PutIfAbsent's atomicity included) is tested elsewhere,
// against the real stores; this fake only has to keep the same promises.
type memStore struct {
	mu      sync.Mutex
	objects map[string][]byte

	// If listGate is set, the first listGateN calls to List each wait until
	// all of them have listed, so that racing callers all see the store as
	// it was before any of them wrote.
	listGate  *sync.WaitGroup
	listGateN int32
	listCalls atomic.Int32

	listed  atomic.Int32 // calls to List, counted always
	listErr error        // if set, what List answers
}

func newMemStore() *memStore { return &memStore{objects: make(map[string][]byte)} }

// gateLists makes the next n calls to List wait for each other.
func (s *memStore) gateLists(n int) {
	s.listGate = &sync.WaitGroup{}
	s.listGate.Add(n)
	s.listGateN = int32(n)
}

func (s *memStore) Open(_ context.Context, key string) (storage.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.objects[key]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", key, storage.ErrNotFound)
	}
	return memObject{bytes.NewReader(data), storage.Info{Key: key, Size: int64(len(data))}}, nil
}

func (s *memStore) PutIfAbsent(_ context.Context, key string, r io.Reader, size int64) error {
	if err := storage.ValidKey(key); err != nil {
		return err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(data)) != size {
		return fmt.Errorf("put %s: got %d bytes, want %d", key, len(data), size)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[key]; ok {
		return fmt.Errorf("put %s: %w", key, storage.ErrExists)
	}
	s.objects[key] = data
	return nil
}

func (s *memStore) List(_ context.Context, prefix string) ([]storage.Info, error) {
	s.listed.Add(1)
	if s.listErr != nil {
		return nil, s.listErr
	}
	infos := s.list(prefix)
	// Gated callers wait after taking their listing, so none of them can
	// write before all of them have listed.
	if s.listGate != nil && s.listCalls.Add(1) <= s.listGateN {
		s.listGate.Done()
		s.listGate.Wait()
	}
	return infos, nil
}

func (s *memStore) list(prefix string) []storage.Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	var infos []storage.Info
	for key, data := range s.objects {
		if strings.HasPrefix(key, prefix) {
			infos = append(infos, storage.Info{Key: key, Size: int64(len(data))})
		}
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	return infos
}

func (s *memStore) put(key string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[key] = data
}

func (s *memStore) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for key := range s.objects {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

type memObject struct {
	*bytes.Reader
	info storage.Info
}

func (o memObject) Close() error       { return nil }
func (o memObject) Info() storage.Info { return o.info }

// fakeClock is a clock that moves only when told to.
type fakeClock = testclock.Clock

func newFakeClock() *fakeClock {
	return testclock.New(time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC))
}
