package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/casedrop/casedrop/manifest"
)

// manifestKey runs `casedrop manifest-key`: it prints the PEM public key
// that checks SHA256SUMS signatures, from a running server (--server) or
// directly from the data.
func manifestKey(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runManifestKey(ctx, args, os.Getenv, os.Stdout)
}

func runManifestKey(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var cf clientFlags
	cfg, rest, err := parseCommand("manifest-key", args, getenv, dataSettings, func(fs *flag.FlagSet) {
		fs.StringVar(&cf.server, "server", "", "fetch the key from this running server (default: read it from the data)")
		fs.StringVar(&cf.cacert, "cacert", "", "PEM certificate to trust besides the system's (default <data-dir>/tls.crt if it exists)")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("usage: casedrop manifest-key [--server URL | --data-dir D | --s3-endpoint ...]")
	}
	var pem []byte
	if cf.server != "" {
		pem, err = fetchManifestKey(ctx, &cf, cfg.DataDir, getenv)
	} else {
		if err := cfg.completeData(); err != nil {
			return usageError{err}
		}
		store, _, openErr := openData(ctx, cfg, direct)
		if openErr != nil {
			return openErr
		}
		pem, err = manifest.PublicKeyPEM(ctx, store)
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(pem)
	return err
}

func fetchManifestKey(ctx context.Context, cf *clientFlags, dataDir string, getenv func(string) string) ([]byte, error) {
	client, err := cf.newClient(dataDir, getenv, false)
	if err != nil {
		return nil, err
	}
	resp, err := client.do(ctx, http.MethodGet, "/api/v1/manifest-key.pem", nil, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	pem, err := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if err != nil {
		return nil, fmt.Errorf("reading the key: %w", err)
	}
	return pem, nil
}
