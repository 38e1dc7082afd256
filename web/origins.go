package web

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// ParseEmbedOrigins reads a comma-separated list of the origins that may
// embed the case page (Config.EmbedOrigins): each exactly
// scheme://host[:port], http or https, a host name or an IPv4 address. It
// returns them as browsers send them in Origin (scheme and host in lower
// case, no default port), without repeats. An empty list is none.
func ParseEmbedOrigins(list string) ([]string, error) {
	var origins []string
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		o, err := normalOrigin(item)
		if err != nil {
			return nil, fmt.Errorf("%q is not an origin: %s (an origin is scheme://host[:port], e.g. https://support.example.com)", item, err)
		}
		if !slices.Contains(origins, o) {
			origins = append(origins, o)
		}
	}
	return origins, nil
}

// normalOrigin returns s as a browser serialises that origin, or why s
// is not one that may be listed.
func normalOrigin(s string) (string, error) {
	switch {
	case strings.EqualFold(s, "null"):
		// The origin of sandboxed frames and file: pages: anybody's.
		return "", fmt.Errorf("null is the origin of any sandboxed or local document")
	case strings.Contains(s, "*"):
		return "", fmt.Errorf("wildcards are not allowed")
	case strings.ContainsAny(s, " \t"):
		return "", fmt.Errorf("it has a space (separate origins with commas)")
	case strings.Contains(s, "#"):
		return "", fmt.Errorf("it has a fragment")
	case strings.Contains(s, "?"):
		return "", fmt.Errorf("it has a query")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("it does not parse as a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", fmt.Errorf("the scheme must be http or https")
	case u.Opaque != "" || u.Host == "":
		return "", fmt.Errorf("it has no host")
	case u.User != nil:
		return "", fmt.Errorf("it has a user name")
	case u.Path != "" || u.RawPath != "":
		return "", fmt.Errorf("it has a path")
	}
	host := strings.ToLower(u.Hostname())
	if !isDNSName(host) {
		// CSP's frame-ancestors names hosts by name or IPv4 address only.
		return "", fmt.Errorf("the host must be a name or an IPv4 address, in ASCII (xn-- for international names)")
	}
	port := u.Port()
	if strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("the port is empty")
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("the port must be 1 to 65535")
		}
		port = strconv.Itoa(n)
	}
	if port == "" || scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		return scheme + "://" + host, nil
	}
	return scheme + "://" + host + ":" + port, nil
}

// isDNSName reports whether host is made of dot-separated labels of
// letters, digits and hyphens (an IPv4 address is).
func isDNSName(host string) bool {
	for _, label := range strings.Split(host, ".") {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
