package sftpd

import (
	"context"
	"strings"
)

// WinSCP uploads to "name.filepart" and renames that to "name" at the end;
// when the user cancels, it closes the handle cleanly and later resumes
// from the size the .filepart is listed with. So for a .filepart the close
// cannot mean "done": a .filepart closed with all its bytes in place stays
// a partial, marked in its saved state as closed whole at its size
// (upload.MarkClosed), and the rename to a name without ".filepart"
// finishes it, also when the server restarted in between. A .filepart
// whose connection dropped is not marked, and renaming it keeps it a
// partial under the new name.
const filepartSuffix = ".filepart"

func isFilepart(name string) bool { return strings.HasSuffix(name, filepartSuffix) }

// finishRenamed finishes the partial upload id, just renamed from a
// .filepart to name, if its last handle closed whole with exactly the
// bytes now stored. The caller holds the upload's lock.
func (s *session) finishRenamed(ctx context.Context, id, name string) error {
	up, err := s.srv.cfg.Ingest.Partial(ctx, s.claims.Case, name)
	if err != nil {
		return err
	}
	info := up.Info()
	if info.ID != id || info.ClosedAt != info.Offset {
		s.log.Info("sftp .filepart renamed before it was closed whole; it stays resumable",
			"file", name, "upload", id, "closed_at", info.ClosedAt, "stored", info.Offset)
		return nil
	}
	// As a close does, finish on the server's context: a client that
	// leaves now must not cut the commit in half.
	_, err = up.Finish(s.srv.ctx)
	return err
}
