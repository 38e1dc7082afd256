package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/manifest"
	"github.com/casedrop/casedrop/metrics"
	"github.com/casedrop/casedrop/sftpd"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/storage/outage"
	"github.com/casedrop/casedrop/storage/s3store"
	"github.com/casedrop/casedrop/upload"
	"github.com/casedrop/casedrop/web"
	"github.com/casedrop/casedrop/webhook"
)

// tokenIssuer is the iss and the audience check of every credential; fixed,
// so that instances behind different URLs accept each other's credentials.
const tokenIssuer = "casedrop"

func openStore(ctx context.Context, cfg *config) (storage.Store, string, error) {
	if cfg.S3Endpoint == "" {
		root := filepath.Join(cfg.DataDir, "store")
		s, err := diskstore.New(root)
		return s, "local disk " + root, err
	}
	s, err := s3store.New(ctx, s3store.Config{
		Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket, AccessKey: cfg.S3AccessKey,
		SecretKey: cfg.S3SecretKey, Region: cfg.S3Region, Insecure: cfg.S3Insecure,
	})
	return s, "S3 " + cfg.S3Endpoint + "/" + cfg.S3Bucket, err
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func serve(args []string) error {
	cfg, err := parseConfig("serve", args, os.Getenv)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	now := time.Now

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	rawStore, where, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	var catalog *cases.Catalog // set below, before any outage can end
	outages := outage.New(outage.Config{Now: now, Logger: log, Ended: func(o outage.Outage) {
		auditOutage(catalog, cfg.Instance, log, o)
	}})
	metrics.ObserveStorage(outages.Current)
	if disk, ok := rawStore.(*diskstore.Store); ok {
		disk.SetMinFree(int64(cfg.PartSizeMiB) << 20) // room for a part, or not ready
	}
	store := metrics.Store(rawStore, outages.Observe)
	catalog = cases.New(store, now)
	if cfg.WebhookURL != "" {
		catalog.EnableOutbox()
	}
	keys, err := auth.LoadKeys(ctx, store, now)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	tokenPath := filepath.Join(cfg.DataDir, "admin-token")
	adminToken, created, err := auth.LoadAdminToken(cfg.AdminToken, tokenPath)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if created {
		log.Info("generated the admin token; it is in the file named here (mode 0600)", "path", tokenPath)
	}
	cert, certPath, err := loadCertificate(cfg, log)
	if err != nil {
		return err
	}
	manifestSigner, err := manifest.LoadSigner(ctx, store)
	if err != nil {
		return fmt.Errorf("manifest signing key: %w", err)
	}
	hostKeys, err := sftpd.LoadHostKeys(ctx, store)
	if err != nil {
		return fmt.Errorf("SSH host keys: %w", err)
	}
	// One ingest, one verifier and one login limiter for both doors.
	ingest := upload.New(upload.Config{Store: store, Catalog: catalog, Now: now, Logger: log,
		PartSize: int64(cfg.PartSizeMiB) << 20, MaxFileSize: int64(cfg.MaxFileGiB) << 30,
		MemoryBudget: int64(cfg.MemoryBudgetMiB) << 20, MaxWritersPerCredential: cfg.UploadsPerCredential})
	if largest := ingest.LargestPart(); largest > int64(cfg.MemoryBudgetMiB)<<20 {
		return fmt.Errorf("--memory-budget-mib %d cannot hold one part of the largest file (%d MiB at --max-file-gib %d): raise the budget or lower the largest file",
			cfg.MemoryBudgetMiB, largest>>20, cfg.MaxFileGiB)
	}
	metrics.ObserveBuffers(ingest.BufferStats)
	limitHeap(log, int64(cfg.MemoryBudgetMiB)<<20)
	verifier := &auth.Verifier{Keys: keys, Issuer: tokenIssuer, Now: now, Revocations: catalog, Accounts: catalog}
	limiter := auth.NewLimiter(10, time.Minute, now)
	sftpHost, sftpPort := sftpEndpoint(cfg)
	purger := &cases.Purger{Catalog: catalog, Uploads: ingest, Instance: cfg.Instance, AuditRetention: cfg.auditKeep, Logger: log}
	handler, err := web.New(web.Config{
		Purger:         purger,
		Catalog:        catalog,
		Ingest:         ingest,
		Issuer:         &auth.Issuer{Keys: keys, Issuer: tokenIssuer, Now: now},
		Verifier:       verifier,
		AdminToken:     adminToken,
		ManifestSigner: manifestSigner,
		Limiter:        limiter,
		TrustedProxies: cfg.proxies,
		PublicURL:      cfg.PublicURL,
		SFTPHost:       sftpHost,
		SFTPPort:       sftpPort,
		Ready:          store.Ping,
		StallTimeout:   cfg.stallAfter,
		Now:            now,
		Logger:         log,
	})
	if err != nil {
		return err
	}
	sftpServer, err := sftpd.New(sftpd.Config{
		Catalog: catalog, Ingest: ingest, Verifier: verifier, Limiter: limiter, TrustedProxies: cfg.proxies,
		HostKeys: hostKeys, Logger: log, Now: now,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPSAddr)
	if err != nil {
		return err
	}
	sftpLn, err := net.Listen("tcp", cfg.SFTPAddr)
	if err != nil {
		ln.Close()
		return err
	}
	srv, interrupt := web.HTTPServer(cfg.HTTPSAddr, handler, cert, log)
	log.Info("casedrop serving", "version", version(), "https", ln.Addr().String(), "sftp", sftpLn.Addr().String(),
		"public_url", cfg.PublicURL, "storage", where, "certificate", certPath, "data_dir", cfg.DataDir)

	// The background loops end with ctx, at shutdown.
	if cfg.purgeEvery > 0 {
		go purger.Run(ctx, cfg.purgeEvery)
	}
	if cfg.WebhookURL != "" {
		deliverer := webhook.New(webhook.Config{URL: cfg.WebhookURL, Key: cfg.webhookKey, Outbox: catalog, Now: now, Logger: log})
		go deliverer.Run(ctx, 2*time.Second)
	}
	served := make(chan error, 2)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	go func() { served <- sftpServer.Serve(sftpLn) }()
	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
	}
	log.Info("shutting down: interrupting uploads in flight, they keep what they stored")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- srv.Shutdown(shutdownCtx) }()
	go func() { done <- sftpServer.Shutdown(shutdownCtx) }()
	interrupt()
	for range 2 {
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) && serveErr == nil {
			serveErr = err
		}
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && !errors.Is(serveErr, sftpd.ErrServerClosed) {
		return serveErr
	}
	log.Info("stopped")
	return nil
}

// auditOutage records an outage of the store, once over, in the
// server-wide audit trail, as done by this instance.
func auditOutage(catalog *cases.Catalog, instance string, log *slog.Logger, o outage.Outage) {
	typ := cases.EventStorageUnavailable
	if errors.Is(o.Fault, storage.ErrNoSpace) {
		typ = cases.EventStorageFull
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev := cases.Event{Time: o.Start, Type: typ, Actor: cases.Actor{Door: "server", Username: instance}, Detail: cases.CleanDetail(o.String())}
	if err := catalog.Audit(ctx, ev); err != nil {
		log.Error("audit record lost", "type", typ, "err", err)
	}
}

func loadCertificate(cfg *config, log *slog.Logger) (cert tlsCert, path string, err error) {
	certPath, keyPath := cfg.TLSCert, cfg.TLSKey
	if certPath == "" {
		certPath, keyPath = filepath.Join(cfg.DataDir, "tls.crt"), filepath.Join(cfg.DataDir, "tls.key")
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	cert, created, err := web.LoadOrCreateCertificate(certPath, keyPath, hosts, time.Now())
	if err != nil {
		return cert, "", err
	}
	if created {
		log.Info("generated a self-signed TLS certificate; use --tls-cert/--tls-key for a real one", "path", certPath)
	}
	return cert, certPath, nil
}

func sftpEndpoint(cfg *config) (string, int) {
	host := "localhost"
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	_, p, _ := net.SplitHostPort(cfg.SFTPAddr)
	port, _ := strconv.Atoi(p)
	return host, port
}

// heapOverhead is what the process needs besides the upload buffers: the
// runtime, TLS and HTTP/2 buffers, SSH windows, catalog reads. Less makes
// the collector run without end when many uploads wait with full windows.
const heapOverhead = 128 << 20

// limitHeap sets Go's soft memory limit to the upload budget plus the
// overhead, unless GOMEMLIMIT says otherwise, so that the collector runs
// before garbage buffers grow the process far past what is in use.
func limitHeap(log *slog.Logger, budget int64) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(budget + heapOverhead)
	log.Debug("memory limit set", "bytes", budget+heapOverhead)
}
