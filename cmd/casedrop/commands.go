package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one command of casedrop: main dispatches through commands,
// help is written from them, and the help test walks them, so that a new
// command is in all three or in none.
type command struct {
	name     string
	synopsis string // the arguments, after "casedrop <name>"
	summary  string
	verbs    []verb // the subcommands, for a command that has them
	run      func(args []string) error
}

// verb is a subcommand: "casedrop <command> <verb> <synopsis>".
type verb struct{ name, synopsis, summary string }

// commands is every command, in the order help lists them.
var commands = []command{
	{name: "serve", synopsis: "[flags]", summary: "run the server: HTTPS (API, tus, pages) and SFTP", run: serve},
	{name: "files", summary: "a case's files, from a running server (--server)", run: files, verbs: []verb{
		{"list", "--case C [--json]", "list a case's files"},
		{"get", "--case C NAME [-o PATH]", "download a file, resuming a partial one, and check its SHA-256"},
		{"release", "--case C --reason WHY NAME", "serve a quarantined file after all (admin token; audited)"},
	}},
	{name: "verify", synopsis: "[--case C [--file NAME]]", summary: "re-read stored files, directly from the data, and compare each with its recorded SHA-256", run: verify},
	{name: "manifest-key", synopsis: "[--server URL]", summary: "print the public key that checks SHA256SUMS signatures", run: manifestKey},
	{name: "case", summary: "manage cases", run: adminRunner("case"), verbs: []verb{
		{"open", "CASE", "open a case"},
		{"close", "CASE", "close a case; it is purged when its 30 days are over"},
		{"reopen", "CASE", "reopen a closed case"},
		{"show", "CASE", "show a case"},
		{"list", "", "list the cases"},
	}},
	{name: "credentials", summary: "issue, revoke and list credentials", run: adminRunner("credentials"), verbs: []verb{
		{"issue", "CASE [--role customer|staff] [--ttl-hours N] [--ssh-key FILE.pub]", "issue a credential of a case"},
		{"link", "CASE [--ttl 10m]", "print an upload link, which the case page opened once trades for a new customer credential (under CASEDROP_PUBLIC_URL)"},
		{"revoke", "ID", "revoke a credential"},
		{"list", "CASE", "list a case's credentials"},
	}},
	{name: "purge", synopsis: "[--dry-run] [--as-of RFC3339]", summary: "purge closed cases whose 30 days are over", run: adminRunner("purge")},
	{name: "audit", synopsis: "[CASE] [--since T] [--until T] [--type T,...] [--credential ID] [--file NAME]", summary: "who did what with a case, from where, when; without CASE, the server-wide trail (refused logins)", run: adminRunner("audit")},
	{name: "keys", summary: "the credential signing keys, directly on the data", run: keysCommand, verbs: []verb{
		{"rotate", "", "add a signing key, which signs from then on (running servers switch within a minute; older keys still verify)"},
		{"list", "", "list the keys"},
	}},
	{name: "healthcheck", synopsis: "[--https-addr A] [--data-dir D]", summary: "exit 0 if the server on this host answers /readyz, else 1 (the image's HEALTHCHECK: distroless has no curl)", run: healthcheck},
	{name: "admin-token", synopsis: "[--data-dir D]", summary: "print the admin token (CASEDROP_ADMIN_TOKEN or <data-dir>/admin-token)", run: adminToken},
	{name: "version", summary: "print the version", run: printVersion},
}

// adminNote is what help says of the admin commands' two ways to work.
const adminNote = `case, credentials, purge and audit act through a running server with
--server URL (or CASEDROP_SERVER); without it they act on the data directly:
--data-dir or the --s3-* settings. --json prints JSON for scripts.`

// exitNote is what help says of exit statuses.
const exitNote = `exit status: 0 done, 1 failed or problems found (verify, a digest mismatch),
2 a usage error, 3 the case or credential named does not exist`

func printVersion(args []string) error {
	if len(args) > 0 && !isHelp(args[0]) {
		return usageErrorf("version takes no arguments")
	}
	if len(args) > 0 {
		return helpError{}
	}
	fmt.Println("casedrop", version())
	return nil
}

// isHelp says whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

func findCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// runCommand runs the command args name, writing help to out: for
// "casedrop help [COMMAND [VERB]]", for "-h" anywhere a command or its
// verb would be, and for a flag set's -h (helpError). Help touches nothing
// else: it is answered before a command opens the store.
func runCommand(args []string, out io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		if len(args) > 1 {
			return runCommand(append(args[1:], "-h"), out)
		}
		writeUsage(out)
		return helpError{}
	}
	c, ok := findCommand(args[0])
	if !ok {
		if args[0] == "--version" || args[0] == "-version" {
			return printVersion(nil)
		}
		return usageErrorf("unknown command %q (casedrop help lists them)", args[0])
	}
	rest := args[1:]
	if len(c.verbs) > 0 && len(rest) > 0 && isHelp(rest[0]) {
		writeCommandUsage(out, c)
		return helpError{}
	}
	if len(c.verbs) > 0 && (len(rest) == 0 || !c.hasVerb(rest[0])) {
		return usageErrorf("%s: want one of %s (casedrop %s -h)", c.name, c.verbNames(), c.name)
	}
	err := c.run(rest)
	var h helpError
	if errors.As(err, &h) {
		writeFlagsUsage(out, c, h.flags)
	}
	return err
}

func (c command) hasVerb(name string) bool {
	for _, v := range c.verbs {
		if v.name == name {
			return true
		}
	}
	return false
}

func (c command) verbNames() string {
	names := make([]string, len(c.verbs))
	for i, v := range c.verbs {
		names[i] = v.name
	}
	return strings.Join(names, ", ")
}

// helpError is a request for help; flags, if not nil, are the flags of the
// command asked about. It is flag.ErrHelp: exit status 0.
type helpError struct{ flags *flag.FlagSet }

func (helpError) Error() string        { return flag.ErrHelp.Error() }
func (helpError) Is(target error) bool { return target == flag.ErrHelp }

// writeUsage writes casedrop's help: every command, then serve's settings.
func writeUsage(w io.Writer) {
	fmt.Fprintln(w, "casedrop: file exchange for support cases")
	fmt.Fprintln(w, "\nusage:")
	for _, c := range commands {
		if len(c.verbs) == 0 {
			fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace("casedrop "+c.name+" "+c.synopsis), c.summary)
			continue
		}
		for _, v := range c.verbs {
			fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace("casedrop "+c.name+" "+v.name+" "+v.synopsis), v.summary)
		}
	}
	fmt.Fprintln(w, "  casedrop help [COMMAND [VERB]]\n      this text, or a command's flags (also: casedrop COMMAND [VERB] -h)")
	fmt.Fprintf(w, "\n%s\n\n%s\n", adminNote, exitNote)
	(&config{}).usage(w)
}

// writeCommandUsage writes the help of a command with verbs.
func writeCommandUsage(w io.Writer, c command) {
	fmt.Fprintf(w, "casedrop %s: %s\n\nusage:\n", c.name, c.summary)
	for _, v := range c.verbs {
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace("casedrop "+c.name+" "+v.name+" "+v.synopsis), v.summary)
	}
	fmt.Fprintf(w, "\n\"casedrop %s VERB -h\" lists a verb's flags.\n", c.name)
	if c.name == "case" || c.name == "credentials" {
		fmt.Fprintf(w, "\n%s\n", adminNote)
	}
}

// writeFlagsUsage writes the help of command c (or of its verb, named by
// the flag set) with its flags.
func writeFlagsUsage(w io.Writer, c command, fs *flag.FlagSet) {
	line, summary := "casedrop "+c.name+" "+c.synopsis, c.summary
	if fs != nil {
		for _, v := range c.verbs {
			if fs.Name() == c.name+" "+v.name {
				line, summary = "casedrop "+fs.Name()+" "+v.synopsis, v.summary
			}
		}
	}
	fmt.Fprintf(w, "usage: %s\n  %s\n", strings.TrimSpace(line), summary)
	if fs == nil {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  %s\n      %s%s\n", strings.TrimSpace("--"+f.Name+" "+kind), usage, flagDefault(f, usage))
	})
}

// flagDefault is " (default V)" for a flag whose help does not say its
// default already. A setting's help says it, as people read it ("none"),
// and its DefValue may come from the environment: a secret, never shown.
func flagDefault(f *flag.Flag, usage string) string {
	if strings.Contains(usage, "(env ") || strings.Contains(usage, "default") {
		return ""
	}
	switch f.DefValue {
	case "", "false", "0":
		return ""
	}
	return " (default " + f.DefValue + ")"
}
