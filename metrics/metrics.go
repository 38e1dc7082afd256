// Package metrics adapts casedrop's counters to Prometheus, served at
// /metrics. A Registry is one server's metrics: cmd/casedrop builds one and
// hands it to the parts that count. The domain packages do not import this
// package: upload and cases declare the few counts they make as small
// interfaces (upload.Metrics, cases.PurgeMetrics) that a Registry fills, so
// two servers in one test count apart and a package works without metrics.
package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/casedrop/casedrop/storage"
)

// Registry holds one server's collectors and the Prometheus registry that
// serves them.
type Registry struct {
	reg             *prometheus.Registry
	uploadsInFlight *prometheus.GaugeVec
	bytesReceived   *prometheus.CounterVec
	uploadsFinished *prometheus.CounterVec
	failedLogins    *prometheus.CounterVec
	purgeRuns       *prometheus.CounterVec
	purgedObjects   prometheus.Counter
	storageErrors   *prometheus.CounterVec
	storageLatency  *prometheus.HistogramVec
	requestDuration *prometheus.HistogramVec
	scans           *prometheus.CounterVec
	scanErrors      prometheus.Counter
}

// New returns a Registry with every casedrop metric and the Go runtime's
// and the process's.
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "casedrop", Name: name, Help: help}, labels)
		r.reg.MustRegister(c)
		return c
	}
	histogramVec := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "casedrop", Name: name, Help: help, Buckets: buckets}, labels)
		r.reg.MustRegister(h)
		return h
	}
	r.uploadsInFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "casedrop", Name: "uploads_in_flight",
		Help: "Requests or SFTP handles writing upload bytes right now, per door."}, []string{"door"})
	r.reg.MustRegister(r.uploadsInFlight)
	r.bytesReceived = counterVec("upload_bytes_received_total", "Upload bytes stored, per door.", "door")
	r.uploadsFinished = counterVec("uploads_finished_total", "Uploads committed, per door and result (complete or rejected).", "door", "result")
	r.failedLogins = counterVec("failed_logins_total", "Refused credentials, per door.", "door")
	r.purgeRuns = counterVec("purge_runs_total", "Purge passes, per result (ok or error).", "result")
	r.purgedObjects = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "casedrop", Name: "purged_objects_total", Help: "Objects removed by purges."})
	r.reg.MustRegister(r.purgedObjects)
	r.storageErrors = counterVec("storage_errors_total", "Object store operations that failed, per operation and kind (unavailable, no_space, other).", "op", "kind")
	r.storageLatency = histogramVec("storage_operation_seconds", "Object store operation latency, per operation.",
		prometheus.ExponentialBuckets(0.001, 2.5, 12), "op")
	r.requestDuration = histogramVec("http_request_seconds", "HTTP request duration, per route, method and status class.",
		prometheus.ExponentialBuckets(0.001, 3, 12), "route", "method", "code")
	r.scans = counterVec("scans_total", "Malware scans that gave a verdict, per result (clean, infected, too_large).", "result")
	r.scanErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "casedrop", Name: "scan_errors_total",
		Help: "Malware scans that gave no verdict (scanner down, slow or failing; the store failing): each is retried."})
	r.reg.MustRegister(r.scanErrors)
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.startAtZero()
	return r
}

// The label values the counters and histograms know in advance.
var (
	uploadDoors   = []string{"tus", "sftp"}
	loginDoors    = []string{"api", "tus", "sftp"}
	uploadResults = []string{"complete", "rejected"}
	purgeResults  = []string{"ok", "error"}
	scanResults   = []string{"clean", "infected", "too_large"}
	faultKinds    = []string{"unavailable", "no_space", "other"}
	storageOps    = []string{"put", "put_if_absent", "put_if_match", "open", "stat", "delete", "list",
		"new_multipart", "put_part", "copy_part", "complete_multipart", "abort_multipart", "list_multiparts",
		"ping", "set_digest", "digest"}
)

// startAtZero makes every series whose labels are known in advance, so
// that each is scraped at 0 from the start: an alert on a counter's rate,
// or on its absence, sees data before the first event. Request durations
// are labelled by route, which web knows: they appear with the first
// request.
func (r *Registry) startAtZero() {
	for _, door := range uploadDoors {
		r.uploadsInFlight.WithLabelValues(door)
		r.bytesReceived.WithLabelValues(door)
		for _, result := range uploadResults {
			r.uploadsFinished.WithLabelValues(door, result)
		}
	}
	for _, door := range loginDoors {
		r.failedLogins.WithLabelValues(door)
	}
	for _, result := range purgeResults {
		r.purgeRuns.WithLabelValues(result)
	}
	for _, result := range scanResults {
		r.scans.WithLabelValues(result)
	}
	for _, op := range storageOps {
		r.storageLatency.WithLabelValues(op)
		for _, kind := range faultKinds {
			r.storageErrors.WithLabelValues(op, kind)
		}
	}
}

// Handler serves the metrics in the Prometheus text format.
func (r *Registry) Handler() http.Handler { return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}) }

// Writing counts an upload request or handle of door starting (+1) or
// ending (-1) its writing (upload.Metrics).
func (r *Registry) Writing(door string, delta int) {
	r.uploadsInFlight.WithLabelValues(door).Add(float64(delta))
}

// Received counts upload bytes stored through door (upload.Metrics).
func (r *Registry) Received(door string, n int64) {
	r.bytesReceived.WithLabelValues(door).Add(float64(n))
}

// Finished counts an upload committed through door, complete or rejected
// (upload.Metrics).
func (r *Registry) Finished(door, result string) {
	r.uploadsFinished.WithLabelValues(door, result).Inc()
}

// PurgeRun counts a purge pass, ok or error, and the objects it removed
// (cases.PurgeMetrics).
func (r *Registry) PurgeRun(result string, objects int) {
	r.purgeRuns.WithLabelValues(result).Inc()
	r.purgedObjects.Add(float64(objects))
}

// Scanned counts a scan's verdict (scan.Metrics).
func (r *Registry) Scanned(result string) { r.scans.WithLabelValues(result).Inc() }

// ScanFailed counts a scan that gave no verdict (scan.Metrics).
func (r *Registry) ScanFailed() { r.scanErrors.Inc() }

// ObserveScans reports, at each scrape, the files waiting for a scan, as
// the scan worker last saw its queue.
func (r *Registry) ObserveScans(waiting func() int) {
	r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "casedrop", Name: "scans_waiting",
		Help: "Files held for a malware scan (scanning), as the scan queue last read."},
		func() float64 { return float64(waiting()) }))
}

// FailedLogin counts a refused credential at door (auth.Gate's
// CountRefusal).
func (r *Registry) FailedLogin(door string) { r.failedLogins.WithLabelValues(door).Inc() }

// Request times an HTTP request. The method is one of the methods casedrop
// serves or "other", so that no request can add label values.
func (r *Registry) Request(route, method string, status int, d time.Duration) {
	code := strconv.Itoa(status/100) + "xx"
	r.requestDuration.WithLabelValues(route, Method(method), code).Observe(d.Seconds())
}

// ObserveBuffers reports, at each scrape, the bytes of upload part buffers
// in use and the uploads waiting for one (the memory budget at work).
func (r *Registry) ObserveBuffers(stats func() (inUse int64, waiting int)) {
	r.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "casedrop", Name: "upload_buffer_bytes",
			Help: "Bytes of upload part buffers in use, both doors (bounded by the memory budget)."},
			func() float64 { n, _ := stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "casedrop", Name: "uploads_waiting_for_buffer",
			Help: "Uploads waiting for a part buffer because the memory budget is in use."},
			func() float64 { _, n := stats(); return float64(n) }),
	)
}

// Method is an HTTP method as a label: one of the methods casedrop serves,
// or "other", so that no request can add label values.
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// ObserveStorage reports, at each scrape, the store's fault under way as
// a gauge per kind: 1 while the store is unavailable, or out of space.
func (r *Registry) ObserveStorage(fault func() error) {
	for kind, err := range map[string]error{"unavailable": storage.ErrUnavailable, "no_space": storage.ErrNoSpace} {
		r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "casedrop", Name: "storage_fault",
			Help:        "1 while the object store is unavailable (kind unavailable) or out of space (kind no_space), as its operations tell.",
			ConstLabels: prometheus.Labels{"kind": kind}},
			func() float64 {
				if errors.Is(fault(), err) {
					return 1
				}
				return 0
			}))
	}
}

// faultKind is the kind label of a failed store operation.
func faultKind(err error) string {
	switch storage.Fault(err) {
	case storage.ErrUnavailable:
		return "unavailable"
	case storage.ErrNoSpace:
		return "no_space"
	}
	return "other"
}

// Watcher is told the outcome of every store operation: its name, whether
// its success shows that the store has room for a part (storing a part,
// completing an upload, Ping; a small put may fit where a part does not),
// when it started and its error.
type Watcher func(op string, room bool, start time.Time, err error)

// observe times one store operation, counts its failure and tells the
// watcher. A missing object, or a refused condition of a conditional
// write, is an answer, not a failure of the store.
func (i instrumented) observe(op string, room bool, start time.Time, err error) {
	i.r.storageLatency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !storage.Answered(err) {
		i.r.storageErrors.WithLabelValues(op, faultKind(err)).Inc()
	}
	if i.watch != nil {
		i.watch(op, room, start, err)
	}
}

// Store wraps s so that every operation is timed and counted, and its
// outcome told to watch, if not nil. The wrapper has the optional
// capabilities of s (storage.Digester) and no others: a type assertion on
// it answers as one on s would.
func (r *Registry) Store(s storage.Store, watch Watcher) storage.Store {
	i := instrumented{s, watch, r}
	if d, ok := s.(storage.Digester); ok {
		return digesting{i, d}
	}
	return i
}

// instrumented is the wrapper of a store without optional capabilities.
type instrumented struct {
	s     storage.Store
	watch Watcher
	r     *Registry
}

func (i instrumented) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	defer func(t time.Time) { i.observe("put", false, t, err) }(time.Now())
	return i.s.Put(ctx, key, r, size)
}

func (i instrumented) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	defer func(t time.Time) { i.observe("put_if_absent", false, t, err) }(time.Now())
	return i.s.PutIfAbsent(ctx, key, r, size)
}

func (i instrumented) PutIfMatch(ctx context.Context, key, etag string, r io.Reader, size int64) (err error) {
	defer func(t time.Time) { i.observe("put_if_match", false, t, err) }(time.Now())
	return i.s.PutIfMatch(ctx, key, etag, r, size)
}

func (i instrumented) Open(ctx context.Context, key string) (o storage.Object, err error) {
	defer func(t time.Time) { i.observe("open", false, t, err) }(time.Now())
	return i.s.Open(ctx, key)
}

func (i instrumented) Stat(ctx context.Context, key string) (info storage.Info, err error) {
	defer func(t time.Time) { i.observe("stat", false, t, err) }(time.Now())
	return i.s.Stat(ctx, key)
}

func (i instrumented) Delete(ctx context.Context, key string) (err error) {
	defer func(t time.Time) { i.observe("delete", false, t, err) }(time.Now())
	return i.s.Delete(ctx, key)
}

func (i instrumented) List(ctx context.Context, prefix string) (infos []storage.Info, err error) {
	defer func(t time.Time) { i.observe("list", false, t, err) }(time.Now())
	return i.s.List(ctx, prefix)
}

func (i instrumented) NewMultipart(ctx context.Context, key string) (id string, err error) {
	defer func(t time.Time) { i.observe("new_multipart", false, t, err) }(time.Now())
	return i.s.NewMultipart(ctx, key)
}

func (i instrumented) PutPart(ctx context.Context, key, uploadID string, number int, r io.Reader, size int64) (p storage.Part, err error) {
	defer func(t time.Time) { i.observe("put_part", true, t, err) }(time.Now())
	return i.s.PutPart(ctx, key, uploadID, number, r, size)
}

func (i instrumented) CopyPart(ctx context.Context, key, uploadID string, number int, srcKey string, offset, size int64) (p storage.Part, err error) {
	defer func(t time.Time) { i.observe("copy_part", true, t, err) }(time.Now())
	return i.s.CopyPart(ctx, key, uploadID, number, srcKey, offset, size)
}

func (i instrumented) CompleteMultipart(ctx context.Context, key, uploadID string, parts []storage.Part) (info storage.Info, err error) {
	defer func(t time.Time) { i.observe("complete_multipart", true, t, err) }(time.Now())
	return i.s.CompleteMultipart(ctx, key, uploadID, parts)
}

func (i instrumented) AbortMultipart(ctx context.Context, key, uploadID string) (err error) {
	defer func(t time.Time) { i.observe("abort_multipart", false, t, err) }(time.Now())
	return i.s.AbortMultipart(ctx, key, uploadID)
}

func (i instrumented) ListMultiparts(ctx context.Context, prefix string) (m []storage.Multipart, err error) {
	defer func(t time.Time) { i.observe("list_multiparts", false, t, err) }(time.Now())
	return i.s.ListMultiparts(ctx, prefix)
}

func (i instrumented) Ping(ctx context.Context) (err error) {
	defer func(t time.Time) { i.observe("ping", true, t, err) }(time.Now())
	return i.s.Ping(ctx)
}

// digesting is the wrapper of a store that is a storage.Digester.
type digesting struct {
	instrumented
	d storage.Digester
}

func (w digesting) SetDigest(ctx context.Context, key, sha256hex string) (err error) {
	defer func(t time.Time) { w.observe("set_digest", false, t, err) }(time.Now())
	return w.d.SetDigest(ctx, key, sha256hex)
}

func (w digesting) Digest(ctx context.Context, key string) (digest string, err error) {
	defer func(t time.Time) { w.observe("digest", false, t, err) }(time.Now())
	return w.d.Digest(ctx, key)
}
