package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/storage"
)

// keyRefresh is how often a running server reads the signing keys again,
// so that a key rotated elsewhere (`casedrop keys rotate`, another
// instance) signs there within that time.
const keyRefresh = time.Minute // "within a minute", as keys rotate and the README say

const keysUsage = "casedrop keys rotate|list [--json] [--data-dir D | --s3-endpoint ...]"

// keysCommand runs `casedrop keys rotate|list`, directly on the data like
// verify: the signing keys are objects in the store, which every running
// instance reads again within keyRefresh, so one command reaches them all,
// running or not. Through the admin API it would reach the one instance a
// balancer picked, and the API is the case system's, which has no business
// with keys.
func keysCommand(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runKeys(ctx, args, os.Getenv, os.Stdout)
}

func runKeys(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	if len(args) == 0 || (args[0] != "rotate" && args[0] != "list") {
		return usageErrorf("usage: %s", keysUsage)
	}
	verb := args[0]
	var asJSON bool
	cfg, rest, err := parseCommand("keys "+verb, args[1:], getenv, dataSettings, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON, for scripts")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("usage: %s", keysUsage)
	}
	if err := cfg.completeData(); err != nil {
		return usageError{err}
	}
	p, err := build(ctx, cfg, direct, slog.Default())
	if err != nil {
		return err
	}
	if verb == "list" {
		keys := p.keys.List()
		return show(out, asJSON, keys, func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "GENERATION\tKID\tCREATED\tSIGNING")
			for _, k := range keys {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", k.Generation, k.KID, stamp(&k.Created), map[bool]string{true: "yes", false: "-"}[k.Signing])
			}
		})
	}
	if err := p.keys.Rotate(ctx); err != nil {
		return fmt.Errorf("rotating the signing key: %w", err)
	}
	keys := p.keys.List()
	signing := signingKey(keys)
	return show(out, asJSON, signing, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "new signing key\t%s\ngeneration\t%d\ncreated\t%s\n", signing.KID, signing.Generation, stamp(&signing.Created))
		fmt.Fprintf(tw, "older keys\t%d, still verifying the credentials they signed\n", len(keys)-1)
		fmt.Fprintln(tw, "servers\tsign new credentials with it within a minute")
	})
}

// refreshKeys reads keys again every interval until ctx ends, and says
// when the key that signs has changed.
func refreshKeys(ctx context.Context, keys *auth.Keys, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		before := signingKey(keys.List()).KID
		if err := keys.Reload(ctx); err != nil {
			if ctx.Err() == nil && storage.Fault(err) == nil { // outages are logged where the store is watched
				log.WarnContext(ctx, "reading the signing keys again failed; the next round tries again", "err", err)
			}
			continue
		}
		if after := signingKey(keys.List()).KID; after != before {
			log.InfoContext(ctx, "signing new credentials with a rotated key", "kid", after)
		}
	}
}

// signingKey is the key of list that signs new credentials.
func signingKey(list []auth.KeyInfo) auth.KeyInfo {
	for _, k := range list {
		if k.Signing {
			return k
		}
	}
	return auth.KeyInfo{}
}
