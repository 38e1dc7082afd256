package icap_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/clamdtest"
	"github.com/casedrop/casedrop/internal/icaptest"
	"github.com/casedrop/casedrop/internal/scantest"
	"github.com/casedrop/casedrop/scan"
	"github.com/casedrop/casedrop/scan/icap"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in, hostPort string
		ok           bool
	}{
		{"icap://127.0.0.1:1344/virus_scan", "127.0.0.1:1344", true},
		{"icap://icap.example/avscan", "icap.example:1344", true},
		{"icap://[::1]:11344/srv_clamav?mode=simple", "[::1]:11344", true},
		{"icap://127.0.0.1:1344/", "", false},
		{"icap://127.0.0.1:1344", "", false},
		{"http://127.0.0.1:1344/virus_scan", "", false},
		{"icap://user@127.0.0.1/virus_scan", "", false},
		{"icap://127.0.0.1:0/virus_scan", "", false},
		{"127.0.0.1:1344/virus_scan", "", false},
		{"", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, hostPort, err := icap.ParseURL(tc.in)
			if tc.ok != (err == nil) || hostPort != tc.hostPort {
				t.Fatalf("ParseURL(%q) = %q, %v", tc.in, hostPort, err)
			}
			if err != nil && !errors.Is(err, icap.ErrAddress) {
				t.Fatalf("error %v is not ErrAddress", err)
			}
		})
	}
}

func TestScanAgainstARealCICAPWithClamd(t *testing.T) {
	clamd := clamdtest.Start(t, clamdtest.Options{StreamMaxLength: "8M"})
	server := icaptest.Start(t, icaptest.Options{Clamd: clamd, MaxObjectSize: "1M"})
	// mode=simple: virus_scan answers once it has scanned, with the
	// finding's name, instead of starting to echo the file early.
	c, err := icap.New(icap.Config{URL: server.URL + "?mode=simple"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts, err := c.Options(ctx)
	if err != nil {
		t.Fatalf("Options: %v", err)
	}
	if opts.Preview < 0 || !opts.Allow204 {
		t.Fatalf("c-icap's virus_scan offers %+v: want a preview and 204", opts)
	}
	scantest.Run(t, ctx, c, scantest.Cases(2<<20))
	t.Run("in c-icap's default mode a finding after the echo began is still infected", func(t *testing.T) {
		early, err := icap.New(icap.Config{URL: server.URL})
		if err != nil {
			t.Fatal(err)
		}
		late := scantest.PatternAcrossChunks()
		got, err := early.Scan(ctx, bytes.NewReader(late), int64(len(late)))
		if err != nil || got.Result != scan.Infected {
			t.Fatalf("Scan = %+v, %v; want infected", got, err)
		}
		clean := bytes.Repeat([]byte("log line\n"), 100_000)
		if got, err := early.Scan(ctx, bytes.NewReader(clean), int64(len(clean))); err != nil || got.Result != scan.Clean {
			t.Fatalf("Scan of a clean file echoed = %+v, %v; want clean", got, err)
		}
	})
	t.Run("a file that cannot be read to its end has no verdict", func(t *testing.T) {
		scantest.Unreadable(t, ctx, c, append(bytes.Repeat([]byte("a"), 4096), "partial"...), 1<<20)
	})
	t.Run("a clamd that is down behind c-icap is an error, not a verdict", func(t *testing.T) {
		clamd.Stop()
		t.Cleanup(func() { clamd.Restart(t) })
		got, err := c.Scan(ctx, strings.NewReader("hello"), 5)
		if err == nil {
			t.Fatalf("Scan with clamd stopped = %+v, no error", got)
		}
	})
	t.Run("a stopped c-icap is an error, not a verdict", func(t *testing.T) {
		server.Stop()
		got, err := c.Scan(ctx, strings.NewReader("hello"), 5)
		if err == nil {
			t.Fatalf("Scan with c-icap stopped = %+v, no error", got)
		}
		server.Restart(t)
		if got, err := c.Scan(ctx, strings.NewReader(clamdtest.EICAR), int64(len(clamdtest.EICAR))); err != nil || got.Result != scan.Infected {
			t.Fatalf("Scan after restart = %+v, %v", got, err)
		}
	})
}
