package main

import (
	"bufio"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/web"
)

// No Docker engine runs where the tests run: these tests read
// docker-compose.yml and deploy/haproxy.cfg and check that the profile
// "cluster" is what README's "Several instances" asks for, by casedrop's
// own reading of each instance's settings and HAProxy's of its config.

const (
	composePath = "../../docker-compose.yml"
	haproxyPath = "../../deploy/haproxy.cfg"
)

// composeFile is the part of docker-compose.yml these tests read.
type composeFile struct {
	Services map[string]composeService
	Networks map[string]struct {
		IPAM struct{ Config []struct{ Subnet string } }
	}
}

type composeService struct {
	Build       any
	Image       string
	Healthcheck struct{ Test []string }
	Profiles    []string
	Environment map[string]string
	Ports       []string
	Volumes     []any
	Networks    any // a list of names, or names with settings
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// interpolation is Compose's ${NAME} and ${NAME:-default}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// interpolate replaces what Compose would, from vars; an unset name takes
// its default.
func interpolate(s string, vars map[string]string) string {
	return interpolation.ReplaceAllStringFunc(s, func(ref string) string {
		m := interpolation.FindStringSubmatch(ref)
		if v := vars[m[1]]; v != "" {
			return v
		}
		return m[2]
	})
}

// serveConfig is casedrop's reading of a service's environment, as
// `casedrop serve` would read it with vars in the operator's shell.
func serveConfig(t *testing.T, s composeService, vars map[string]string) *config {
	t.Helper()
	resolved := map[string]string{}
	for k, v := range s.Environment {
		resolved[k] = interpolate(v, vars)
	}
	cfg, err := parseConfig("serve", nil, env(resolved))
	if err != nil {
		t.Fatalf("casedrop refuses the environment %v: %v", resolved, err)
	}
	return cfg
}

func port(t *testing.T, hostPort string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// clusterInstances returns the casedrop services of the profile "cluster"
// (those built from this repository), by name.
func clusterInstances(c composeFile) map[string]composeService {
	out := map[string]composeService{}
	for name, s := range c.Services {
		if s.Build != nil && slices.Contains(s.Profiles, "cluster") {
			out[name] = s
		}
	}
	return out
}

// haproxyAddress is the fixed address of the haproxy service.
func haproxyAddress(t *testing.T, c composeFile) netip.Addr {
	t.Helper()
	nets, _ := c.Services["haproxy"].Networks.(map[string]any)
	for _, n := range nets {
		settings, _ := n.(map[string]any)
		if a, ok := settings["ipv4_address"].(string); ok {
			addr, err := netip.ParseAddr(a)
			if err != nil {
				t.Fatal(err)
			}
			return addr
		}
	}
	t.Fatal("the haproxy service has no fixed ipv4_address, which the instances could trust")
	return netip.Addr{}
}

func TestComposeDefaultIsStillMinIOAndOneInstance(t *testing.T) {
	c := readCompose(t)
	var always []string
	for name, s := range c.Services {
		if len(s.Profiles) == 0 {
			always = append(always, name)
		}
	}
	slices.Sort(always)
	if !slices.Equal(always, []string{"casedrop", "minio"}) {
		t.Fatalf("`docker compose up` starts %v, want casedrop and minio", always)
	}
	cfg := serveConfig(t, c.Services["casedrop"], nil)
	if cfg.SharedLock || cfg.S3Endpoint == "" {
		t.Fatalf("the single instance: shared lock %v, S3 %q; want S3 without the shared lock", cfg.SharedLock, cfg.S3Endpoint)
	}
	if got := c.Services["casedrop"].Ports; !slices.Equal(got, []string{"8443:8443", "2222:2222"}) {
		t.Fatalf("the single instance publishes %v, want 8443 and 2222", got)
	}
}

func TestComposeNamesOnlySettingsCasedropHas(t *testing.T) {
	known := map[string]bool{}
	for _, s := range append((&config{}).settings(), envOnly...) {
		known[s.env] = true
	}
	for name, s := range readCompose(t).Services {
		for k := range s.Environment {
			if strings.HasPrefix(k, "CASEDROP_") && !known[k] {
				t.Errorf("service %s sets %s, which casedrop does not read", name, k)
			}
		}
	}
}

func TestComposeClusterInstancesShareTheStoreUnderNamesOfTheirOwn(t *testing.T) {
	c := readCompose(t)
	instances := clusterInstances(c)
	if len(instances) != 3 {
		t.Fatalf("the profile cluster has %d casedrop instances, want 3", len(instances))
	}
	proxy := haproxyAddress(t, c)
	single := serveConfig(t, c.Services["casedrop"], nil)
	token := strings.Repeat("t", auth.MinAdminTokenLen)
	names := map[string]bool{}
	var first *config
	for name, s := range instances {
		cfg := serveConfig(t, s, map[string]string{"CASEDROP_ADMIN_TOKEN": token})
		if !cfg.SharedLock {
			t.Errorf("%s runs without --shared-lock", name)
		}
		if names[cfg.Instance] || cfg.Instance != name {
			t.Errorf("%s has the instance name %q; want its own service name", name, cfg.Instance)
		}
		names[cfg.Instance] = true
		if !cfg.proxies.Trusted(proxy) {
			t.Errorf("%s does not trust HAProxy's address %s (--trusted-proxies %q)", name, proxy, cfg.TrustedProxies)
		}
		if cfg.AdminToken != token {
			t.Errorf("%s does not take CASEDROP_ADMIN_TOKEN from the operator's environment", name)
		}
		if cfg.S3Bucket == single.S3Bucket {
			t.Errorf("%s shares the bucket %q of the single instance, which runs without the shared lock", name, cfg.S3Bucket)
		}
		if first == nil {
			first = cfg
			continue
		}
		if cfg.S3Endpoint != first.S3Endpoint || cfg.S3Bucket != first.S3Bucket || cfg.PublicURL != first.PublicURL || cfg.SFTPAddr != first.SFTPAddr {
			t.Errorf("%s differs from the others in store, public URL or SFTP address: %+v", name, cfg)
		}
	}
	// Without the operator's token every instance must refuse to start,
	// not make one of its own: two of three requests would be refused.
	for name, s := range instances {
		unset := interpolate(s.Environment[envAdminToken], nil)
		if err := auth.CheckAdminToken(unset); err == nil {
			t.Errorf("%s starts without CASEDROP_ADMIN_TOKEN set, with the token %q", name, unset)
		}
	}
}

// haproxySection is a section of haproxy.cfg: its kind (global, defaults,
// frontend, backend, ...), its name, and its lines split into words.
type haproxySection struct {
	kind, name string
	lines      [][]string
}

func readHAProxy(t *testing.T) []haproxySection {
	t.Helper()
	f, err := os.Open(haproxyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sections []haproxySection
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		words := strings.Fields(line)
		switch {
		case len(words) == 0:
		case line[0] != ' ' && line[0] != '\t':
			s := haproxySection{kind: words[0]}
			if len(words) > 1 {
				s.name = words[1]
			}
			sections = append(sections, s)
		case len(sections) == 0:
			t.Fatalf("haproxy.cfg: %q outside a section", line)
		default:
			last := &sections[len(sections)-1]
			last.lines = append(last.lines, words)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sections
}

// find returns the lines of s that start with keyword.
func (s haproxySection) find(keyword ...string) [][]string {
	var out [][]string
	for _, l := range s.lines {
		if len(l) >= len(keyword) && slices.Equal(l[:len(keyword)], keyword) {
			out = append(out, l)
		}
	}
	return out
}

// servers returns each server of backend s as "name address" and its
// settings, default-server's included.
func (s haproxySection) servers() map[string][]string {
	var defaults []string
	for _, l := range s.find("default-server") {
		defaults = append(defaults, l[1:]...)
	}
	out := map[string][]string{}
	for _, l := range s.find("server") {
		out[l[1]+" "+l[2]] = append(slices.Clone(defaults), l[3:]...)
	}
	return out
}

// frontendsByMode returns each frontend's bind port and backend by its
// mode, http or tcp.
func frontendsByMode(t *testing.T, sections []haproxySection) map[string]struct{ bindPort, backend string } {
	t.Helper()
	out := map[string]struct{ bindPort, backend string }{}
	for _, s := range sections {
		if s.kind != "frontend" {
			continue
		}
		mode, binds, backends := s.find("mode"), s.find("bind"), s.find("default_backend")
		if len(mode) != 1 || len(binds) != 1 || len(backends) != 1 {
			t.Fatalf("frontend %s: want one mode, one bind and one default_backend", s.name)
		}
		out[mode[0][1]] = struct{ bindPort, backend string }{port(t, binds[0][1]), backends[0][1]}
	}
	return out
}

func section(t *testing.T, sections []haproxySection, kind, name string) haproxySection {
	t.Helper()
	for _, s := range sections {
		if s.kind == kind && s.name == name {
			return s
		}
	}
	t.Fatalf("haproxy.cfg has no %s %s", kind, name)
	return haproxySection{}
}

func TestHAProxyConfigSendsEachDoorToEveryInstance(t *testing.T) {
	c := readCompose(t)
	sections := readHAProxy(t)
	frontends := frontendsByMode(t, sections)
	token := strings.Repeat("t", auth.MinAdminTokenLen)
	wantHTTPS, wantSFTP := map[string][]string{}, map[string][]string{}
	var publicURL, sftpPort string
	for name, s := range clusterInstances(c) {
		cfg := serveConfig(t, s, map[string]string{"CASEDROP_ADMIN_TOKEN": token})
		wantHTTPS[name+" "+name+":"+port(t, cfg.HTTPSAddr)] = nil
		wantSFTP[name+" "+name+":"+port(t, cfg.SFTPAddr)] = nil
		publicURL, sftpPort = cfg.PublicURL, port(t, cfg.SFTPAddr)
	}

	t.Run("HTTPS ends TLS and re-encrypts to each instance's HTTPS port, checking /readyz", func(t *testing.T) {
		backend := section(t, sections, "backend", frontends["http"].backend)
		servers := backend.servers()
		if !sameKeys(servers, wantHTTPS) {
			t.Fatalf("HTTPS servers %v, want %v", keys(servers), keys(wantHTTPS))
		}
		for s, settings := range servers {
			if !slices.Contains(settings, "ssl") || !slices.Contains(settings, "check") {
				t.Errorf("server %s: %v, want ssl and check", s, settings)
			}
		}
		if chk := backend.find("option", "httpchk"); len(chk) != 1 || !slices.Equal(chk[0][2:], []string{"GET", "/readyz"}) {
			t.Errorf("health check %v, want GET /readyz", chk)
		}
		u, err := url.Parse(publicURL)
		if err != nil {
			t.Fatal(err)
		}
		if frontends["http"].bindPort != u.Port() {
			t.Errorf("HAProxy listens for HTTPS on %s; the credentials name %s", frontends["http"].bindPort, publicURL)
		}
	})

	t.Run("SFTP goes to each instance's SFTP port with a PROXY v2 header, on the port credentials give out", func(t *testing.T) {
		servers := section(t, sections, "backend", frontends["tcp"].backend).servers()
		if !sameKeys(servers, wantSFTP) {
			t.Fatalf("SFTP servers %v, want %v", keys(servers), keys(wantSFTP))
		}
		for s, settings := range servers {
			if !slices.Contains(settings, "send-proxy-v2") {
				t.Errorf("server %s: %v, want send-proxy-v2", s, settings)
			}
		}
		if frontends["tcp"].bindPort != sftpPort {
			t.Errorf("HAProxy listens for SFTP on %s; the credentials give out port %s (--sftp-addr)", frontends["tcp"].bindPort, sftpPort)
		}
	})

	t.Run("the haproxy service publishes both doors, mounts this config and the certificate it names", func(t *testing.T) {
		h := c.Services["haproxy"]
		if !regexp.MustCompile(`^haproxy:\d+\.\d+$`).MatchString(h.Image) {
			t.Errorf("image %q, want a pinned haproxy:MAJOR.MINOR", h.Image)
		}
		for _, p := range []string{frontends["http"].bindPort, frontends["tcp"].bindPort} {
			if !slices.Contains(h.Ports, p+":"+p) {
				t.Errorf("ports %v, want %s:%s", h.Ports, p, p)
			}
		}
		mounts := map[string]string{}
		for _, v := range h.Volumes {
			switch v := v.(type) {
			case string:
				parts := strings.Split(v, ":")
				mounts[parts[1]] = parts[0]
			case map[string]any:
				mounts[v["target"].(string)], _ = v["source"].(string)
			}
		}
		if mounts["/usr/local/etc/haproxy/haproxy.cfg"] != "./deploy/haproxy.cfg" {
			t.Errorf("mounts %v, want ./deploy/haproxy.cfg as the image's config", mounts)
		}
		cert := certificatePath(t, sections)
		if mounts[cert] == "" {
			t.Errorf("haproxy.cfg reads the certificate %s, which the service does not mount (mounts %v)", cert, mounts)
		}
	})

	t.Run("HAProxy's fixed address lies in the cluster network", func(t *testing.T) {
		subnets := c.Networks["cluster"].IPAM.Config
		if len(subnets) != 1 {
			t.Fatalf("network cluster: %d subnets, want 1", len(subnets))
		}
		prefix, err := netip.ParsePrefix(subnets[0].Subnet)
		if err != nil || !prefix.Contains(haproxyAddress(t, c)) {
			t.Fatalf("HAProxy's %s is not in the cluster network %s (%v)", haproxyAddress(t, c), subnets[0].Subnet, err)
		}
	})
}

// certificatePath is the file haproxy.cfg's HTTPS bind reads when
// CASEDROP_CERT is unset.
func certificatePath(t *testing.T, sections []haproxySection) string {
	t.Helper()
	for _, s := range sections {
		for _, l := range s.find("bind") {
			if i := slices.Index(l, "crt"); i > 0 && i+1 < len(l) {
				return interpolateHAProxy(strings.Trim(l[i+1], `"`))
			}
		}
	}
	t.Fatal("haproxy.cfg binds no certificate")
	return ""
}

// interpolateHAProxy expands HAProxy's "${NAME-default}" with NAME unset.
func interpolateHAProxy(s string) string {
	return regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*-([^}]*)\}`).ReplaceAllString(s, "$1")
}

func sameKeys(a, b map[string][]string) bool { return slices.Equal(keys(a), keys(b)) }

func keys(m map[string][]string) []string { return slices.Sorted(maps.Keys(m)) }

// A download link rides in the query string (?dl=): HAProxy's log of the
// HTTPS requests names their paths only.
func TestHAProxyLogsHTTPSRequestsWithoutTheirQueryStrings(t *testing.T) {
	https := section(t, readHAProxy(t), "frontend", "https")
	formats := https.find("log-format")
	if len(https.find("option", "httplog")) > 0 || len(formats) != 1 {
		t.Fatalf("frontend https: option httplog %v, log-format %v; want one log-format of its own", https.find("option", "httplog"), formats)
	}
	format := strings.Join(formats[0][1:], " ")
	// %r is the request line, %HU the URI, %HQ the query string.
	if whole := regexp.MustCompile(`%(\{[^}]*\})?(r|HU|HQ)([^a-zA-Z]|$)`).FindString(format); whole != "" {
		t.Errorf("the log-format logs %q, with the query string: %s", whole, format)
	}
	if !strings.Contains(format, "%HP") {
		t.Errorf("the log-format does not log the path (%%HP): %s", format)
	}
}

// TestHAProxyAcceptsItsConfig runs HAProxy's own check of haproxy.cfg
// (make test-deps installs Debian's haproxy), with a certificate made here
// in place of the operator's. The instances' names resolve only inside the
// compose network: that is the one warning allowed.
func TestHAProxyAcceptsItsConfig(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		bin = "/usr/sbin/haproxy" // not on every user's PATH
		if _, statErr := os.Stat(bin); statErr != nil {
			t.Fatalf("haproxy is needed: run `make test-deps` (%v)", err)
		}
	}
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if _, _, err := web.LoadOrCreateCertificate(certPath, keyPath, []string{"localhost"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	var pemFile []byte
	for _, p := range []string{certPath, keyPath} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		pemFile = append(pemFile, b...)
	}
	combined := filepath.Join(dir, "casedrop.pem")
	if err := os.WriteFile(combined, pemFile, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", "-f", haproxyPath)
	cmd.Env = append(os.Environ(), "CASEDROP_CERT="+combined)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c -f deploy/haproxy.cfg: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if (strings.Contains(line, "[WARNING]") || strings.Contains(line, "[ALERT]")) && !strings.Contains(line, "could not resolve address") {
			t.Errorf("haproxy -c: %s", line)
		}
	}
}
