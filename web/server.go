// Package web is casedrop's HTTP surface: the admin and case API, file
// downloads, the tus endpoint's authentication, health checks and the
// pages. Every error it sends is JSON {"error": "...", "code": "..."}.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/clientaddr"
	"github.com/casedrop/casedrop/metrics"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/upload"
	"github.com/rs/cors"
)

// Config is what the HTTP surface needs.
type Config struct {
	Catalog  *cases.Catalog
	Ingest   *upload.Ingest
	Issuer   *auth.Issuer
	Verifier *auth.Verifier
	// AdminToken opens the admin API.
	AdminToken string
	// Limiter slows down sources that keep presenting bad credentials.
	Limiter *auth.Limiter
	// Metrics counts requests and refused logins and serves /metrics; nil
	// makes one of the server's own. Give the ingest the same one.
	Metrics *metrics.Registry
	// MetricsToken, if set, is the Bearer token /metrics asks for.
	MetricsToken string
	// MetricsElsewhere: /metrics is served on a listener of its own
	// (serve's --metrics-addr), not here.
	MetricsElsewhere bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For or
	// Forwarded header names the client; nobody else's is believed.
	TrustedProxies clientaddr.Proxies
	// PublicURL is the base URL put into credentials (no trailing slash).
	PublicURL string
	SFTPHost  string
	SFTPPort  int
	// EmbedOrigins are the case system's origins (as ParseEmbedOrigins
	// returns them) that may frame the case page and call tus and the
	// case credential's API cross-origin; none by default.
	EmbedOrigins []string
	// ManifestSigner signs the cases' SHA256SUMS; without one, the
	// manifests are served unsigned (SHA256SUMS.sig and .sshsig answer 503).
	ManifestSigner ManifestSigner
	// Purger runs purges on request (POST /api/v1/purge); may be nil.
	Purger *cases.Purger
	// Ready reports whether the object store takes uploads now, within
	// ctx's deadline; a fault of the store is storage.ErrUnavailable or
	// storage.ErrNoSpace.
	Ready func(ctx context.Context) error
	// ScanBacklog, with a malware scanner, says how many files wait for
	// their scan; /readyz reports it (and stays 200: uploads still land).
	ScanBacklog func() ScanBacklog
	// StallTimeout ends a response the client stopped reading: a write
	// that makes no progress for that long fails (default 2 minutes).
	StallTimeout time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

type server struct {
	Config
	// publicOrigin is PublicURL's origin, which the pages' requests name.
	publicOrigin string
	log          *slog.Logger
	gate         *auth.Gate
	listings     listingGate
	cors         *cors.Cors // nil when no origin is listed
}

// New returns the HTTP handler of the whole surface.
func New(cfg Config) (http.Handler, error) {
	s := &server{Config: cfg, log: cfg.Logger, publicOrigin: originOf(cfg.PublicURL)}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.Metrics == nil {
		s.Metrics = metrics.New() // counted, and served, apart from any other
	}
	s.gate = &auth.Gate{Verifier: cfg.Verifier, Limiter: cfg.Limiter, Trail: cfg.Catalog, Log: s.log,
		CountRefusal: s.Metrics.FailedLogin}
	if s.StallTimeout <= 0 {
		s.StallTimeout = 2 * time.Minute
	}
	var err error
	if s.cors, err = newCORS(cfg.EmbedOrigins, cfg.AdminToken); err != nil {
		return nil, err
	}
	tus, err := cfg.Ingest.TusHandler(upload.TusConfig{
		BasePath:  "/files/",
		HTTPError: s.tusError,
		Logger:    s.log.With("component", "tus"),
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if !s.MetricsElsewhere {
		mux.Handle("GET /metrics", metrics.Guarded(s.Metrics.Handler(), s.MetricsToken))
	}

	admin := s.requireAdmin
	mux.Handle("PUT /api/v1/cases/{case}", admin(s.openCase))
	mux.Handle("POST /api/v1/cases/{case}/close", admin(s.closeCase))
	mux.Handle("POST /api/v1/cases/{case}/reopen", admin(s.reopenCase))
	mux.Handle("GET /api/v1/cases/{case}", admin(s.showCase))
	mux.Handle("POST /api/v1/cases/{case}/credentials", admin(s.issueCredential))
	mux.Handle("GET /api/v1/cases/{case}/credentials", admin(s.listCredentials))
	mux.Handle("DELETE /api/v1/credentials/{id}", admin(s.revokeCredential))
	mux.Handle("POST /api/v1/cases/{case}/links", admin(s.issueLink))
	mux.Handle("POST /api/v1/links/redeem", s.run(s.redeemLink))
	mux.Handle("GET /api/v1/cases/{case}/audit", admin(s.auditTrail))
	mux.Handle("GET /api/v1/audit", admin(s.serverTrail))
	mux.Handle("GET /api/v1/cases", admin(s.listCases))
	mux.Handle("POST /api/v1/purge", admin(s.purge))
	mux.Handle("POST /api/v1/cases/{case}/files/{name}/release", admin(s.releaseFile))

	// What a case credential calls, also from the embedding origins. A
	// download (caseDownloads, and a file) also opens to a download link
	// the credential minted.
	member, dl, crossOrigin := s.requireCaseAccess, s.requireDownloadAccess, s.crossOriginRoutes(mux)
	crossOrigin("GET /api/v1/cases/{case}/files", member(s.listFiles))
	crossOrigin("POST /api/v1/cases/{case}/download-links", member(s.mintDownloadLinks))
	crossOrigin("GET /api/v1/cases/{case}/files/{name}", dl(s.download))
	crossOrigin("HEAD /api/v1/cases/{case}/files/{name}", dl(s.download))
	crossOrigin("GET /api/v1/cases/{case}/SHA256SUMS", dl(s.sha256sums))
	crossOrigin("GET /api/v1/cases/{case}/SHA256SUMS.sig", dl(s.sha256sumsSignature))
	crossOrigin("GET /api/v1/cases/{case}/SHA256SUMS.sshsig", dl(s.sha256sumsSSHSignature))
	crossOrigin("GET /api/v1/cases/{case}/archive.zip", dl(s.archive))
	mux.Handle("GET /api/v1/manifest-key.pem", s.run(s.manifestKey))
	mux.Handle("GET /api/v1/manifest-allowed-signers", s.run(s.manifestAllowedSigners))

	crossOrigin("GET /api/v1/whoami", s.run(s.whoami))
	mux.HandleFunc("GET /cases/{case}", s.page("case"))
	mux.HandleFunc("GET /staff/cases/{case}", s.page("staff"))
	mux.HandleFunc("GET /ui/{file}", s.asset)
	crossOrigin("/files/", s.tusAuth(s.refuseConcatenation(jsonErrors(http.StripPrefix("/files/", tus)))))
	mux.HandleFunc("/", s.notFound)
	return s.logRequests(securityHeaders(mux)), nil
}

// refuseConcatenation answers a tus request of the concatenation
// extension (Upload-Concat: tus-js-client's parallelUploads > 1) with a
// 400 that says what to do. The extension is off: an upload is one
// stream, hashed in order as it lands. Without this, tusd takes a partial
// upload for a plain one and the client hears that its file has no name.
func (s *server) refuseConcatenation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upload-Concat") != "" {
			s.writeError(w, r, newError(http.StatusBadRequest, "concatenation_off",
				"tus upload concatenation (Upload-Concat) is off on this server: upload each file as one stream (tus-js-client: parallelUploads: 1)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// notFound answers a path no route serves.
func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, newError(http.StatusNotFound, "not_found", "no such endpoint"))
}

// tusError answers an error of the tus handler, which writes its own
// responses.
func (s *server) tusError(err error) (int, http.Header, string) {
	status, header, body := errorResponse(err)
	logFailure(context.Background(), s.log, status, "tus request failed", err)
	return status, header, body
}

// readyTimeout bounds the store check of /readyz, so that it answers
// within about a second whatever the store does.
const readyTimeout = 900 * time.Millisecond

// readyz answers 200 while the store takes uploads, else 503 with the code
// of the store's fault (storage_unavailable, insufficient_storage). The
// check has a deadline of its own: a store that does not answer in time is
// unavailable. Outages are logged where the store is watched, once.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready == nil {
		writeJSON(w, http.StatusOK, s.readiness())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	err := s.Ready(ctx)
	if err == nil {
		writeJSON(w, http.StatusOK, s.readiness())
		return
	}
	if storage.Fault(err) == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%w: no answer within %v (%w)", storage.ErrUnavailable, readyTimeout, err)
	}
	a := classify(err)
	if storage.Fault(err) == nil { // a missing bucket, refused credentials...
		s.log.WarnContext(r.Context(), "not ready", "err", err)
		a.code, a.message = "storage_unavailable", "the server's storage cannot be used"
	}
	writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: a.message, Code: a.code})
}

// ScanBacklog is the malware scan queue as last read: files held, and
// when the longest-waiting of them was queued.
type ScanBacklog struct {
	Waiting        int
	OldestQueuedAt time.Time
}

// Readiness is /readyz's answer while the server takes uploads.
type Readiness struct {
	Status string `json:"status"`
	// ScansWaiting and OldestScanWaitingSeconds, with a scanner: files
	// held for their malware scan, and how long the oldest has waited.
	// Only while some wait: a probe sees a scanner that falls behind.
	ScansWaiting             int     `json:"scans_waiting,omitempty"`
	OldestScanWaitingSeconds float64 `json:"oldest_scan_waiting_seconds,omitempty"`
}

func (s *server) readiness() Readiness {
	v := Readiness{Status: "ready"}
	if s.ScanBacklog == nil {
		return v
	}
	b := s.ScanBacklog()
	if b.Waiting > 0 {
		v.Status, v.ScansWaiting = "ready; scans waiting", b.Waiting
		if !b.OldestQueuedAt.IsZero() {
			v.OldestScanWaitingSeconds = max(0, s.Now().Sub(b.OldestQueuedAt).Round(time.Second).Seconds())
		}
	}
	return v
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Strict-Transport-Security", "max-age=31536000")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status for the access log, and gives each
// write of the response a deadline, so that a client that stops reading a
// download (or anything else) cannot hold its goroutine and open object
// for ever. Unwrap keeps http.ResponseController working through it.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	stall    time.Duration
	deadline time.Time // the write deadline set last
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	// Deadlines are wall-clock I/O timeouts, not domain time. The last one
	// also covers the final flush after the handler returns. It is moved
	// once a quarter of the timeout has passed, not on every write of a
	// download.
	if now := time.Now(); s.deadline.Sub(now) < s.stall*3/4 {
		s.deadline = now.Add(s.stall)
		_ = http.NewResponseController(s.ResponseWriter).SetWriteDeadline(s.deadline)
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logRequests logs method, path, status, duration and source of every
// request. Paths never hold secrets (tokens travel in headers or in the
// URL fragment, which browsers do not send); query strings, where a
// download link rides (?dl=), are never logged.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// An HTTP/1.1 connection keeps the write deadline of its previous
		// response: a long upload's response must not inherit it.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		rec := &statusRecorder{ResponseWriter: w, stall: s.StallTimeout}
		client := s.TrustedProxies.FromRequest(r)
		r = r.WithContext(context.WithValue(r.Context(), clientKey{}, client))
		next.ServeHTTP(rec, r)
		if rec.status >= 500 && r.Context().Err() != nil {
			// The client left before the answer (tusd answers a body it
			// could not read with a 500): not the server's failure.
			rec.status = StatusClientGone
		}
		route := r.Pattern // set by the mux on this request
		if route == "" {
			route = "unmatched"
		}
		method := metrics.Method(r.Method) // a closed set: the method is the client's
		s.Metrics.Request(route, r.Method, rec.status, time.Since(start))
		s.log.InfoContext(r.Context(), "http", "method", method, "path", r.URL.Path, "status", rec.status,
			"ms", time.Since(start).Milliseconds(), "remote", client, "proto", r.Proto)
	})
}

type clientKey struct{}

// clientAddr is the address of the client that made r: the peer, or the
// client a trusted proxy names (logRequests finds it once per request).
func clientAddr(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(clientKey{}).(netip.Addr); ok {
		return a
	}
	a, _ := clientaddr.Parse(r.RemoteAddr)
	return a
}

// bearer returns the token of r's "Authorization: Bearer <token>" as sent:
// net/http has dropped the spaces around the header value, and whatever is
// left inside is part of the token, for the verifier to refuse.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return h[7:]
	}
	return ""
}
