package sftpd

import (
	"context"
	"strings"
	"sync"
)

// WinSCP uploads to "name.filepart" and renames that to "name" at the end;
// when the user cancels, it closes the handle cleanly and later resumes
// from the size the .filepart is listed with. So for a .filepart the close
// cannot mean "done": a .filepart closed with all its bytes in place stays
// a partial, remembered as whole, and the rename to a name without
// ".filepart" finishes it. A .filepart whose connection dropped is not
// remembered, and renaming it keeps it a partial under the new name.
const filepartSuffix = ".filepart"

func isFilepart(name string) bool { return strings.HasSuffix(name, filepartSuffix) }

// maxWholeParts bounds the uploads remembered as whole: one for each
// cancelled WinSCP upload not resumed yet. The oldest is forgotten first;
// forgetting one only means its rename leaves it a partial.
const maxWholeParts = 10000

// wholeParts remembers, in memory, the .filepart uploads whose last handle
// closed cleanly, with the offset they closed at. WinSCP renames in the
// same session right after the close; after a restart in between, the
// rename leaves a partial that a resume of the new name finishes.
type wholeParts struct {
	mu   sync.Mutex
	seq  uint64
	byID map[string]wholePart
}

type wholePart struct {
	offset int64
	seq    uint64 // insertion order, to forget the oldest
}

func newWholeParts() *wholeParts { return &wholeParts{byID: make(map[string]wholePart)} }

// mark remembers upload id as closed whole at offset.
func (w *wholeParts) mark(id string, offset int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	w.byID[id] = wholePart{offset: offset, seq: w.seq}
	if len(w.byID) <= maxWholeParts {
		return
	}
	oldest, first := "", true
	for k, v := range w.byID {
		if first || v.seq < w.byID[oldest].seq {
			oldest, first = k, false
		}
	}
	delete(w.byID, oldest)
}

// forget drops what is remembered of upload id: it is being written again,
// or it is gone.
func (w *wholeParts) forget(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byID, id)
}

// take returns and forgets the offset upload id closed whole at.
func (w *wholeParts) take(id string) (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.byID[id]
	delete(w.byID, id)
	return p.offset, ok
}

// finishRenamed finishes the partial upload id, just renamed from a
// .filepart to name, if its last handle closed whole with exactly the
// bytes now stored. The caller holds the upload's lease.
func (s *session) finishRenamed(ctx context.Context, id, name string) error {
	offset, whole := s.srv.whole.take(id)
	if !whole {
		s.log.Info("sftp .filepart renamed before it was closed whole; it stays resumable", "file", name, "upload", id)
		return nil
	}
	up, err := s.srv.cfg.Ingest.Partial(ctx, s.claims.Case, name)
	if err != nil {
		return err
	}
	if info := up.Info(); info.ID != id || info.Offset != offset {
		s.log.Warn("sftp .filepart changed between its close and its rename; it stays resumable",
			"file", name, "upload", id, "closed_at", offset, "stored", info.Offset)
		return nil
	}
	// As a close does, finish on the server's context: a client that
	// leaves now must not cut the commit in half.
	_, err = up.Finish(s.srv.ctx)
	return err
}
