package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"

	"github.com/casedrop/casedrop/web"
)

// filesRelease runs `casedrop files release --case C NAME --reason WHY`:
// an admin serves a quarantined file after all (audited as file.released).
func filesRelease(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var (
		cf             clientFlags
		caseID, reason string
	)
	cfg, rest, err := parseCommand("files release", args, getenv, dataDirOnly, func(fs *flag.FlagSet) {
		cf.register(fs, getenv)
		fs.StringVar(&caseID, "case", "", "the case")
		fs.StringVar(&reason, "reason", "", "why the file may be served after all (required; it goes into the audit trail)")
	})
	if err != nil {
		return err
	}
	if caseID == "" || len(rest) != 1 || reason == "" {
		return usageErrorf(`usage: casedrop files release --case C --reason "why" NAME  (the admin token only)`)
	}
	client, err := cf.newClient(cfg.DataDir, getenv, true)
	if err != nil {
		return err
	}
	var f web.File
	if err := client.send(ctx, http.MethodPost, casePath(caseID, "files", rest[0], "release"), web.ReleaseRequest{Reason: reason}, &f); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "released %s (%s; it had: %s): it is %s\n", f.Name, f.SHA256, finding(f), f.State)
	return err
}

func finding(f web.File) string {
	if f.Finding != "" {
		return f.Finding
	}
	return f.Reason
}
