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

func main() {
	if len(os.Args) < 2 {
		writeUsage(os.Stderr)
		os.Exit(2)
	}
	err := runCommand(os.Args[1:], os.Stdout)
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
