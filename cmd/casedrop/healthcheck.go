package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// healthcheck runs `casedrop healthcheck`: it asks the server on this
// host whether it is ready (GET /readyz), for Docker's HEALTHCHECK, which
// in a distroless image has no shell or curl to do it. Exit status 0 is
// ready, 1 is not.
func healthcheck(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runHealthcheck(ctx, args, os.Getenv, os.Stdout)
}

// healthcheckSettings are the settings that say where the server listens
// and which certificate it presents.
func healthcheckSettings(s setting) bool {
	return s.flag == "https-addr" || s.flag == "data-dir" || s.flag == "tls-cert"
}

func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var timeout time.Duration
	cfg, rest, err := parseCommand("healthcheck", args, getenv, healthcheckSettings, func(fs *flag.FlagSet) {
		fs.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("usage: casedrop healthcheck [--https-addr ADDR] [--data-dir D] [--tls-cert FILE]")
	}
	host, err := readyzHost(cfg.HTTPSAddr)
	if err != nil {
		return usageError{err}
	}
	tlsConf, err := serverOwnTLS(cfg, host)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	target := "https://" + host + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s answers %s: %s", target, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}

// readyzHost is host:port to reach the listener of --https-addr on this
// host: a listener on every address (":8443", "0.0.0.0:8443", "[::]:8443")
// is reached on 127.0.0.1.
func readyzHost(httpsAddr string) (string, error) {
	host, port, err := net.SplitHostPort(httpsAddr)
	if err != nil {
		return "", fmt.Errorf("--https-addr: %w", err)
	}
	if a, err := netip.ParseAddr(host); host == "" || (err == nil && a.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// serverOwnTLS accepts exactly the certificate the server presents: the one
// in --tls-cert, else the generated <data-dir>/tls.crt. Without that file
// it checks nothing, but only on a loopback address, where no one else
// could answer.
func serverOwnTLS(cfg *config, hostPort string) (*tls.Config, error) {
	path := cfg.TLSCert
	if path == "" {
		path = filepath.Join(cfg.DataDir, "tls.crt")
	}
	data, err := os.ReadFile(path)
	host, _, _ := net.SplitHostPort(hostPort)
	if errors.Is(err, fs.ErrNotExist) && isLoopback(host) {
		return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the server's certificate, to check it by: %w", err)
	}
	own := certificatesDER(data)
	if len(own) == 0 {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return &tls.Config{
		// The server's name may be anything its certificate says; what
		// counts is that it is the certificate in path.
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, der := range own {
				if len(cs.PeerCertificates) > 0 && bytes.Equal(cs.PeerCertificates[0].Raw, der) {
					return nil
				}
			}
			return fmt.Errorf("the server presents a certificate other than %s", path)
		},
	}, nil
}

// certificatesDER is every CERTIFICATE block of a PEM file.
func certificatesDER(data []byte) [][]byte {
	var out [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		if b.Type == "CERTIFICATE" {
			out = append(out, b.Bytes)
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
