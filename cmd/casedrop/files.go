package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/web"
)

// files runs `casedrop files list|get|release`, against a running server.
func files(args []string) error {
	if len(args) == 0 {
		return usageErrorf("files: want list, get or release")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "list":
		return filesList(ctx, args[1:], os.Getenv, os.Stdout)
	case "get":
		return filesGet(ctx, args[1:], os.Getenv, os.Stderr)
	case "release":
		return filesRelease(ctx, args[1:], os.Getenv, os.Stdout)
	default:
		return usageErrorf("files: unknown command %q; want list, get or release", args[0])
	}
}

// dataDirOnly keeps the one setting a client needs: where the admin token
// and the server's certificate are.
func dataDirOnly(s setting) bool { return s.flag == "data-dir" }

func filesList(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var (
		cf     clientFlags
		caseID string
		asJSON bool
	)
	cfg, rest, err := parseCommand("files list", args, getenv, dataDirOnly, func(fs *flag.FlagSet) {
		cf.register(fs, getenv)
		fs.StringVar(&caseID, "case", "", "the case")
		fs.BoolVar(&asJSON, "json", false, "print the list as JSON")
	})
	if err != nil {
		return err
	}
	if caseID == "" && len(rest) == 1 { // casedrop files list CASE
		caseID, rest = rest[0], nil
	}
	if caseID == "" || len(rest) > 0 {
		return usageErrorf("usage: casedrop files list --case C [--json]  (or: casedrop files list C)")
	}
	client, err := cf.newClient(cfg.DataDir, getenv, true)
	if err != nil {
		return err
	}
	var list web.FileList
	if err := client.send(ctx, http.MethodGet, casePath(caseID, "files"), nil, &list); err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tSTATE\tSHA256\tUPLOADED\tVIA\tBY")
	for _, f := range list.Files {
		at := "-"
		if f.UploadedAt != nil {
			at = f.UploadedAt.UTC().Format(time.RFC3339)
		}
		sum := f.SHA256
		if sum == "" {
			sum = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.Size, f.State, sum, at, f.Via, f.UploadedBy)
	}
	return tw.Flush()
}

func filesGet(ctx context.Context, args []string, getenv func(string) string, stderr *os.File) error {
	var (
		cf     clientFlags
		caseID string
		out    string
	)
	cfg, rest, err := parseCommand("files get", args, getenv, dataDirOnly, func(fs *flag.FlagSet) {
		cf.register(fs, getenv)
		fs.StringVar(&caseID, "case", "", "the case")
		fs.StringVar(&out, "o", "", "where to write the file, or a folder to write it into (default: its name, in the current directory)")
	})
	if err != nil {
		return err
	}
	if caseID == "" && len(rest) == 2 { // casedrop files get CASE NAME
		caseID, rest = rest[0], rest[1:]
	}
	if caseID == "" || len(rest) != 1 {
		return usageErrorf("usage: casedrop files get --case C NAME [-o PATH]  (or: casedrop files get C NAME)")
	}
	name := rest[0]
	out, err = outputPath(name, out, stderr)
	if err != nil {
		return err
	}
	client, err := cf.newClient(cfg.DataDir, getenv, true)
	if err != nil {
		return err
	}
	return client.download(ctx, caseID, name, out, stderr, newProgress(stderr))
}

// outputPath is where `files get` writes the file name: out as given, or,
// when out is empty or a folder, the name made safe (cases.SafeName) in
// that folder. The name comes from the server: it never chooses the folder.
func outputPath(name, out string, notes io.Writer) (string, error) {
	dir := out
	if out != "" {
		if st, err := os.Stat(out); err != nil || !st.IsDir() {
			return out, nil
		}
	} else {
		dir = "."
	}
	base := cases.SafeName(name)
	path := filepath.Join(dir, base)
	if filepath.Base(path) != base || filepath.Dir(path) != filepath.Clean(dir) {
		return "", fmt.Errorf("%q cannot be a local file name; give -o PATH", name)
	}
	if base != name {
		fmt.Fprintf(notes, "casedrop: writing %q as %s\n", name, path)
	}
	return path, nil
}

// errDigestMismatch: a downloaded file does not hash to the digest the
// server recorded.
var errDigestMismatch = errors.New("SHA-256 mismatch")

// download writes the case's file name to out. An out that already holds
// fewer bytes is continued from its end (Range, with If-Range so that a
// file that changed on the server comes whole); at the end, the SHA-256
// of all of out must be the one the server recorded at upload.
func (c *apiClient) download(ctx context.Context, caseID, name, out string, notes io.Writer, bar *progress) error {
	path := casePath(caseID, "files", name)
	head, err := c.do(ctx, http.MethodHead, path, nil, nil, http.StatusOK)
	if err != nil {
		return err
	}
	head.Body.Close()
	size := head.ContentLength
	want, err := reprSHA256(head.Header.Get("Repr-Digest"))
	if err != nil || size < 0 {
		return fmt.Errorf("%s: the server sent no usable size and SHA-256 (%v)", name, err)
	}
	var have int64
	if st, err := os.Stat(out); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s exists and is not a regular file", out)
		}
		have = st.Size()
	}
	if have > size {
		return fmt.Errorf("%s has %d bytes, more than the %d of %s on the server: it is not a partial download of it; move it away", out, have, size, name)
	}
	f, err := os.OpenFile(out, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	// The hash covers the bytes already there, then those that arrive: all
	// of out, read once.
	h := sha256.New()
	if have > 0 {
		bar.begin("checking "+out, 0, have)
		_, err := io.Copy(io.MultiWriter(h, bar), io.LimitReader(f, have))
		bar.end()
		if err != nil {
			return fmt.Errorf("reading %s: %w", out, err)
		}
	}
	if have < size {
		// The digest of what the GET sent wins over the HEAD's, should the
		// file have changed in between.
		field, err := c.fetchRest(ctx, path, head.Header.Get("ETag"), f, have, size, h, notes, bar)
		if err != nil {
			return err
		}
		if want, err = reprSHA256(field); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if got := h.Sum(nil); string(got) != string(want) {
		return fmt.Errorf("%w: %s hashes to %x, the server recorded %x for %s: delete it and download again", errDigestMismatch, out, got, want, name)
	}
	if bar.w != nil {
		fmt.Fprintf(bar.w, "%s: %d bytes, SHA-256 %x verified\n", out, size, want)
	}
	return nil
}

// fetchRest downloads the bytes of path from offset have on into f,
// feeding h, and returns the response's Repr-Digest. If the server sends
// the whole file instead (it changed since the partial one was written),
// f and h start over.
func (c *apiClient) fetchRest(ctx context.Context, path, etag string, f *os.File, have, size int64, h hash.Hash, notes io.Writer, bar *progress) (string, error) {
	header := http.Header{}
	if have > 0 {
		header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		header.Set("If-Range", etag)
	}
	resp, err := c.do(ctx, http.MethodGet, path, header, nil, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", have)) {
			return "", fmt.Errorf("the server sent range %q, not from byte %d", resp.Header.Get("Content-Range"), have)
		}
		fmt.Fprintf(notes, "casedrop: resuming %s from byte %d of %d\n", f.Name(), have, size)
	case have > 0:
		fmt.Fprintf(notes, "casedrop: %s changed on the server; downloading it again\n", f.Name())
		have = 0
		h.Reset()
		if err := f.Truncate(0); err != nil {
			return "", err
		}
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return "", err
	}
	bar.begin(f.Name(), have, size)
	n, err := io.Copy(io.MultiWriter(f, h, bar), resp.Body)
	bar.end()
	if got := have + n; err != nil || got != size {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return "", fmt.Errorf("download of %s stopped at byte %d of %d: %w; run the same command again to resume", f.Name(), got, size, err)
	}
	return resp.Header.Get("Repr-Digest"), nil
}

// reprSHA256 returns the SHA-256 in a Repr-Digest field value
// ("sha-256=:<base64>:", possibly among other algorithms).
func reprSHA256(field string) ([]byte, error) {
	for _, member := range strings.Split(field, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(member), "=")
		if !ok || key != "sha-256" {
			continue
		}
		sum, err := base64.StdEncoding.DecodeString(strings.Trim(value, ":"))
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("malformed sha-256 in Repr-Digest %q", field)
		}
		return sum, nil
	}
	return nil, fmt.Errorf("no sha-256 in Repr-Digest %q", field)
}
