package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/casedrop/casedrop/clientaddr"
	"github.com/casedrop/casedrop/scan/clamd"
	"github.com/casedrop/casedrop/scan/icap"
	"github.com/casedrop/casedrop/web"
	"github.com/casedrop/casedrop/webhook"
)

// config is every setting of `casedrop serve`; each comes from a flag, else
// from its CASEDROP_* environment variable, else from its default.
type config struct {
	DataDir     string
	HTTPSAddr   string
	SFTPAddr    string
	PublicURL   string
	TLSCert     string
	TLSKey      string
	S3Endpoint  string
	S3Bucket    string
	S3AccessKey string
	S3SecretKey string
	S3Region    string
	S3Insecure  bool
	PartSizeMiB int
	// MaxFileGiB, MemoryBudgetMiB and UploadsPerCredential bound what any
	// upload, and any one credential, can make the server hold.
	MaxFileGiB           int
	MemoryBudgetMiB      int
	UploadsPerCredential int
	LogLevel             string
	LogFormat            string
	AdminToken           string // only from CASEDROP_ADMIN_TOKEN: a flag would show in ps

	ScanClamd      string
	ScanICAP       string
	WebhookURL     string
	WebhookSecret  string // only from CASEDROP_WEBHOOK_SECRET, like the admin token
	webhookKey     []byte
	PurgeInterval  string
	purgeEvery     time.Duration
	StallTimeout   string
	stallAfter     time.Duration
	AuditRetention string
	auditKeep      time.Duration
	Instance       string
	SharedLock     bool
	TrustedProxies string
	proxies        clientaddr.Proxies
	EmbedOrigins   string
	embedOrigins   []string
	MetricsAddr    string
	MetricsToken   string
}

// setting describes one config entry, for flags, env, `casedrop help`
// and the README's table (readme_test.go holds the two together).
type setting struct {
	flag, env, def, help string
	// shown is the default as people read it, where def does not say it
	// (an empty def that means "generated", "none", ...).
	shown   string
	str     *string
	boolean *bool
	integer *int
	// data marks the settings that say where the data is: the commands
	// that work on it directly (verify, manifest-key) take these.
	data bool
}

func (c *config) settings() []setting {
	return []setting{
		{flag: "data-dir", env: "CASEDROP_DATA_DIR", def: "./casedrop-data", help: "directory for local storage, generated keys, certificate and admin token", str: &c.DataDir, data: true},
		{flag: "https-addr", env: "CASEDROP_HTTPS_ADDR", def: ":8443", help: "address of the HTTPS listener", str: &c.HTTPSAddr},
		{flag: "sftp-addr", env: "CASEDROP_SFTP_ADDR", def: ":2222", help: "address of the SFTP listener (given out in credentials)", str: &c.SFTPAddr},
		{flag: "public-url", env: "CASEDROP_PUBLIC_URL", def: "", help: "base URL put into credentials and pages", shown: "https://localhost:<https port>", str: &c.PublicURL},
		{flag: "tls-cert", env: "CASEDROP_TLS_CERT", def: "", help: "PEM certificate; the generated one is <data-dir>/tls.crt", shown: "generated self-signed", str: &c.TLSCert},
		{flag: "tls-key", env: "CASEDROP_TLS_KEY", def: "", help: "PEM private key for --tls-cert", shown: "generated self-signed", str: &c.TLSKey},
		{flag: "s3-endpoint", env: "CASEDROP_S3_ENDPOINT", def: "", help: "S3-compatible endpoint host:port; setting it stores in S3", shown: "local disk", str: &c.S3Endpoint, data: true},
		{flag: "s3-bucket", env: "CASEDROP_S3_BUCKET", def: "casedrop", help: "bucket (created if missing)", str: &c.S3Bucket, data: true},
		{flag: "s3-access-key", env: "CASEDROP_S3_ACCESS_KEY", def: "", help: "S3 access key", str: &c.S3AccessKey, data: true},
		{flag: "s3-secret-key", env: "CASEDROP_S3_SECRET_KEY", def: "", help: "S3 secret key (prefer the environment variable)", str: &c.S3SecretKey, data: true},
		{flag: "s3-region", env: "CASEDROP_S3_REGION", def: "", help: "S3 region", str: &c.S3Region, data: true},
		{flag: "s3-insecure", env: "CASEDROP_S3_INSECURE", def: "false", help: "plain HTTP to the S3 endpoint (local MinIO only)", boolean: &c.S3Insecure, data: true},
		{flag: "part-size-mib", env: "CASEDROP_PART_SIZE_MIB", def: "16", help: "size of stored parts in MiB (min 5); an upload holds one to four part buffers", integer: &c.PartSizeMiB},
		{flag: "max-file-gib", env: "CASEDROP_MAX_FILE_GIB", def: "1024", help: "largest file accepted, in GiB (larger declared sizes answer 413)", integer: &c.MaxFileGiB},
		{flag: "memory-budget-mib", env: "CASEDROP_MEMORY_BUDGET_MIB", def: "128", help: "MiB of upload part buffers for the whole process, both doors; uploads wait for a buffer at the limit", integer: &c.MemoryBudgetMiB},
		{flag: "uploads-per-credential", env: "CASEDROP_UPLOADS_PER_CREDENTIAL", def: "8", help: "uploads one credential may write at once, both doors (more answer 429 / an SFTP failure)", integer: &c.UploadsPerCredential},
		{flag: "log-level", env: "CASEDROP_LOG_LEVEL", def: "info", help: "debug, info, warn or error", str: &c.LogLevel},
		{flag: "log-format", env: "CASEDROP_LOG_FORMAT", def: "auto", help: "text, json, or auto: text when stderr is a terminal, else JSON lines", str: &c.LogFormat},
		{flag: "webhook-url", env: "CASEDROP_WEBHOOK_URL", def: "", help: "URL the case system hears file.completed, file.rejected, file.removed, file.scanned, file.released and case.purged on (signed the Standard Webhooks way with CASEDROP_WEBHOOK_SECRET, whsec_...)", shown: "none", str: &c.WebhookURL},
		{flag: "scan-clamd", env: "CASEDROP_SCAN_CLAMD", def: "", help: "ClamAV clamd that scans every landed file, tcp://host:port or unix:///path/clamd.ctl; files are held (scanning) until found clean, quarantined if not. Unset: files are not scanned", shown: "none", str: &c.ScanClamd},
		{flag: "scan-icap", env: "CASEDROP_SCAN_ICAP", def: "", help: "ICAP service (RFC 3507 RESPMOD) that scans every landed file instead of clamd, icap://host[:port]/service; for c-icap's virus_scan add ?mode=simple. Not with --scan-clamd", shown: "none", str: &c.ScanICAP},
		{flag: "stall-timeout", env: "CASEDROP_STALL_TIMEOUT", def: "2m", help: "a response (a download, a zip) whose client reads nothing for this long is ended", str: &c.StallTimeout},
		{flag: "purge-interval", env: "CASEDROP_PURGE_INTERVAL", def: "1h", help: "how often to purge closed cases whose 30 days are over (0 turns the loop off)", str: &c.PurgeInterval},
		{flag: "audit-retention", env: "CASEDROP_AUDIT_RETENTION", def: "0", help: "how long audit events are kept, past the purge of their case too, e.g. 8760h for a year", shown: "0 (forever)", str: &c.AuditRetention},
		{flag: "trusted-proxies", env: "CASEDROP_TRUSTED_PROXIES", def: "", help: "comma-separated CIDRs or addresses of reverse proxies / load balancers whose X-Forwarded-For, Forwarded or PROXY protocol header names the client", shown: "none", str: &c.TrustedProxies},
		{flag: "embed-origins", env: "CASEDROP_EMBED_ORIGINS", def: "", help: "comma-separated origins of the case system's portal (https://support.example.com) that may frame the case page and call tus and the case API cross-origin", shown: "none", str: &c.EmbedOrigins},
		{flag: "metrics-addr", env: "CASEDROP_METRICS_ADDR", def: "", help: "serve /metrics here instead, over plain HTTP, on a loopback or private address (127.0.0.1:9090); the HTTPS port then serves none", shown: "on the HTTPS port", str: &c.MetricsAddr},
		{flag: "metrics-token", env: "CASEDROP_METRICS_TOKEN", def: "", help: "Bearer token /metrics asks for, wherever it is served (prefer the environment variable)", shown: "none", str: &c.MetricsToken},
		{flag: "instance", env: "CASEDROP_INSTANCE", def: "", help: "name of this instance in purge and webhook claims", shown: "host name and pid", str: &c.Instance},
		{flag: "shared-lock", env: "CASEDROP_SHARED_LOCK", def: "false", help: "several instances share the store: upload locks live in the store and every save of an upload's state is conditional (the store must honour conditional writes; checked at start)", boolean: &c.SharedLock, data: true},
	}
}

// parseConfig reads args and the environment for `casedrop serve`.
func parseConfig(name string, args []string, getenv func(string) string) (*config, error) {
	c, rest, err := parseCommand(name, args, getenv, func(setting) bool { return true }, nil)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, usageErrorf("unexpected argument %q", rest[0])
	}
	c.AdminToken = getenv(envAdminToken)
	c.WebhookSecret = getenv(envWebhookSecret)
	if err := c.complete(); err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// dataSettings keeps the settings that say where the data is.
func dataSettings(s setting) bool { return s.data }

// parseCommand reads args and the environment for command name: the
// settings that use keeps become its flags, and add, if not nil, registers
// the command's own. A setting's flag defaults to its environment
// variable, else to its default; a setting left out takes that value all
// the same, so that every field holds one. It returns the arguments that
// are not flags; flags may also follow them ("files get NAME -o PATH").
func parseCommand(name string, args []string, getenv func(string) string, use func(setting) bool, add func(*flag.FlagSet)) (*config, []string, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // help and errors are main's to print, once
	for _, s := range c.settings() {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		target := fs
		if !use(s) {
			target = flag.NewFlagSet(name, flag.ContinueOnError) // sets the field, offers no flag
		}
		if err := bindSetting(target, s, def); err != nil {
			return nil, nil, usageError{err}
		}
	}
	if add != nil {
		add(fs)
	}
	rest, err := parseInterleaved(fs, args)
	return c, rest, err
}

// bindSetting registers s on fs with the default def.
func bindSetting(fs *flag.FlagSet, s setting, def string) error {
	help := fmt.Sprintf("%s (env %s)", s.help, s.env)
	if d := s.defaultText(); d != "" {
		help = fmt.Sprintf("%s (env %s; default %s)", s.help, s.env, d)
	}
	switch {
	case s.boolean != nil:
		b, err := strconv.ParseBool(def)
		if err != nil {
			return fmt.Errorf("%s: %q is not a boolean", s.env, def)
		}
		fs.BoolVar(s.boolean, s.flag, b, help)
	case s.integer != nil:
		n, err := strconv.Atoi(def)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", s.env, def)
		}
		fs.IntVar(s.integer, s.flag, n, help)
	default:
		fs.StringVar(s.str, s.flag, def, help)
	}
	return nil
}

// parseInterleaved parses args with fs, letting flags come after other
// arguments, and returns those; after "--" all are arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpError{fs}
			}
			return nil, usageError{err}
		}
		left := fs.Args()
		if len(left) == 0 {
			return rest, nil
		}
		if used := len(args) - len(left); used > 0 && args[used-1] == "--" {
			return append(rest, left...), nil
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
}

func (c *config) complete() error {
	if c.WebhookURL != "" {
		if c.WebhookSecret == "" {
			return fmt.Errorf("--webhook-url needs CASEDROP_WEBHOOK_SECRET, the key its signatures are made with (make one with: echo whsec_$(openssl rand -base64 32))")
		}
		key, err := webhook.ParseSecret(c.WebhookSecret)
		if err != nil {
			return fmt.Errorf("CASEDROP_WEBHOOK_SECRET: %w", err)
		}
		c.webhookKey = key
	}
	if err := c.checkScanner(); err != nil {
		return err
	}
	every, err := time.ParseDuration(c.PurgeInterval)
	if err != nil || every < 0 {
		return fmt.Errorf("--purge-interval: %q is not a duration like 1h or 15m", c.PurgeInterval)
	}
	c.purgeEvery = every
	stall, err := time.ParseDuration(c.StallTimeout)
	if err != nil || stall < time.Second {
		return fmt.Errorf("--stall-timeout: %q is not a duration of at least 1s, like 2m", c.StallTimeout)
	}
	c.stallAfter = stall
	keep, err := time.ParseDuration(c.AuditRetention)
	if err != nil || keep < 0 {
		return fmt.Errorf("--audit-retention: %q is not a duration like 8760h (0 keeps the trail forever)", c.AuditRetention)
	}
	c.auditKeep = keep
	if c.proxies, err = clientaddr.ParseProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if c.embedOrigins, err = web.ParseEmbedOrigins(c.EmbedOrigins); err != nil {
		return fmt.Errorf("--embed-origins: %w", err)
	}
	switch c.LogFormat {
	case "text", "json", "auto":
	default:
		return fmt.Errorf("--log-format: %q is not text, json or auto", c.LogFormat)
	}
	if err := checkMetricsAddr(c.MetricsAddr); err != nil {
		return fmt.Errorf("--metrics-addr: %w", err)
	}
	if c.Instance == "" {
		host, _ := os.Hostname()
		c.Instance = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if err := c.completeData(); err != nil {
		return err
	}
	if c.PartSizeMiB < 5 || c.PartSizeMiB > 512 {
		return fmt.Errorf("--part-size-mib must be between 5 and 512")
	}
	if c.MaxFileGiB < 1 || c.MaxFileGiB > 5*1024 {
		return fmt.Errorf("--max-file-gib must be between 1 and 5120 (S3's largest object)")
	}
	if c.MemoryBudgetMiB < 2*c.PartSizeMiB {
		return fmt.Errorf("--memory-budget-mib must hold at least two parts (%d MiB at --part-size-mib %d)", 2*c.PartSizeMiB, c.PartSizeMiB)
	}
	if c.UploadsPerCredential < 1 {
		return fmt.Errorf("--uploads-per-credential must be at least 1")
	}
	if _, _, err := net.SplitHostPort(c.HTTPSAddr); err != nil {
		return fmt.Errorf("--https-addr: %w", err)
	}
	if _, _, err := net.SplitHostPort(c.SFTPAddr); err != nil {
		return fmt.Errorf("--sftp-addr: %w", err)
	}
	c.PublicURL, err = c.publicURL()
	return err
}

// publicURL is --public-url without a trailing slash, or else
// https://localhost:<the port of --https-addr>.
func (c *config) publicURL() (string, error) {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/"), nil
	}
	_, httpsPort, err := net.SplitHostPort(c.HTTPSAddr)
	if err != nil {
		return "", fmt.Errorf("--https-addr: %w", err)
	}
	return "https://localhost:" + httpsPort, nil
}

// completeData checks the settings that say where the data is.
func (c *config) completeData() error {
	if c.S3Endpoint != "" && (c.S3AccessKey == "" || c.S3SecretKey == "" || c.S3Bucket == "") {
		return fmt.Errorf("--s3-endpoint needs --s3-bucket, --s3-access-key and --s3-secret-key")
	}
	return nil
}

// The settings only the environment gives: secrets, which a flag would
// show in ps.
const (
	envAdminToken    = "CASEDROP_ADMIN_TOKEN"
	envWebhookSecret = "CASEDROP_WEBHOOK_SECRET"
)

// envOnly describes the settings without a flag, like settings does.
var envOnly = []setting{
	{env: envWebhookSecret, help: "the webhook's Standard Webhooks secret, whsec_ and the base64 of 24 to 64 random bytes; required with --webhook-url"},
	{env: envAdminToken, shown: "<data-dir>/admin-token", help: "the admin token, at least 32 characters (generated on first start if unset)"},
}

// defaultText is the default of s as people read it; "" for none.
func (s setting) defaultText() string {
	if s.shown != "" {
		return s.shown
	}
	return s.def
}

// usage prints the settings of serve, flags first, then those only the
// environment gives.
func (c *config) usage(w io.Writer) {
	fmt.Fprintln(w, "\nsettings of serve (a flag, else its environment variable, else the default):")
	for _, s := range append(c.settings(), envOnly...) {
		name := "--" + s.flag
		if s.flag == "" {
			name = "(environment only)"
		}
		line := fmt.Sprintf("  %-24s %-32s %s", name, s.env, s.help)
		if d := s.defaultText(); d != "" {
			line += " (default " + d + ")"
		}
		fmt.Fprintln(w, line)
	}
}

// checkMetricsAddr checks that addr, if set, is a loopback or private
// address: the metrics listener speaks plain HTTP, for a scraper nearby.
func checkMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !(ip.IsLoopback() || ip.IsPrivate()) {
		return fmt.Errorf("%q: want a loopback or private IP address and a port, like 127.0.0.1:9090 (plain HTTP stays off the public network)", addr)
	}
	return nil
}

// checkScanner checks --scan-clamd and --scan-icap: one scanner at most,
// at an address it can be reached at.
func (c *config) checkScanner() error {
	switch {
	case c.ScanClamd != "" && c.ScanICAP != "":
		return errors.New("--scan-clamd and --scan-icap: set one scanner, not both")
	case c.ScanClamd != "":
		if _, _, err := clamd.ParseAddress(c.ScanClamd); err != nil {
			return fmt.Errorf("--scan-clamd: %w", err)
		}
	case c.ScanICAP != "":
		if _, _, err := icap.ParseURL(c.ScanICAP); err != nil {
			return fmt.Errorf("--scan-icap: %w", err)
		}
	}
	return nil
}

// scanning says whether landed files are scanned.
func (c *config) scanning() bool { return c.ScanClamd != "" || c.ScanICAP != "" }
