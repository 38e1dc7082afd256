package clientaddr

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func mustProxies(t testing.TB, list string) Proxies {
	t.Helper()
	p, err := ParseProxies(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromRequest(t *testing.T) {
	tests := []struct {
		name      string
		trusted   string
		peer      string
		xff       []string
		forwarded []string
		want      string
	}{
		{"without trusted proxies the peer is the client", "", "192.0.2.1:4000", []string{"203.0.113.7"}, nil, "192.0.2.1"},
		{"an untrusted peer's X-Forwarded-For is ignored", "10.0.0.0/8", "192.0.2.1:4000", []string{"203.0.113.7"}, nil, "192.0.2.1"},
		{"an untrusted peer's Forwarded is ignored", "10.0.0.0/8", "192.0.2.1:4000", nil, []string{"for=203.0.113.7"}, "192.0.2.1"},
		{"a trusted peer without a header is the client", "10.0.0.1", "10.0.0.1:4000", nil, nil, "10.0.0.1"},
		{"a trusted peer's X-Forwarded-For names the client", "10.0.0.1", "10.0.0.1:4000", []string{"203.0.113.7"}, nil, "203.0.113.7"},
		{"the right-most untrusted address wins over what the client wrote", "10.0.0.1", "10.0.0.1:4000", []string{"198.51.100.1, 203.0.113.7"}, nil, "203.0.113.7"},
		{"trusted hops are skipped from the right", "10.0.0.0/8", "10.0.0.1:4000", []string{"198.51.100.1, 203.0.113.7, 10.1.2.3"}, nil, "203.0.113.7"},
		{"several X-Forwarded-For lines read as one list", "10.0.0.0/8", "10.0.0.1:4000", []string{"198.51.100.1", "203.0.113.7, 10.1.2.3"}, nil, "203.0.113.7"},
		{"an address with a port is read", "10.0.0.1", "10.0.0.1:4000", []string{"203.0.113.7:5555"}, nil, "203.0.113.7"},
		{"an IPv6 client behind a trusted proxy", "10.0.0.1", "10.0.0.1:4000", []string{"2001:db8::7"}, nil, "2001:db8::7"},
		{"an IPv4-mapped client reads as IPv4", "10.0.0.1", "10.0.0.1:4000", []string{"::ffff:203.0.113.7"}, nil, "203.0.113.7"},
		{"an unreadable hop stops at the last trusted one", "10.0.0.0/8", "10.0.0.1:4000", []string{"203.0.113.7, garbage, 10.1.2.3"}, nil, "10.1.2.3"},
		{"all hops trusted: the left-most is the client", "10.0.0.0/8", "10.0.0.1:4000", []string{"10.9.9.9, 10.1.2.3"}, nil, "10.9.9.9"},
		{"Forwarded for= names the client", "10.0.0.1", "10.0.0.1:4000", nil, []string{`for=198.51.100.1, for="[2001:db8::7]:4711";proto=https`}, "2001:db8::7"},
		{"Forwarded obfuscated for= stops at the trusted peer", "10.0.0.1", "10.0.0.1:4000", nil, []string{`for=_hidden`}, "10.0.0.1"},
		{"X-Forwarded-For is preferred over Forwarded", "10.0.0.1", "10.0.0.1:4000", []string{"203.0.113.7"}, []string{"for=198.51.100.1"}, "203.0.113.7"},
		{"a trusted IPv6 peer", "2001:db8:1::/48", "[2001:db8:1::5]:4000", []string{"203.0.113.7"}, nil, "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tt.forwarded {
				r.Header.Add("Forwarded", v)
			}
			if got := mustProxies(t, tt.trusted).FromRequest(r); got != netip.MustParseAddr(tt.want) {
				t.Errorf("client = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseProxies(t *testing.T) {
	p := mustProxies(t, " 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,")
	for addr, want := range map[string]bool{
		"10.200.0.1": true, "192.0.2.7": true, "192.0.2.8": false, "2001:db8:ffff::1": true,
		"2001:db9::1": false, "::ffff:10.0.0.1": true,
	} {
		if got := p.Trusted(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", addr, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.1:80", "fe80::1%eth0"} {
		if _, err := ParseProxies(bad); err == nil {
			t.Errorf("ParseProxies(%q) accepted it", bad)
		}
	}
	if !mustProxies(t, "").Empty() || mustProxies(t, "").Trusted(netip.MustParseAddr("127.0.0.1")) {
		t.Error("the empty list trusts someone")
	}
}

func TestSourceGroupsIPv6By64AndIPv4ByAddress(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"192.0.2.1", "192.0.2.2", false},
		{"192.0.2.1", "::ffff:192.0.2.1", true},
		{"fe80::1%eth0", "fe80::2", true},
	}
	for _, tt := range tests {
		a, b := Source(netip.MustParseAddr(tt.a)), Source(netip.MustParseAddr(tt.b))
		if (a == b) != tt.same {
			t.Errorf("Source(%s) = %s, Source(%s) = %s; same = %v, want %v", tt.a, a, tt.b, b, a == b, tt.same)
		}
	}
}
