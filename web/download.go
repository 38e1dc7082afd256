package web

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/casedrop/casedrop/cases"
)

// download serves one complete file: ranges, If-Range and HEAD through
// http.ServeContent (a browser's download manager resumes with them); the
// digest recorded at upload in Repr-Digest, and in Content-Digest when
// the response carries the whole file.
func (s *server) download(w http.ResponseWriter, r *http.Request) error {
	caseID := r.PathValue("case")
	f, err := s.downloadable(r, caseID, r.PathValue("name"))
	if err != nil {
		return err
	}
	obj, err := s.Ingest.Open(r.Context(), caseID, f)
	if err != nil {
		return err
	}
	defer obj.Close()
	digest, err := digestField(f.SHA256)
	if err != nil {
		return fmt.Errorf("file %s: %w", f.Name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", contentDisposition(f.Name))
	h.Set("Repr-Digest", digest)
	h.Set("ETag", `"`+f.SHA256+`"`)
	if r.Method != http.MethodHead {
		s.audit(r, cases.Event{Type: cases.EventFileDownloaded, Case: caseID, File: f.Name, Size: f.Size, SHA256: f.SHA256, Detail: r.Header.Get("Range")})
	}
	if r.Method == http.MethodGet {
		w = &contentDigestWriter{ResponseWriter: w, digest: digest, ctx: r.Context()}
	}
	http.ServeContent(w, r, "", modTime(f), obj)
	return nil
}

// digestField is the RFC 9530 field value of a hex SHA-256.
func digestField(sha256hex string) (string, error) {
	sum, err := hex.DecodeString(sha256hex)
	if err != nil || len(sum) != 32 {
		return "", fmt.Errorf("bad recorded digest %q", sha256hex)
	}
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum) + ":", nil
}

// contentDigestWriter adds Content-Digest to a 200 answer to a GET: its
// content is then the whole file, whose digest was recorded at upload. A
// 206 carries part of the file (and a HEAD no content), so there the
// recorded digest would be wrong for the content, and it is left out.
type contentDigestWriter struct {
	http.ResponseWriter
	ctx         context.Context // the request's
	digest      string
	wroteHeader bool
}

func (c *contentDigestWriter) WriteHeader(code int) {
	if !c.wroteHeader && code == http.StatusOK {
		c.Header().Set("Content-Digest", c.digest)
	}
	c.wroteHeader = true
	c.ResponseWriter.WriteHeader(code)
}

func (c *contentDigestWriter) Write(b []byte) (int, error) {
	if !c.wroteHeader {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(b)
}

// ReadFrom is what http.ServeContent's copy calls: the file streams
// through copyStream.
func (c *contentDigestWriter) ReadFrom(src io.Reader) (int64, error) {
	return copyStream(c.ctx, c, src)
}

func (c *contentDigestWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// contentDisposition names the file for saving (RFC 6266). A plain ASCII
// name goes into a quoted filename as it is. Any other gets an ASCII
// stand-in there and the exact name in filename* (RFC 8187); quotes,
// backslashes and percent signs count as not plain, since agents differ
// on escapes inside filename (RFC 6266, appendix D).
func contentDisposition(name string) string {
	plain := func(r rune) bool { return r >= 0x20 && r <= 0x7e && r != '"' && r != '\\' && r != '%' }
	if strings.IndexFunc(name, func(r rune) bool { return !plain(r) }) < 0 {
		return `attachment; filename="` + name + `"`
	}
	fallback := strings.Map(func(r rune) rune {
		if plain(r) {
			return r
		}
		return '_'
	}, name)
	return `attachment; filename="` + fallback + `"; filename*=UTF-8''` + encodeExtValue(name)
}

// encodeExtValue percent-encodes s for an RFC 8187 ext-value: every byte
// but attr-char.
func encodeExtValue(s string) string {
	const attrChar = "!#$&+-.^_`|~"
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte(attrChar, c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
