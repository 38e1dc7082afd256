package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/testserver"
)

func TestUploadResumesAfterTheServerIsKilledWithSIGKILL(t *testing.T) {
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		const (
			size   = 200 * mib
			killAt = 120 * mib
		)
		srv := testserver.Start(t, opts)
		srv.OpenCase(t, "kill")
		token := srv.Credential(t, "kill", "customer").Token
		url := srv.Create(t, token, "vmcore", size, "")
		p := newPattern(2)

		// The server dies in the middle of the body: the reader kills it,
		// synchronously, once the transport has taken killAt bytes.
		killed := make(chan struct{})
		first := p.stream(0, size)
		first.at = killAt
		first.hook = func() {
			srv.Kill()
			close(killed)
		}
		_, status, err := srv.Patch(t.Context(), token, url, 0, first, size)
		select {
		case <-killed:
		case <-time.After(10 * time.Second):
			t.Fatalf("the PATCH ended (%v) and the server was not killed", err)
		}
		if err == nil {
			t.Fatalf("PATCH through a kill -9 of the server succeeded (status %d)", status)
		}

		srv.Restart(t)
		offset := srv.Head(t, token, url)
		if offset <= 0 || offset > killAt {
			t.Fatalf("after the restart the upload is at offset %d; want 0 < offset <= %d, the bytes sent before the kill", offset, killAt)
		}
		t.Logf("killed after %d MiB sent; resumed from %d bytes (%.1f MiB)", killAt/mib, offset, float64(offset)/mib)

		// The digest of the whole file: the prefix the server kept,
		// produced again, then the rest as it is sent.
		h := sha256.New()
		if _, err := io.Copy(h, p.stream(0, offset)); err != nil {
			t.Fatal(err)
		}
		rest := p.stream(offset, size)
		rest.hash = h
		newOffset, _, err := srv.Patch(t.Context(), token, url, offset, rest, size-offset)
		if err != nil {
			t.Fatalf("resuming the upload: %v", err)
		}
		if newOffset != size {
			t.Fatalf("the resumed PATCH ended at offset %d, want %d", newOffset, size)
		}
		rest.waitEOF(t, 10*time.Second)
		want := hex.EncodeToString(h.Sum(nil))

		checkComplete(t, fileNamed(t, srv.Files(t, "kill"), "vmcore"), size, want)
		got := sha256.New()
		n, digest := srv.DownloadTo(t, "kill", "vmcore", got)
		if n != size || hex.EncodeToString(got.Sum(nil)) != want {
			t.Errorf("downloaded %d bytes with sha256 %x; want %d bytes with %s", n, got.Sum(nil), int64(size), want)
		}
		if digest != reprDigest(t, want) {
			t.Errorf("Repr-Digest %q, want %q", digest, reprDigest(t, want))
		}
	})
}

func TestATwoGiBUploadKeepsTheServerMemoryBounded(t *testing.T) {
	const (
		size     = 2 << 30
		maxRSS   = 200 * mib
		caseName = "big"
	)
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, caseName)
	token := srv.Credential(t, caseName, "customer").Token
	requireHTTP2(t, srv)
	url := srv.Create(t, token, "disk.img", size, "")

	body := newPattern(3).stream(0, size)
	body.hash = sha256.New()
	start := time.Now()
	offset, _, err := srv.Patch(t.Context(), token, url, 0, body, size)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("PATCH of 2 GiB: %v", err)
	}
	if offset != size {
		t.Fatalf("PATCH ended at offset %d, want %d", offset, int64(size))
	}
	rss, err := srv.PeakRSS()
	if err != nil {
		t.Fatalf("reading the server's peak RSS: %v", err)
	}
	body.waitEOF(t, 10*time.Second)
	checkComplete(t, fileNamed(t, srv.Files(t, caseName), "disk.img"), size, hex.EncodeToString(body.hash.Sum(nil)))

	t.Logf("2 GiB in one PATCH over HTTP/2 in %v: %.0f MB/s; server peak RSS %.1f MiB",
		elapsed.Round(time.Millisecond), float64(size)/elapsed.Seconds()/1e6, float64(rss)/mib)
	if rss >= maxRSS {
		t.Errorf("the server's peak RSS was %.1f MiB, want below %d MiB", float64(rss)/mib, maxRSS/mib)
	}
}

// requireHTTP2 fails the test unless the server's client speaks HTTP/2 to
// it: the uploads that follow reuse that connection.
func requireHTTP2(t *testing.T, srv *testserver.Server) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("the client speaks %s to the server, want HTTP/2", resp.Proto)
	}
}

func TestSIGTERMDuringAnUploadStoresWhatArrived(t *testing.T) {
	const (
		size = 64 * mib
		// termAt is below the smallest part (5 MiB): what has arrived when
		// SIGTERM comes can only be kept as the tail saved with the
		// upload's state, so a non-zero offset after the restart shows the
		// server stored it on the way out, not just whole parts.
		termAt      = 3 * mib
		stopTimeout = 30 * time.Second
	)
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "term")
	token := srv.Credential(t, "term", "customer").Token
	url := srv.Create(t, token, "trace.log", size, "")
	p := newPattern(4)

	readBefore, err := srv.BytesRead()
	if err != nil {
		t.Fatal(err)
	}
	type stopped struct {
		err   error
		after time.Duration
	}
	stop := make(chan stopped, 1)
	body := p.stream(0, size)
	body.at = termAt
	body.hook = func() {
		// SIGTERM once the server has read termAt bytes from its sockets,
		// then send nothing more until it is gone: what it keeps is what
		// had arrived.
		if err := waitFor(10*time.Second, func() bool {
			n, err := srv.BytesRead()
			return err == nil && n-readBefore >= termAt
		}); err != nil {
			stop <- stopped{err: fmt.Errorf("the server did not read %d bytes of the upload: %w", termAt, err)}
			return
		}
		signalled := time.Now()
		if err := srv.Signal(syscall.SIGTERM); err != nil {
			stop <- stopped{err: err}
			return
		}
		err := srv.Wait(stopTimeout)
		stop <- stopped{err: err, after: time.Since(signalled)}
	}
	_, status, patchErr := srv.Patch(context.Background(), token, url, 0, body, size)
	select {
	case s := <-stop:
		if s.err != nil {
			t.Fatalf("SIGTERM during an upload: %v (want exit status 0 within %v)", s.err, stopTimeout)
		}
		t.Logf("SIGTERM after %d MiB; the server exited 0 in %v; the PATCH ended with: %v", termAt/mib, s.after.Round(time.Millisecond), patchErr)
	case <-time.After(stopTimeout + 15*time.Second):
		t.Fatalf("the PATCH ended (%v) and no SIGTERM was sent", patchErr)
	}
	if patchErr == nil {
		t.Fatalf("the PATCH completed (status %d) despite SIGTERM mid-way", status)
	}

	srv.Restart(t)
	offset := srv.Head(t, token, url)
	if offset <= 0 || offset > termAt {
		t.Fatalf("after the restart the upload is at offset %d; want 0 < offset <= %d, the bytes sent before SIGTERM", offset, termAt)
	}
	t.Logf("the restarted server kept %d of the %d bytes sent", offset, termAt)

	h := sha256.New()
	if _, err := io.Copy(h, p.stream(0, offset)); err != nil {
		t.Fatal(err)
	}
	rest := p.stream(offset, size)
	rest.hash = h
	if n, _, err := srv.Patch(t.Context(), token, url, offset, rest, size-offset); err != nil || n != size {
		t.Fatalf("finishing the upload: offset %d, %v; want %d", n, err, int64(size))
	}
	rest.waitEOF(t, 10*time.Second)
	want := hex.EncodeToString(h.Sum(nil))
	checkComplete(t, fileNamed(t, srv.Files(t, "term"), "trace.log"), size, want)
	got := sha256.New()
	if _, digest := srv.DownloadTo(t, "term", "trace.log", got); digest != reprDigest(t, want) || hex.EncodeToString(got.Sum(nil)) != want {
		t.Errorf("download: sha256 %x, Repr-Digest %q; want %s", got.Sum(nil), digest, want)
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return context.DeadlineExceeded
		}
		<-tick.C
	}
	return nil
}
