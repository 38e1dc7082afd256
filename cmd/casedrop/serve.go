package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/casedrop/casedrop/scan"
	"github.com/casedrop/casedrop/scan/clamd"
	"github.com/casedrop/casedrop/scan/icap"
	"github.com/casedrop/casedrop/sftpd"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/outage"
	"github.com/casedrop/casedrop/web"
	"github.com/casedrop/casedrop/webhook"
	"golang.org/x/term"
)

func newLogger(level, format string, w *os.File) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	if logText(format, term.IsTerminal(int(w.Fd()))) {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// logText says whether logs are text for people, as --log-format says:
// auto is text on a terminal and JSON lines for a collector otherwise.
func logText(format string, terminal bool) bool {
	return format == "text" || format == "auto" && terminal
}

// serve runs `casedrop serve`: the HTTPS door (API, tus, pages) and the
// SFTP door over the parts the config makes, until a signal ends it.
func serve(args []string) error {
	cfg, err := parseConfig("serve", args, os.Getenv)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, os.Stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := build(ctx, cfg, serving, log)
	if err != nil {
		return err
	}
	p.metrics.ObserveBuffers(p.ingest.BufferStats)
	limitHeap(log, int64(cfg.MemoryBudgetMiB)<<20)
	if cfg.scanning() {
		p.scans = newScanWorker(ctx, cfg, p)
	}
	d, err := openDoors(ctx, cfg, p)
	if err != nil {
		return err
	}
	startLoops(ctx, cfg, p)
	return d.run(ctx, log)
}

// doors are the two listeners and their servers.
type doors struct {
	https, sftp      net.Listener
	httpsSrv         *http.Server
	interruptUploads func()
	sftpSrv          *sftpd.Server
	// metrics and metricsSrv serve /metrics apart (--metrics-addr); nil
	// without it.
	metrics    net.Listener
	metricsSrv *http.Server
}

// openDoors makes the HTTPS and SFTP servers over p, with the secrets
// they present (admin token, certificate, manifest and host keys), and
// listens on their addresses.
func openDoors(ctx context.Context, cfg *config, p *parts) (*doors, error) {
	tokenPath := filepath.Join(cfg.DataDir, "admin-token")
	adminToken, created, err := auth.LoadAdminToken(cfg.AdminToken, tokenPath)
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	if created {
		p.log.Info("generated the admin token; it is in the file named here (mode 0600)", "path", tokenPath)
	}
	cert, certPath, err := loadCertificate(cfg, p)
	if err != nil {
		return nil, err
	}
	manifestSigner, err := manifest.LoadSigner(ctx, p.store)
	if err != nil {
		return nil, fmt.Errorf("manifest signing key: %w", err)
	}
	hostKeys, err := sftpd.LoadHostKeys(ctx, p.store)
	if err != nil {
		return nil, fmt.Errorf("SSH host keys: %w", err)
	}
	// One login limiter for both doors.
	limiter := auth.NewLimiter(10, time.Minute, p.now)
	sftpHost, sftpPort := sftpEndpoint(cfg)
	handler, err := web.New(web.Config{
		Purger:           p.purger,
		Catalog:          p.catalog,
		Ingest:           p.ingest,
		Issuer:           p.issuer,
		Verifier:         p.verifier,
		AdminToken:       adminToken,
		ManifestSigner:   manifestSigner,
		Limiter:          limiter,
		Metrics:          p.metrics,
		MetricsToken:     cfg.MetricsToken,
		MetricsElsewhere: cfg.MetricsAddr != "",
		TrustedProxies:   cfg.proxies,
		PublicURL:        cfg.PublicURL,
		EmbedOrigins:     cfg.embedOrigins,
		SFTPHost:         sftpHost,
		SFTPPort:         sftpPort,
		Ready:            p.store.Ping,
		ScanBacklog:      scanBacklog(p.scans),
		StallTimeout:     cfg.stallAfter,
		Now:              p.now,
		Logger:           p.log,
	})
	if err != nil {
		return nil, err
	}
	d := &doors{}
	d.sftpSrv, err = sftpd.New(sftpd.Config{
		Catalog: p.catalog, Ingest: p.ingest, Verifier: p.verifier, Limiter: limiter, Metrics: p.metrics, TrustedProxies: cfg.proxies,
		HostKeys: hostKeys, Logger: p.log, Now: p.now,
	})
	if err != nil {
		return nil, err
	}
	if d.https, err = net.Listen("tcp", cfg.HTTPSAddr); err != nil {
		return nil, err
	}
	if d.sftp, err = net.Listen("tcp", cfg.SFTPAddr); err != nil {
		d.https.Close()
		return nil, err
	}
	if cfg.MetricsAddr != "" {
		if d.metrics, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			d.https.Close()
			d.sftp.Close()
			return nil, err
		}
		d.metricsSrv = metricsServer(p.metrics, cfg.MetricsToken)
	}
	d.httpsSrv, d.interruptUploads = web.HTTPServer(cfg.HTTPSAddr, handler, cert, p.log)
	p.log.Info("casedrop serving", "version", version(), "https", d.https.Addr().String(), "sftp", d.sftp.Addr().String(),
		"public_url", cfg.PublicURL, "storage", p.where, "certificate", certPath, "data_dir", cfg.DataDir,
		"embed_origins", cfg.embedOrigins, "metrics", metricsWhere(d))
	return d, nil
}

// metricsServer serves reg's /metrics, to the bearer of token if set, and
// nothing else: the listener of --metrics-addr.
func metricsServer(reg *metrics.Registry, token string) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Guarded(reg.Handler(), token))
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// metricsWhere says, for the start's log line, where /metrics is.
func metricsWhere(d *doors) string {
	if d.metrics != nil {
		return "http://" + d.metrics.Addr().String() + "/metrics"
	}
	return "the HTTPS port"
}

// startLoops starts the purge, the webhook deliveries, the malware scans
// and the reading of rotated signing keys; they end with ctx.
func startLoops(ctx context.Context, cfg *config, p *parts) {
	if p.scans != nil {
		go p.scans.Run(ctx, scanInterval)
	}
	go refreshKeys(ctx, p.keys, keyRefresh, p.log)
	if cfg.purgeEvery > 0 {
		go p.purger.Run(ctx, cfg.purgeEvery)
	}
	if cfg.WebhookURL != "" {
		deliverer := webhook.New(webhook.Config{URL: cfg.WebhookURL, Key: cfg.webhookKey, Outbox: p.catalog, Now: p.now, Logger: p.log, Instance: cfg.Instance})
		go deliverer.Run(ctx, 2*time.Second)
	}
}

// newScanWorker returns the worker that scans the files that wait for
// it, with clamd or an ICAP service. A scanner that does not answer yet is
// no reason not to start: files wait, held, until it does.
func newScanWorker(ctx context.Context, cfg *config, p *parts) *scan.Worker {
	scanner, err := newScanner(cfg)
	if err != nil { // checked in parseConfig
		p.log.Error("scan: no scanner", "err", err)
		return nil
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := scanner.Ping(pingCtx); err != nil {
		p.log.Warn("scan: the scanner does not answer yet; landed files wait as scanning until it does", "scanner", scanner.String(), "err", err)
	} else {
		p.log.Info("scan: every landed file is scanned before it is served", "scanner", scanner.String())
	}
	w := scan.NewWorker(scan.Config{
		Scanner: scanner, Queue: p.catalog, Now: p.now, Logger: p.log, Metrics: p.metrics, Instance: cfg.Instance,
		Open: func(ctx context.Context, caseID string, f cases.File) (io.ReadCloser, error) {
			return p.ingest.OpenScan(ctx, caseID, f)
		},
	})
	p.metrics.ObserveScans(w.Waiting)
	return w
}

// scanBacklog is what /readyz says of w's queue; nil without a scanner.
func scanBacklog(w *scan.Worker) func() web.ScanBacklog {
	if w == nil {
		return nil
	}
	return func() web.ScanBacklog {
		n, oldest := w.Backlog()
		return web.ScanBacklog{Waiting: n, OldestQueuedAt: oldest}
	}
}

// pingScanner is a scanner that can say whether it answers.
type pingScanner interface {
	scan.Scanner
	Ping(ctx context.Context) error
	String() string
}

// newScanner returns the scanner cfg names.
func newScanner(cfg *config) (pingScanner, error) {
	if cfg.ScanICAP != "" {
		c, err := icap.New(icap.Config{URL: cfg.ScanICAP})
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	return clamd.New(clamd.Config{Address: cfg.ScanClamd})
}

// scanInterval is how often the scan queue is looked at.
const scanInterval = time.Second

// run serves both doors until one fails or ctx ends, then shuts both down:
// uploads in flight are interrupted and keep what they stored.
func (d *doors) run(ctx context.Context, log *slog.Logger) error {
	served := make(chan error, 3)
	go func() { served <- d.httpsSrv.ServeTLS(web.Listener(d.https), "", "") }()
	go func() { served <- d.sftpSrv.Serve(d.sftp) }()
	if d.metricsSrv != nil {
		go func() { served <- d.metricsSrv.Serve(d.metrics) }()
		defer d.metricsSrv.Close() // a scrape has nothing to finish
	}
	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
	}
	log.Info("shutting down: interrupting uploads in flight, they keep what they stored")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- d.httpsSrv.Shutdown(shutdownCtx) }()
	go func() { done <- d.sftpSrv.Shutdown(shutdownCtx) }()
	d.interruptUploads()
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

func loadCertificate(cfg *config, p *parts) (cert tlsCert, path string, err error) {
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
	cert, created, err := web.LoadOrCreateCertificate(certPath, keyPath, hosts, p.now())
	if err != nil {
		return cert, "", err
	}
	if created {
		p.log.Info("generated a self-signed TLS certificate; use --tls-cert/--tls-key for a real one", "path", certPath)
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
