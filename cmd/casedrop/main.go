// Command casedrop is the support-case file exchange server and its CLI.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
)

type tlsCert = tls.Certificate

// buildVersion is set at build time with -ldflags "-X main.buildVersion=...".
var buildVersion = ""

func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			return "dev-" + rev[:12] + dirty
		}
	}
	return "dev"
}

const usage = `casedrop: file exchange for support cases

usage:
  casedrop serve [flags]   run the server: HTTPS (API, tus, pages) and SFTP
  casedrop files list --case C [--json]
                           list a case's files, from a running server (--server)
  casedrop files get --case C NAME [-o PATH]
                           download a file, resuming a partial one, and check its SHA-256
  casedrop files release --case C --reason WHY NAME
                           serve a quarantined file after all (admin token; audited)
  casedrop verify [--case C [--file NAME]]
                           re-read stored files, directly from the data, and compare
                           each with its recorded SHA-256
  casedrop manifest-key [--server URL]
                           print the public key that checks SHA256SUMS signatures
  casedrop case open|close|reopen|show CASE, casedrop case list
                           manage cases
  casedrop credentials issue CASE [--role customer|staff] [--ttl-hours N] [--ssh-key FILE.pub]
  casedrop credentials link CASE [--ttl 10m]
  casedrop credentials revoke ID, casedrop credentials list CASE
                           issue, revoke and list credentials; link prints an upload
                           link, which the case page opened once trades for a new
                           customer credential (on the data, under CASEDROP_PUBLIC_URL)
  casedrop purge [--dry-run] [--as-of RFC3339]
                           purge closed cases whose 30 days are over
  casedrop audit [CASE] [--since T] [--until T] [--type T,...] [--credential ID] [--file NAME]
                           who did what with a case, from where, when;
                           without CASE, the server-wide trail (refused logins)
                           (case, credentials, purge and audit work against a running
                           server with --server URL or CASEDROP_SERVER, else directly
                           on the data: --data-dir or the --s3-* settings; --json for scripts)
  casedrop keys rotate, casedrop keys list
                           add a credential signing key, which signs from then on
                           (running servers switch within a minute; older keys
                           still verify), or list the keys; directly on the data
  casedrop healthcheck [--https-addr A] [--data-dir D]
                           exit 0 if the server on this host answers /readyz, else 1
                           (the image's HEALTHCHECK: distroless has no curl)
  casedrop admin-token [--data-dir D]
                           print the admin token (CASEDROP_ADMIN_TOKEN or <data-dir>/admin-token)
  casedrop version         print the version
  casedrop help            this text; "casedrop <command> -h" lists a command's flags

exit status: 0 done, 1 failed or problems found (verify, a digest mismatch),
2 a usage error, 3 the case or credential named does not exist
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "files":
		err = files(os.Args[2:])
	case "verify":
		err = verify(os.Args[2:])
	case "manifest-key":
		err = manifestKey(os.Args[2:])
	case "keys":
		err = keysCommand(os.Args[2:])
	case "healthcheck":
		err = healthcheck(os.Args[2:])
	case "admin-token":
		err = adminToken(os.Args[2:])
	case "case", "credentials", "purge", "audit":
		err = adminCommand(os.Args[1], os.Args[2:])
	case "version", "--version", "-version":
		fmt.Println("casedrop", version())
	case "help", "-h", "--help":
		fmt.Print(usage)
		(&config{}).usage(os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "casedrop: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "casedrop:", err)
		if errors.As(err, new(usageError)) {
			os.Exit(2)
		}
		if errors.Is(err, errNotFound) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

// usageError is a mistake in how a command was called: exit status 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}
