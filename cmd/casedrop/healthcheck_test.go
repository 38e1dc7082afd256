package main

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/web"
)

// readyServer is a TLS server answering /readyz with status, and a data
// directory holding its certificate as serve's tls.crt.
func readyServer(t *testing.T, status int) (addr, dataDir string) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	dataDir = t.TempDir()
	crt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dataDir, "tls.crt"), crt, 0o600); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(srv.URL, "https://"), dataDir
}

func TestHealthcheck(t *testing.T) {
	run := func(args ...string) error {
		return runHealthcheck(context.Background(), args, env(nil), io.Discard)
	}
	t.Run("a server that answers /readyz 200 with the data dir's certificate is ready", func(t *testing.T) {
		addr, data := readyServer(t, http.StatusOK)
		if err := run("--https-addr", addr, "--data-dir", data); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a server that answers 503 is not ready", func(t *testing.T) {
		addr, data := readyServer(t, http.StatusServiceUnavailable)
		if err := run("--https-addr", addr, "--data-dir", data); err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("got %v, want not ready, 503", err)
		}
	})
	t.Run("a server presenting another certificate than the data dir's is refused", func(t *testing.T) {
		addr, _ := readyServer(t, http.StatusOK)
		other := t.TempDir() // httptest's servers share one certificate: make another
		if _, _, err := web.LoadOrCreateCertificate(filepath.Join(other, "tls.crt"), filepath.Join(other, "tls.key"), []string{"127.0.0.1"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := run("--https-addr", addr, "--data-dir", other); err == nil || !strings.Contains(err.Error(), "certificate other than") {
			t.Fatalf("got %v, want the certificate refused", err)
		}
	})
	t.Run("without a certificate to check, loopback is trusted as it is", func(t *testing.T) {
		addr, _ := readyServer(t, http.StatusOK)
		if err := run("--https-addr", addr, "--data-dir", t.TempDir()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("without a certificate to check, another address is refused", func(t *testing.T) {
		if err := run("--https-addr", "192.0.2.1:8443", "--data-dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("got %v, want a refusal for want of a certificate", err)
		}
	})
	t.Run("a listener on every address is asked on 127.0.0.1", func(t *testing.T) {
		for _, a := range []string{":8443", "0.0.0.0:8443", "[::]:8443"} {
			if got, err := readyzHost(a); err != nil || got != "127.0.0.1:8443" {
				t.Errorf("readyzHost(%q) = %q, %v; want 127.0.0.1:8443", a, got, err)
			}
		}
	})
}
