package web_test

import (
	"net/http"
	"testing"

	"github.com/casedrop/casedrop/web"
)

func TestMetricsAskForTheirTokenWhenOneIsSet(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.MetricsToken = "metrics-token-for-the-test" })
	e.expect(e.do("GET", "/metrics", "", nil), http.StatusUnauthorized)
	e.expect(e.do("GET", "/metrics", adminToken, nil), http.StatusUnauthorized)
	e.expect(e.do("GET", "/metrics", "metrics-token-for-the-test", nil), http.StatusOK)
}

func TestMetricsServedElsewhereAreNotOnTheHTTPSPort(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.MetricsElsewhere = true })
	e.expect(e.do("GET", "/metrics", "", nil), http.StatusNotFound)
}
