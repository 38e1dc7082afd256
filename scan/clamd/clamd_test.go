package clamd_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/clamdtest"
	"github.com/casedrop/casedrop/internal/scantest"
	"github.com/casedrop/casedrop/scan"
	"github.com/casedrop/casedrop/scan/clamd"
)

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		in, network, address string
		ok                   bool
	}{
		{"tcp://127.0.0.1:3310", "tcp", "127.0.0.1:3310", true},
		{"tcp://clamav:3310/", "tcp", "clamav:3310", true},
		{"unix:///run/clamav/clamd.ctl", "unix", "/run/clamav/clamd.ctl", true},
		{"127.0.0.1:3310", "", "", false},
		{"tcp://127.0.0.1", "", "", false},
		{"unix://run/clamd.ctl", "", "", false},
		{"http://127.0.0.1:3310", "", "", false},
		{"", "", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			network, address, err := clamd.ParseAddress(tc.in)
			if tc.ok != (err == nil) || network != tc.network || address != tc.address {
				t.Fatalf("ParseAddress(%q) = %q, %q, %v", tc.in, network, address, err)
			}
			if err != nil && !errors.Is(err, clamd.ErrAddress) {
				t.Fatalf("error %v is not ErrAddress", err)
			}
		})
	}
}

func TestScanAgainstARealClamd(t *testing.T) {
	server := clamdtest.Start(t, clamdtest.Options{StreamMaxLength: "1M"})
	c, err := clamd.New(clamd.Config{Address: server.Address})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	cases := append(scantest.Cases(3<<20), scantest.Case{Name: "an empty file is clean", Want: scan.Verdict{Result: scan.Clean}})
	scantest.Run(t, ctx, c, cases)
	t.Run("a file that cannot be read to its end has no verdict", func(t *testing.T) {
		scantest.Unreadable(t, ctx, c, []byte("partial"), 100)
	})
	t.Run("a stopped clamd is an error, not a verdict", func(t *testing.T) {
		server.Stop()
		got, err := c.Scan(ctx, strings.NewReader("hello"), 5)
		if err == nil {
			t.Fatalf("Scan with clamd stopped = %+v, no error", got)
		}
		if err := c.Ping(ctx); err == nil {
			t.Fatal("Ping with clamd stopped: no error")
		}
		server.Restart(t)
		if got, err := c.Scan(ctx, strings.NewReader(clamdtest.EICAR), int64(len(clamdtest.EICAR))); err != nil || got.Result != scan.Infected {
			t.Fatalf("Scan after restart = %+v, %v", got, err)
		}
	})
}

func TestScanOfAClamdThatNeverAnswers(t *testing.T) {
	// A listener that accepts and reads but never answers: the context
	// ends the scan with an error.
	l, err := listenSilent(t)
	if err != nil {
		t.Fatal(err)
	}
	c, err := clamd.New(clamd.Config{Address: "tcp://" + l})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	got, err := c.Scan(ctx, io.LimitReader(zeros{}, 1<<10), 1<<10)
	if err == nil {
		t.Fatalf("Scan of a silent scanner = %+v, no error", got)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
