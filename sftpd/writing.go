package sftpd

import "sync"

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
