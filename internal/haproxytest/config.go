package haproxytest

import (
	"text/template"
)

// config is what the configuration is made of.
type config struct {
	HTTPS, SFTP string // the frontends' host:port
	Bundle      string // the HTTPS frontend's certificate and key, one PEM file
	Socket      string // the stats socket, for the servers' states
	HealthPath  string
	Servers     []Server
}

// configTemplate is the balancer. Why each setting:
//
//   - HTTP mode keeps client connections alive and balances each request
//     on its own (HAProxy's http-keep-alive mode, its default), so one tus
//     upload's requests go to every server in turn, even on one kept-alive
//     connection or one HTTP/2 connection. Idle server connections are
//     shared and reused only once a server is chosen (http-reuse safe, the
//     default). prefer-last-server with http-reuse never would keep a
//     client on one server (TestEveryRequestOnOneKeptAliveConnection... sees
//     it), as would a hashing balance (source, uri) or a cookie.
//   - Servers are checked every 500 ms and taken out after one failed check
//     (fall 1), back after one good one (rise 1); a connection a dead
//     server refuses is retried (retries 3) on another server (redispatch 1:
//     at every retry), so a client rarely sees the dead one at all.
//   - The HTTPS backend re-encrypts (ssl verify none: the instances present
//     their own generated certificates) and adds X-Forwarded-For.
//   - The SFTP backend is TCP, each connection to the next server, opened
//     with a PROXY protocol v2 header naming the client. Its health check
//     sends one too and expects the SSH banner.
//   - Logs go to stderr, which the test keeps in a file: one line per
//     request or connection, naming the server that got it.
var configTemplate = template.Must(template.New("haproxy.cfg").Parse(`global
    log stderr format raw local0 info
    stats socket {{.Socket}} mode 600 level admin
    nbthread 1

defaults
    log global
    timeout connect 2s
    timeout client 2m
    timeout server 2m
    timeout check 2s
    retries 3
    option redispatch 1

frontend https-in
    mode http
    option httplog
    option http-keep-alive
    option forwardfor
    bind {{.HTTPS}} ssl crt {{.Bundle}} alpn h2,http/1.1
    default_backend https

backend https
    mode http
    balance roundrobin
    no option prefer-last-server
    option httpchk
    http-check send meth GET uri {{.HealthPath}}
    http-check expect status 200
    default-server ssl verify none check inter 500ms fall 1 rise 1
{{- range .Servers}}
    server {{.Name}} {{.HTTPS}}
{{- end}}

frontend sftp-in
    mode tcp
    option tcplog
    bind {{.SFTP}}
    default_backend sftp

backend sftp
    mode tcp
    balance roundrobin
    option tcp-check
    tcp-check connect send-proxy
    tcp-check expect rstring ^SSH-2\.0-
    default-server send-proxy-v2 check inter 500ms fall 1 rise 1
{{- range .Servers}}
    server {{.Name}} {{.SFTP}}
{{- end}}
`))
