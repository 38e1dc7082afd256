// Package clientaddr finds the address of the client behind a connection or
// a request: the peer itself, or, when the peer is a trusted reverse proxy
// or load balancer, the address that proxy reports (X-Forwarded-For or
// Forwarded over HTTP, the PROXY protocol on the SFTP port). It is also the
// one place where addresses are grouped into the sources that failed logins
// are counted against.
package clientaddr

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies is the set of trusted proxies; the zero value trusts none.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies reads a comma-separated list of CIDRs or single addresses
// ("10.0.0.0/8, 192.0.2.7, 2001:db8::/32"); the empty string trusts none.
func ParseProxies(list string) (Proxies, error) {
	var p Proxies
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.Contains(item, "/") {
			prefix, err := netip.ParsePrefix(item)
			if err != nil {
				return Proxies{}, fmt.Errorf("trusted proxy %q is not an address or a CIDR", item)
			}
			if prefix.Addr().Is4In6() {
				prefix = netip.PrefixFrom(prefix.Addr().Unmap(), max(prefix.Bits()-96, 0))
			}
			p.prefixes = append(p.prefixes, prefix.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil || a.Zone() != "" {
			return Proxies{}, fmt.Errorf("trusted proxy %q is not an address or a CIDR", item)
		}
		a = a.Unmap()
		p.prefixes = append(p.prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// Trusted reports whether a is one of the trusted proxies.
func (p Proxies) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, prefix := range p.prefixes {
		if prefix.Contains(a) {
			return true
		}
	}
	return false
}

// Empty reports whether no proxy is trusted.
func (p Proxies) Empty() bool { return len(p.prefixes) == 0 }

// maxHops bounds how many forwarded addresses are looked at: no real chain
// of proxies is longer, and the header is the client's to make long.
const maxHops = 32

// FromRequest returns the address of the client that made r. It is the
// peer, unless the peer is a trusted proxy: then it is the right-most
// address in X-Forwarded-For (or, without that header, in Forwarded's for=)
// that is not itself a trusted proxy. Every proxy appends the address it
// got the request from, so only the part of the list right of the first
// untrusted address was written by someone trusted; an entry that cannot
// be read stops the walk at the last trusted hop.
func (p Proxies) FromRequest(r *http.Request) netip.Addr {
	peer, _ := Parse(r.RemoteAddr)
	if !p.Trusted(peer) {
		return peer
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		return p.walk(peer, forwardedFor(xff))
	}
	return p.walk(peer, forwardedElements(r.Header.Values("Forwarded")))
}

// walk goes right to left through hops, the addresses proxies appended,
// starting from the trusted peer.
func (p Proxies) walk(peer netip.Addr, hops []string) netip.Addr {
	client := peer
	for i := len(hops) - 1; i >= 0 && len(hops)-i <= maxHops; i-- {
		a, ok := Parse(hops[i])
		if !ok {
			return client
		}
		client = a
		if !p.Trusted(a) {
			return a
		}
	}
	return client
}

// forwardedFor splits X-Forwarded-For values into their addresses.
func forwardedFor(values []string) []string {
	var hops []string
	for _, v := range values {
		for _, h := range strings.Split(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	return hops
}

// forwardedElements returns the for= of each element of RFC 7239
// Forwarded values; an element without one counts as unreadable.
func forwardedElements(values []string) []string {
	var hops []string
	for _, v := range values {
		for _, element := range strings.Split(v, ",") {
			hop := ""
			for _, pair := range strings.Split(element, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					hop = strings.Trim(val, `"`)
				}
			}
			hops = append(hops, hop)
		}
	}
	return hops
}

// Parse reads an address written as "192.0.2.1", "192.0.2.1:80",
// "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:80". IPv4-mapped IPv6
// addresses become IPv4 and zones are dropped, so that one host has one
// spelling.
func Parse(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
				return Parse(s[1 : len(s)-1])
			}
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// FromNetAddr returns the IP address of a (a *net.TCPAddr, or anything
// whose String is host:port); the zero Addr if it has none.
func FromNetAddr(a net.Addr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap().WithZone("")
	}
	addr, _ := Parse(a.String())
	return addr
}

// Source is the group an address's failed logins are counted in: the
// IPv4 address itself, or the /64 of an IPv6 address, since one host is
// routinely given a whole /64 and picks addresses from it at will.
func Source(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is4():
		return a.String()
	}
	return netip.PrefixFrom(a.WithZone(""), 64).Masked().String()
}
