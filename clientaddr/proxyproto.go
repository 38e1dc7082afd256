package clientaddr

import (
	"net"

	"github.com/pires/go-proxyproto"
)

// ProxyProtocol wraps ln for the PROXY protocol (v1 and v2, as HAProxy and
// cloud load balancers send it): a connection from a trusted proxy may
// begin with a header naming the client, whose address RemoteAddr then
// returns, and without one it is the proxy's own connection. A header from
// any other peer fails the connection's first read or write, so that the
// server closes it: nobody else may say where a connection comes from.
func (p Proxies) ProxyProtocol(ln net.Listener) net.Listener {
	return &proxyproto.Listener{
		Listener: ln,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if p.Trusted(FromNetAddr(o.Upstream)) {
				return proxyproto.USE, nil
			}
			return proxyproto.REJECT, nil
		},
	}
}
