package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/upload"
)

// errProblemsFound: verify found stored files that do not match the
// catalog (exit status 1).
var errProblemsFound = errors.New("problems found")

// verify runs `casedrop verify`: directly on the data (local disk or S3,
// configured as for serve), it re-reads the bytes of every complete file
// and compares their SHA-256 with the one recorded at upload.
func verify(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runVerify(ctx, args, os.Getenv, os.Stdout, os.Stderr)
}

func runVerify(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, stderr *os.File) error {
	var caseID, name string
	cfg, rest, err := parseCommand("verify", args, getenv, dataSettings, func(fs *flag.FlagSet) {
		fs.StringVar(&caseID, "case", "", "verify only this case")
		fs.StringVar(&name, "file", "", "verify only this file of --case")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 || (name != "" && caseID == "") {
		return usageErrorf("usage: casedrop verify [--case C [--file NAME]] [--data-dir D | --s3-endpoint ...]")
	}
	if err := cfg.completeData(); err != nil {
		return usageError{err}
	}
	p, err := build(ctx, cfg, direct, slog.Default())
	if err != nil {
		return err
	}
	v := &verifier{catalog: p.catalog, ingest: p.ingest, out: stdout, bar: newProgress(stderr)}
	if err := v.run(ctx, caseID, name); err != nil {
		return err
	}
	r := v.report
	fmt.Fprintf(stdout, "verify %s: %d files (%s) in %d cases: %d ok, %d mismatched, %d missing, %d unreadable\n",
		p.where, r.files, humanBytes(r.bytes), r.cases, r.ok, r.mismatched, r.missing, r.unreadable)
	if n := r.mismatched + r.missing + r.unreadable; n > 0 {
		return fmt.Errorf("%w: %d of %d files", errProblemsFound, n, r.files)
	}
	return nil
}

// verifyReport counts what a verify run found.
type verifyReport struct {
	cases, files                        int
	bytes                               int64
	ok, mismatched, missing, unreadable int
}

// verifier re-reads stored files and compares them with the catalog.
type verifier struct {
	catalog *cases.Catalog
	ingest  *upload.Ingest
	out     io.Writer // one line per problem
	bar     *progress
	report  verifyReport
}

// run verifies the file name of caseID, or every file of caseID, or (both
// empty) every file of every case.
func (v *verifier) run(ctx context.Context, caseID, name string) error {
	ids := []string{caseID}
	if caseID == "" {
		all, err := v.catalog.Cases(ctx)
		if err != nil {
			return fmt.Errorf("listing cases: %w", err)
		}
		ids = ids[:0]
		for _, c := range all {
			ids = append(ids, c.ID)
		}
	}
	for _, id := range ids {
		if _, err := v.catalog.Get(ctx, id); err != nil {
			return fmt.Errorf("case %s: %w", id, err)
		}
		files, err := v.files(ctx, id, name)
		if err != nil {
			return err
		}
		v.report.cases++
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			if f.State != cases.FileComplete {
				if name != "" {
					fmt.Fprintf(v.out, "SKIPPED    %s %q: %s, not complete\n", id, f.Name, f.State)
				}
				continue
			}
			v.check(ctx, id, f)
		}
	}
	return nil
}

// files returns the file name of the case, or all its files.
func (v *verifier) files(ctx context.Context, caseID, name string) ([]cases.File, error) {
	if name == "" {
		files, err := v.catalog.Files(ctx, caseID)
		if err != nil {
			return nil, fmt.Errorf("case %s: %w", caseID, err)
		}
		return files, nil
	}
	f, err := v.catalog.File(ctx, caseID, name)
	if err != nil {
		return nil, fmt.Errorf("case %s, file %q: %w", caseID, name, err)
	}
	return []cases.File{f}, nil
}

// check re-reads f's stored bytes, counts the outcome and reports a problem.
func (v *verifier) check(ctx context.Context, caseID string, f cases.File) {
	v.report.files++
	v.report.bytes += f.Size
	problem := func(kind, format string, args ...any) {
		fmt.Fprintf(v.out, "%-10s %s %q: %s (object %s)\n", kind, caseID, f.Name, fmt.Sprintf(format, args...), f.Object)
	}
	obj, err := v.ingest.Open(ctx, caseID, f)
	if errors.Is(err, storage.ErrNotFound) {
		v.report.missing++
		problem("MISSING", "no stored object")
		return
	}
	if err != nil {
		v.report.unreadable++
		problem("UNREADABLE", "%v", err)
		return
	}
	defer obj.Close()
	h := sha256.New()
	v.bar.begin(caseID+"/"+f.Name, 0, f.Size)
	n, err := io.Copy(io.MultiWriter(h, v.bar), obj)
	v.bar.end()
	got := hex.EncodeToString(h.Sum(nil))
	switch {
	case err != nil:
		v.report.unreadable++
		problem("UNREADABLE", "after %d bytes: %v", n, err)
	case n != f.Size:
		v.report.mismatched++
		problem("MISMATCH", "%d bytes stored, the catalog records %d", n, f.Size)
	case got != strings.ToLower(f.SHA256):
		v.report.mismatched++
		problem("MISMATCH", "stored bytes hash to sha256 %s, the catalog records %s", got, f.SHA256)
	default:
		v.report.ok++
	}
}
