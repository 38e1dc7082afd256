package web

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
)

// HTTPServer returns the HTTPS server for h, tuned for large uploads, and a
// function that interrupts the requests in flight: call it when shutting
// down, so that uploads store the bytes they received and answer at once
// instead of holding the shutdown until the client is done.
func HTTPServer(addr string, h http.Handler, cert tls.Certificate, log *slog.Logger) (*http.Server, func()) {
	base, interrupt := context.WithCancelCause(context.Background())
	srv := &http.Server{
		Addr:    addr,
		Handler: h,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			NextProtos:   []string{"h2", "http/1.1"},
		},
		// Uploads stream for hours: no whole-request timeout; tusd extends
		// read deadlines as bytes arrive.
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		// Go's default HTTP/2 flow-control windows (1 MiB per stream)
		// throttle large request bodies; browsers upload over HTTP/2. But
		// what a window lets a client send ahead sits in memory while its
		// upload waits for a part buffer, outside the memory budget: 2 MiB
		// per stream keeps that small at about a fifth of one upload's
		// loopback throughput (16 MiB windows held 480 MiB for 30 waiting
		// uploads). See docs/decisions.md.
		HTTP2: &http.HTTP2Config{
			MaxReceiveBufferPerStream:     2 << 20,
			MaxReceiveBufferPerConnection: 16 << 20,
			MaxReadFrameSize:              1 << 20,
		},
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext: func(_ net.Listener) context.Context { return base },
		ConnContext: withHeldConn,
	}
	return srv, func() { interrupt(handler.ErrServerShutdown) }
}
