package main

import (
	"context"
	"fmt"
	"github.com/casedrop/casedrop/scan"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/metrics"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/storage/outage"
	"github.com/casedrop/casedrop/storage/s3store"
	"github.com/casedrop/casedrop/upload"
)

// tokenIssuer is the iss and the audience check of every credential; fixed,
// so that instances behind different URLs accept each other's credentials.
const tokenIssuer = "casedrop"

// mode says what the parts are built for.
type mode int

const (
	// direct: a command working on the data itself (case, credentials,
	// purge, audit and verify without --server). The data must exist.
	direct mode = iota
	// serving: `casedrop serve`. The data directory is made if missing;
	// the store is watched for outages and counted in the metrics, and
	// webhook events wait in the outbox.
	serving
)

// wakeScans tells the scan worker, if there is one, that a file was just
// queued for its scan. p.scans is set before the doors open.
func (p *parts) wakeScans() {
	if p.scans != nil {
		p.scans.Wake()
	}
}

// parts are casedrop's pieces made from the config, on one clock: what
// `serve` puts behind its doors and what the direct-mode commands use.
type parts struct {
	// scans is the malware scan worker, nil without a scanner; it is
	// made before the doors, for /readyz, and run with the loops.
	scans    *scan.Worker
	now      func() time.Time
	log      *slog.Logger
	store    storage.Store
	where    string // the store, for people: "local disk ..." or "S3 ..."
	catalog  *cases.Catalog
	keys     *auth.Keys
	issuer   *auth.Issuer
	verifier *auth.Verifier
	ingest   *upload.Ingest
	purger   *cases.Purger
	// metrics is the process's one registry: every part counts into it
	// and /metrics serves it.
	metrics *metrics.Registry
}

// build is the one place where the config becomes casedrop's parts.
func build(ctx context.Context, cfg *config, m mode, log *slog.Logger) (*parts, error) {
	p := &parts{now: time.Now, log: log, metrics: metrics.New()}
	store, where, err := openData(ctx, cfg, m)
	if err != nil {
		return nil, err
	}
	p.store, p.where = store, where
	if m == serving {
		p.store = p.watch(store, cfg)
	}
	p.catalog = cases.New(p.store, p.now)
	if m == serving && cfg.WebhookURL != "" {
		p.catalog.EnableOutbox()
	}
	if p.keys, err = auth.LoadKeys(ctx, p.store, p.now); err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	p.issuer = &auth.Issuer{Keys: p.keys, Issuer: tokenIssuer, Now: p.now}
	p.verifier = &auth.Verifier{Keys: p.keys, Issuer: tokenIssuer, Now: p.now, Revocations: p.catalog, Accounts: p.catalog}
	// One ingest for both doors and every command.
	ingestCfg := upload.Config{Store: p.store, Catalog: p.catalog, Now: p.now, Logger: log,
		PartSize: int64(cfg.PartSizeMiB) << 20, MaxFileSize: int64(cfg.MaxFileGiB) << 30,
		MemoryBudget: int64(cfg.MemoryBudgetMiB) << 20, MaxWritersPerCredential: cfg.UploadsPerCredential,
		Metrics: p.metrics, Scanning: cfg.scanning(), ScanQueued: p.wakeScans}
	if cfg.SharedLock {
		if err := storage.ProbeConditional(ctx, p.store); err != nil {
			return nil, fmt.Errorf("--shared-lock: %w", err)
		}
		ingestCfg.Locker = upload.NewStoreLocker(upload.StoreLockConfig{Store: p.store, Instance: cfg.Instance, Now: p.now})
		ingestCfg.FenceStates = true
	}
	p.ingest = upload.New(ingestCfg)
	if largest := p.ingest.LargestPart(); largest > int64(cfg.MemoryBudgetMiB)<<20 {
		return nil, fmt.Errorf("--memory-budget-mib %d cannot hold one part of the largest file (%d MiB at --max-file-gib %d): raise the budget or lower the largest file",
			cfg.MemoryBudgetMiB, largest>>20, cfg.MaxFileGiB)
	}
	p.purger = &cases.Purger{Catalog: p.catalog, Uploads: p.ingest, Instance: cfg.Instance, AuditRetention: cfg.auditKeep, Logger: log,
		Metrics: p.metrics}
	return p, nil
}

// watch wraps the store of a running server: its outages are logged and,
// once over, audited; its operations are counted in the metrics.
func (p *parts) watch(store storage.Store, cfg *config) storage.Store {
	outages := outage.New(outage.Config{Now: p.now, Logger: p.log, Ended: func(o outage.Outage) {
		auditOutage(p.catalog, cfg.Instance, p.log, o) // p.catalog is set before any outage can end
	}})
	p.metrics.ObserveStorage(outages.Current)
	if disk, ok := store.(*diskstore.Store); ok {
		disk.SetMinFree(int64(cfg.PartSizeMiB) << 20) // room for a part, or not ready
	}
	return p.metrics.Store(store, outages.Observe)
}

// openData opens the store that cfg names. Serving makes the data
// directory; the other commands refuse a data directory with no store in
// it rather than create one.
func openData(ctx context.Context, cfg *config, m mode) (storage.Store, string, error) {
	if cfg.S3Endpoint != "" {
		s, err := s3store.New(ctx, s3store.Config{
			Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket, AccessKey: cfg.S3AccessKey,
			SecretKey: cfg.S3SecretKey, Region: cfg.S3Region, Insecure: cfg.S3Insecure,
		})
		if err != nil {
			return nil, "", fmt.Errorf("storage: %w", err)
		}
		return s, "S3 " + cfg.S3Endpoint + "/" + cfg.S3Bucket, nil
	}
	root := filepath.Join(cfg.DataDir, "store")
	if m == serving {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, "", err
		}
	} else if _, err := os.Stat(root); err != nil {
		return nil, "", fmt.Errorf("no casedrop data in %s (use --data-dir, or the --s3-* settings): %w", cfg.DataDir, err)
	}
	s, err := diskstore.New(root)
	if err != nil {
		return nil, "", fmt.Errorf("storage: %w", err)
	}
	return s, "local disk " + root, nil
}
