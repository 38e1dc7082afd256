package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/casedrop/casedrop/metrics"
)

func TestGuardedMetricsAnswerOnlyTheBearerOfTheToken(t *testing.T) {
	reg := metrics.New()
	for _, tc := range []struct {
		name, token, auth string
		want              int
	}{
		{"without a token set, anyone", "", "", http.StatusOK},
		{"with a token set, nobody without it", "s3cret-metrics-token", "", http.StatusUnauthorized},
		{"with a token set, nobody with another", "s3cret-metrics-token", "Bearer s3cret-metrics-tokeX", http.StatusUnauthorized},
		{"with a token set, nobody with a prefix of it", "s3cret-metrics-token", "Bearer s3cret", http.StatusUnauthorized},
		{"with a token set, nobody with it not as Bearer", "s3cret-metrics-token", "s3cret-metrics-token", http.StatusUnauthorized},
		{"with a token set, its bearer", "s3cret-metrics-token", "Bearer s3cret-metrics-token", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			metrics.Guarded(reg.Handler(), tc.token).ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("status %d, want %d", rec.Code, tc.want)
			}
		})
	}
}
