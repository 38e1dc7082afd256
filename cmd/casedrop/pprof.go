//go:build pprof

// A build for profiling (`go build -tags pprof ./cmd/casedrop`) serves
// net/http/pprof on CASEDROP_PPROF (say 127.0.0.1:6060), for the
// profiles behind the README's performance notes. Release builds have
// none of it.

package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("CASEDROP_PPROF"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
