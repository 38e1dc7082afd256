package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
)

// adminRunner runs `casedrop case|credentials|purge|audit ...`, as name.
func adminRunner(name string) func(args []string) error {
	return func(args []string) error {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runAdmin(ctx, name, args, os.Getenv, os.Stdout)
	}
}

func runAdmin(ctx context.Context, name string, args []string, getenv func(string) string, out io.Writer) error {
	switch name {
	case "case":
		return caseCommand(ctx, args, getenv, out)
	case "credentials":
		return credentialsCommand(ctx, args, getenv, out)
	case "purge":
		return purgeCommand(ctx, args, getenv, out)
	case "audit":
		return auditCommand(ctx, args, getenv, out)
	}
	return usageErrorf("unknown command %q", name)
}

// oneArg checks that exactly one positional argument, what, was given.
func oneArg(rest []string, usage string) (string, error) {
	if len(rest) != 1 || rest[0] == "" {
		return "", usageErrorf("usage: %s", usage)
	}
	return rest[0], nil
}

func caseCommand(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	const usage = "casedrop case open|close|reopen|show CASE | case list  [--server URL] [--json]"
	if len(args) == 0 {
		return usageErrorf("usage: %s", usage)
	}
	verb := args[0]
	a, af, rest, err := connect(ctx, "case "+verb, args[1:], getenv, nil)
	if err != nil {
		return err
	}
	if verb == "list" {
		if len(rest) != 0 {
			return usageErrorf("usage: %s", usage)
		}
		all, err := a.listCases(ctx)
		if err != nil {
			return err
		}
		return show(out, af.json, all, func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "CASE\tSTATE\tOPENED\tCLOSED\tPURGE AT")
			for _, c := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.State, stamp(&c.OpenedAt), stamp(c.ClosedAt), stamp(c.PurgeAt))
			}
		})
	}
	id, err := oneArg(rest, usage)
	if err != nil {
		return err
	}
	var c caseInfo
	switch verb {
	case "open":
		c, err = a.openCase(ctx, id)
	case "close":
		c, err = a.closeCase(ctx, id)
	case "reopen":
		c, err = a.reopenCase(ctx, id)
	case "show":
		c, err = a.showCase(ctx, id)
	default:
		return usageErrorf("usage: %s", usage)
	}
	if err != nil {
		return err
	}
	return show(out, af.json, c, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "case\t%s\nstate\t%s\nopened\t%s\nclosed\t%s\npurge at\t%s\npurged\t%s\nfiles\t%d (%s)\n",
			c.ID, c.State, stamp(&c.OpenedAt), stamp(c.ClosedAt), stamp(c.PurgeAt), stamp(c.PurgedAt), c.FileCount, humanBytes(c.Bytes))
	})
}

func credentialsCommand(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	const usage = "casedrop credentials issue CASE [--role customer|staff] [--ttl-hours N] [--ssh-key FILE.pub] | link CASE [--ttl 10m] | revoke ID | list CASE  [--server URL] [--json]"
	if len(args) == 0 {
		return usageErrorf("usage: %s", usage)
	}
	verb := args[0]
	var (
		role, keyFile string
		ttlHours      int
		linkTTL       time.Duration
	)
	a, af, rest, err := connect(ctx, "credentials "+verb, args[1:], getenv, func(fs *flag.FlagSet) {
		if verb == "issue" {
			fs.StringVar(&role, "role", "customer", "customer or staff")
			fs.IntVar(&ttlHours, "ttl-hours", 0, "hours the credential lives, at most 120 (default 120)")
			fs.StringVar(&keyFile, "ssh-key", "", "an SSH public key (`FILE`.pub) that logs in on SFTP as this credential")
		}
		if verb == "link" {
			fs.DurationVar(&linkTTL, "ttl", cases.LinkTTL, "how long the link may be opened, at most 1h")
		}
	})
	if err != nil {
		return err
	}
	arg, err := oneArg(rest, usage)
	if err != nil {
		return err
	}
	switch verb {
	case "issue":
		if ttlHours < 0 || ttlHours > 120 {
			return usageErrorf("--ttl-hours must be between 1 and 120")
		}
		key, err := readSSHKey(keyFile)
		if err != nil {
			return err
		}
		i, err := a.issue(ctx, arg, role, ttlHours, key)
		if err != nil {
			return err
		}
		return show(out, af.json, i, func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "id\t%s\ncase\t%s\nrole\t%s\nusername\t%s\npassword\t%s\ntoken\t%s\nexpires\t%s\n",
				i.ID, i.Case, i.Role, i.Username, i.Password, i.Token, stamp(&i.ExpiresAt))
			if i.SSHKeyFingerprint != "" {
				fmt.Fprintf(tw, "ssh key\t%s\n", i.SSHKeyFingerprint)
			}
			if i.UploadURL != "" {
				fmt.Fprintf(tw, "link\t%s\nsftp\t%s port %d\n", i.UploadURL, i.SFTPHost, i.SFTPPort)
			}
		})
	case "link":
		if linkTTL < time.Second || linkTTL > cases.MaxLinkTTL {
			return usageErrorf("--ttl must be between 1s and 1h")
		}
		l, err := a.link(ctx, arg, linkTTL)
		if err != nil {
			return err
		}
		return show(out, af.json, l, func(tw *tabwriter.Writer) { fmt.Fprintln(tw, l.URL) })
	case "revoke":
		c, err := a.revoke(ctx, arg)
		if err != nil {
			return err
		}
		return show(out, af.json, c, func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "revoked\t%s (%s, case %s) at %s\n", c.ID, c.Username, c.Case, stamp(c.RevokedAt))
		})
	case "list":
		creds, err := a.credentials(ctx, arg)
		if err != nil {
			return err
		}
		return show(out, af.json, creds, func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "ID\tUSERNAME\tROLE\tISSUED\tEXPIRES\tREVOKED")
			for _, c := range creds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Username, c.Role, stamp(&c.IssuedAt), stamp(&c.ExpiresAt), stamp(c.RevokedAt))
			}
		})
	}
	return usageErrorf("usage: %s", usage)
}

func purgeCommand(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	var (
		dry  bool
		asOf string
	)
	a, af, rest, err := connect(ctx, "purge", args, getenv, func(fs *flag.FlagSet) {
		fs.BoolVar(&dry, "dry-run", false, "list what would be purged, remove nothing")
		fs.StringVar(&asOf, "as-of", "", "purge what is due at this RFC 3339 time (default now; a future time purges early: try --dry-run first)")
	})
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageErrorf("usage: casedrop purge [--dry-run] [--as-of RFC3339] [--server URL] [--json]")
	}
	when := time.Now()
	if asOf != "" {
		if when, err = time.Parse(time.RFC3339, asOf); err != nil {
			return usageErrorf("--as-of: want an RFC 3339 time like 2026-12-24T00:00:00Z")
		}
		if when.After(time.Now()) && !dry {
			fmt.Fprintf(os.Stderr, "casedrop: purging as of %s, in the future: closed cases are purged before their 30 days are over\n", when.UTC().Format(time.RFC3339))
		}
	}
	reports, err := a.purge(ctx, when, dry)
	if err != nil {
		return err
	}
	return show(out, af.json, reports, func(tw *tabwriter.Writer) {
		verb := "purged"
		if dry {
			verb = "would purge"
		}
		if len(reports) == 0 {
			fmt.Fprintf(tw, "nothing due for purge as of %s\n", stamp(&when))
		}
		for _, r := range reports {
			var total int64
			for _, f := range r.Files {
				total += f.Size
			}
			fmt.Fprintf(tw, "%s\t%s\t%d files (%s)\tdue %s\n", verb, r.Case, len(r.Files), humanBytes(total), stamp(&r.PurgeAt))
		}
	})
}

func auditCommand(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	var f cases.AuditFilter
	var since, until, types string
	a, af, rest, err := connect(ctx, "audit", args, getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&since, "since", "", "events at or after this RFC 3339 time")
		fs.StringVar(&until, "until", "", "events before this RFC 3339 time")
		fs.StringVar(&types, "type", "", "comma-separated event types, or prefixes ending in '.' (e.g. file.downloaded,upload.)")
		fs.StringVar(&f.CredentialID, "credential", "", "events of this credential id")
		fs.StringVar(&f.File, "file", "", "events about this file name")
		fs.IntVar(&f.Limit, "limit", 0, "only the newest N events")
	})
	if err != nil {
		return err
	}
	// Without a case: the server-wide trail (refused logins).
	var caseID string
	if len(rest) > 0 {
		if caseID, err = oneArg(rest, "casedrop audit [CASE] [--since T] [--until T] [--type T,...] [--credential ID] [--file NAME] [--limit N] [--json]"); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		v    string
		into *time.Time
		name string
	}{{since, &f.Since, "--since"}, {until, &f.Until, "--until"}} {
		if p.v == "" {
			continue
		}
		if *p.into, err = time.Parse(time.RFC3339, p.v); err != nil {
			return usageErrorf("%s: want an RFC 3339 time", p.name)
		}
	}
	if types != "" {
		f.Types = strings.Split(types, ",")
	}
	events, err := a.audit(ctx, caseID, f)
	if err != nil {
		return err
	}
	return show(out, af.json, events, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "TIME\tEVENT\tWHO\tROLE\tDOOR\tFROM\tFILE\tSIZE\tDETAIL")
		for _, e := range events {
			who := e.Username
			if who == "" {
				who = e.CredentialID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.Type, dash(who), dash(string(e.Role)),
				dash(e.Door), dash(e.Remote), dash(e.File), sizeOrDash(e.Size), e.Detail)
		}
	})
}

// show prints v as JSON for scripts, or as the table table writes.
func show(out io.Writer, asJSON bool, v any, table func(*tabwriter.Writer)) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sizeOrDash(n int64) string {
	if n == 0 {
		return "-"
	}
	return humanBytes(n)
}

// readSSHKey reads the public key of --ssh-key FILE; no file, no key.
func readSSHKey(path string) (auth.SSHKey, error) {
	if path == "" {
		return auth.SSHKey{}, nil
	}
	line, err := os.ReadFile(path)
	if err != nil {
		return auth.SSHKey{}, usageErrorf("--ssh-key: %v", err)
	}
	key, err := auth.ParseSSHKey(string(line))
	if err != nil {
		return auth.SSHKey{}, usageErrorf("--ssh-key %s: %v", path, err)
	}
	return key, nil
}
