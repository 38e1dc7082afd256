package sftpd

import (
	"context"
	"sync"
)

// leases give one holder at a time the right to change an upload of this
// process: write to it, finish, terminate or rename it. upload.Upload must
// be written by one caller at a time; two SFTP handles on the same partial
// would otherwise interleave parts and corrupt it.
//
// The newest writer wins: acquire asks the current holder to stop (a handle
// stops like after a dropped connection, keeping what it stored) and waits
// until it has let go. A client that reconnects after its link died resumes
// at once instead of waiting for the server to notice the dead connection.
type leases struct {
	mu   sync.Mutex
	held map[string]*lease
}

type lease struct {
	owner    *leases
	id       string
	stop     func() // asks the holder to let go
	released chan struct{}
	once     sync.Once
}

func newLeases() *leases { return &leases{held: make(map[string]*lease)} }

// acquire takes the lease on upload id, stopping its holder if there is one.
func (l *leases) acquire(ctx context.Context, id string, stop func()) (*lease, error) {
	return l.take(ctx, id, stop, true)
}

// await takes the lease on upload id once its holder has let go by itself.
func (l *leases) await(ctx context.Context, id string) (*lease, error) {
	return l.take(ctx, id, noStop, false)
}

func (l *leases) take(ctx context.Context, id string, stop func(), preempt bool) (*lease, error) {
	for {
		l.mu.Lock()
		cur := l.held[id]
		if cur == nil {
			ls := &lease{owner: l, id: id, stop: stop, released: make(chan struct{})}
			l.held[id] = ls
			l.mu.Unlock()
			return ls, nil
		}
		l.mu.Unlock()
		if preempt {
			cur.stop()
		}
		select {
		case <-cur.released:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// release lets go of the lease; releasing twice is harmless.
func (ls *lease) release() {
	ls.once.Do(func() {
		ls.owner.mu.Lock()
		if ls.owner.held[ls.id] == ls {
			delete(ls.owner.held, ls.id)
		}
		ls.owner.mu.Unlock()
		close(ls.released)
	})
}

func noStop() {}

// openWrites are the handles of this process writing uploads, by upload id.
type openWrites struct {
	mu   sync.Mutex
	byID map[string]*writeHandle
}

func (o *openWrites) add(id string, h *writeHandle) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.byID[id] = h
}

func (o *openWrites) remove(id string, h *writeHandle) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byID[id] == h {
		delete(o.byID, id)
	}
}

// written is how far the writes of the handle open on upload id reach, if
// one is open.
func (o *openWrites) written(id string) (int64, bool) {
	o.mu.Lock()
	h := o.byID[id]
	o.mu.Unlock()
	if h == nil {
		return 0, false
	}
	return h.written(), true
}
