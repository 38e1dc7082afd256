package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/metrics"
)

func TestMetricsAddrTakesOnlyALoopbackOrPrivateAddress(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:9090", "[::1]:9090", "localhost:9090", "10.1.2.3:9090", "192.168.0.7:9090"} {
		c, err := parseConfig("serve", []string{"--metrics-addr", ok}, env(nil))
		if err != nil || c.MetricsAddr != ok {
			t.Errorf("--metrics-addr %s: %v, want taken", ok, err)
		}
	}
	for _, bad := range []string{":9090", "0.0.0.0:9090", "[::]:9090", "203.0.113.5:9090", "metrics.example.com:9090", "127.0.0.1"} {
		_, err := parseConfig("serve", []string{"--metrics-addr", bad}, env(nil))
		if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "--metrics-addr") {
			t.Errorf("--metrics-addr %s: %v, want a usage error naming the flag", bad, err)
		}
	}
	c, err := parseConfig("serve", nil, env(map[string]string{"CASEDROP_METRICS_ADDR": "127.0.0.1:9191", "CASEDROP_METRICS_TOKEN": "tok"}))
	if err != nil || c.MetricsAddr != "127.0.0.1:9191" || c.MetricsToken != "tok" {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
}

func TestTheMetricsListenerServesMetricsOnlyToTheTokenItIsGiven(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := metricsServer(metrics.New(), "metrics-token-for-the-test")
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+l.Addr().String()+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", code)
	}
	if code, body := get("/metrics", "metrics-token-for-the-test"); code != http.StatusOK || !strings.Contains(body, "casedrop_purge_runs_total") {
		t.Errorf("with the token: %d, want 200 and the metrics:\n%.300s", code, body)
	}
	if code, _ := get("/healthz", "metrics-token-for-the-test"); code != http.StatusNotFound {
		t.Errorf("/healthz on the metrics listener: %d, want 404 (it serves /metrics only)", code)
	}
}
