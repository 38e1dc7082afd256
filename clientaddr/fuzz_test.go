package clientaddr

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzClientAddr: whatever the headers say, the client is the peer when the
// peer is not trusted, and otherwise the peer or an address that appears in
// the headers; parsing never panics.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1:4000", "198.51.100.1, 203.0.113.7", "")
	f.Add("10.0.0.1:4000", "", `for="[2001:db8::7]:4711";proto=https, for=unknown`)
	f.Add("192.0.2.1:4000", "203.0.113.7", "for=203.0.113.8")
	f.Add("[::ffff:10.0.0.1]:1", "[2001:db8::1]:80,,", "for=")
	proxies := mustProxies(f, "10.0.0.0/8, 2001:db8:ffff::/48")
	f.Fuzz(func(t *testing.T, peer, xff, forwarded string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = peer
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		if forwarded != "" {
			r.Header.Set("Forwarded", forwarded)
		}
		got := proxies.FromRequest(r)
		p, _ := Parse(peer)
		if got == p {
			return
		}
		if !proxies.Trusted(p) {
			t.Fatalf("untrusted peer %q, client %s: headers were believed", peer, got)
		}
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("client %s is not in its one spelling", got)
		}
		for _, hop := range append(forwardedFor([]string{xff}), forwardedElements([]string{forwarded})...) {
			if a, ok := Parse(hop); ok && a == got {
				return
			}
		}
		t.Fatalf("client %s appears nowhere in the headers", got)
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "[2001:db8::1]:80", "fe80::1%eth0", "::ffff:1.2.3.4", "[]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := Parse(s)
		if !ok {
			return
		}
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("Parse(%q) = %s", s, a)
		}
		_ = Source(a)
	})
}
