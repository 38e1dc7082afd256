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
  casedrop serve [flags]   run the HTTPS (tus, API) server
  casedrop version         print the version
  casedrop help            this text; "casedrop serve -h" lists every setting
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
		os.Exit(1)
	}
}
