package metrics

import (
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// declared is the name of every metric the Registry's fields hold.
func declared(r *Registry) []string {
	var names []string
	v := reflect.ValueOf(r).Elem()
	for i := range v.NumField() {
		f := v.Field(i) // unexported: read through its address
		c, ok := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(prometheus.Collector)
		if !ok {
			continue
		}
		descs := make(chan *prometheus.Desc, 8)
		go func() { c.Describe(descs); close(descs) }()
		for d := range descs {
			s := d.String() // Desc{fqName: "casedrop_...", ...}
			_, rest, _ := strings.Cut(s, `fqName: "`)
			name, _, _ := strings.Cut(rest, `"`)
			names = append(names, name)
		}
	}
	return names
}

func scrape(r *Registry) string {
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestEveryCounterAndHistogramIsScrapedAtZeroFromTheStart(t *testing.T) {
	r := New()
	got := scrape(r)
	names := declared(r)
	if len(names) < 10 {
		t.Fatalf("found %d metrics in the Registry's fields: %v", len(names), names)
	}
	for _, name := range names {
		if name == "casedrop_http_request_seconds" {
			continue // labelled by web's routes: appears with the first request
		}
		if !strings.Contains(got, "\n"+name+"{") && !strings.Contains(got, "\n"+name+" ") && !strings.Contains(got, "\n"+name+"_bucket{") {
			t.Errorf("%s is not in the first scrape", name)
		}
	}
	for _, series := range []string{
		`casedrop_purge_runs_total{result="ok"} 0`,
		`casedrop_purge_runs_total{result="error"} 0`,
		"casedrop_purged_objects_total 0",
		`casedrop_storage_errors_total{kind="unavailable",op="put_part"} 0`,
		`casedrop_uploads_finished_total{door="sftp",result="rejected"} 0`,
		`casedrop_failed_logins_total{door="api"} 0`,
		`casedrop_scans_total{result="infected"} 0`,
		"casedrop_scan_errors_total 0",
	} {
		if !strings.Contains(got, series) {
			t.Errorf("the first scrape lacks %s", series)
		}
	}
}

// storageOps is every operation the store wrapper names: an operation
// added to the wrapper and not to the list would appear only on its
// first call.
func TestStorageOpsNamesEveryOperationOfTheWrapper(t *testing.T) {
	wrapper := reflect.TypeOf(digesting{})
	if n := wrapper.NumMethod(); n != len(storageOps) {
		t.Errorf("the wrapper has %d operations, storageOps names %d", n, len(storageOps))
	}
}
