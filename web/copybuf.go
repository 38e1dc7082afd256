package web

import (
	"context"
	"io"
	"sync"
)

// copyBufSize is the chunk a download or an archive entry streams in.
// io.Copy's 32 KiB cost a read system call on the store's connection, and a
// trip through the HTTP/2 server's frame writer, per 32 KiB; 256 KiB takes
// in what the kernel has at once. Pooled: the memory is copyBufSize per
// download in flight, not per download served.
const copyBufSize = 256 << 10

var copyBufs = sync.Pool{New: func() any {
	b := make([]byte, copyBufSize)
	return &b
}}

// copyStream copies src to dst, the response to the request of ctx, in
// chunks of copyBufSize, and has the connection write each chunk's TLS
// records at once (holdWrites).
func copyStream(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var written int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			release := holdWrites(ctx)
			m, werr := dst.Write(buf[:n])
			release()
			written += int64(m)
			if werr == nil && m != n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return written, werr
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}
