package e2e

import (
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kill -9 of the instance that holds an upload, behind the balancer: the
// client's next request or connection goes to another instance, which
// takes the upload over once the dead one's lease has run out (10 s after
// its last renewal), from what the dead one stored. The client sends
// again at most what the dead instance had not yet stored as a part. An
// instance that only stalled, and wakes after the takeover, cannot undo
// it.

const (
	// takeoverWithin bounds how long after the kill another instance takes
	// the upload over: the lease, plus the waiter's poll, plus slack for a
	// loaded machine.
	takeoverWithin = 15 * time.Second
	// partSize is the instances' part size in bytes.
	partSize = balancerPartMiB * mib
	// pauseAt is where a client pauses for its instance to be killed or
	// stopped: half way through the third part, two parts stored.
	pauseAt = 2*partSize + partSize/2
	// killedSize is the size of a file whose instance is killed.
	killedSize = 24*mib + 5
)

// killedUpload is an upload whose client paused at pauseAt and whose
// instance was then killed.
type killedUpload struct {
	caseID, name string
	killed       string // the instance that held the upload
	stored       int64  // what the case's file list said was stored at the kill
	at           time.Time
}

// killHolder waits until the case's file name lists the two parts before
// pauseAt stored, reads which instance holds its lock and kills it with
// SIGKILL.
func (c *cluster) killHolder(t *testing.T, caseID, name string) killedUpload {
	t.Helper()
	stored, holder := c.pausedHolder(t, caseID, name)
	c.instance(t, holder).Kill()
	return killedUpload{caseID: caseID, name: name, killed: holder, stored: stored, at: time.Now()}
}

// pausedHolder waits until the case's file name, whose client paused at
// pauseAt, lists the two parts before stored, and returns that and the
// instance that holds the upload's lock.
func (c *cluster) pausedHolder(t *testing.T, caseID, name string) (stored int64, holder string) {
	t.Helper()
	if err := waitFor(30*time.Second, func() bool {
		stored = fileNamed(t, c.api.Files(t, caseID), name).Received
		return stored >= 2*partSize
	}); err != nil {
		t.Fatalf("%s lists %d stored bytes, want %d", name, stored, 2*partSize)
	}
	if holder = c.lockHolder(t, caseID); holder == "" {
		t.Fatalf("no instance holds the lock of %s while its client writes", name)
	}
	return stored, holder
}

// checkContinued checks how the upload k went on after the kill: from an
// offset that kept what was stored, so that the client sent again at most
// one part; within takeoverWithin, stored by a surviving instance (stored:
// the door's bytes each instance stored meanwhile); and that it ended
// whole with its digest, downloaded through the balancer.
func (c *cluster) checkContinued(t *testing.T, k killedUpload, from int64, took time.Duration, stored []float64, sha256hex string) {
	t.Helper()
	again := pauseAt - from
	t.Logf("killed %s with %d bytes sent and %d listed stored; another instance took the upload over %v later at offset %d; %d bytes sent again",
		k.killed, int64(pauseAt), k.stored, took.Round(time.Millisecond), from, again)
	if from < k.stored || from > pauseAt {
		t.Errorf("the upload continued from %d; want what was stored at the kill (%d) or more, and at most the %d bytes sent", from, k.stored, int64(pauseAt))
	}
	if again > partSize {
		t.Errorf("the client sent %d bytes again, more than one part (%d)", again, partSize)
	}
	if took > takeoverWithin {
		t.Errorf("another instance took the upload over %v after the kill, want within %v", took, takeoverWithin)
	}
	if served := c.servedBy(stored); len(served) == 0 || slices.Contains(served, k.killed) {
		t.Errorf("the rest was stored by %v; want a surviving instance, not %s (per instance: %v)", served, k.killed, stored)
	}
	checkComplete(t, fileNamed(t, c.api.Files(t, k.caseID), k.name), killedSize, sha256hex)
	if n, sum := downloadSHA256(t, c.api, k.caseID, k.name); n != killedSize || sum != sha256hex {
		t.Errorf("download through the balancer: %d bytes, sha256 %s; want %d, %s", n, sum, int64(killedSize), sha256hex)
	}
}

// pausedAt returns a reader of the pattern's first size bytes that stops
// once it has given at bytes, closes reached, and goes on once resume is
// closed.
func pausedAt(p *pattern, size, at int64) (body *stream, reached, resume chan struct{}) {
	body = p.stream(0, size)
	reached, resume = make(chan struct{}), make(chan struct{})
	body.at = at
	body.hook = func() {
		close(reached)
		<-resume
	}
	return body, reached, resume
}

// waitReached waits until the client has sent its bytes up to the pause,
// failing the test if its upload ends first.
func waitReached(t *testing.T, reached <-chan struct{}, ended <-chan error) {
	t.Helper()
	select {
	case <-reached:
	case err := <-ended:
		t.Fatalf("the upload ended (%v) before the client paused", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the client did not reach its pause within 30 s")
	}
}

func TestBalancerTusUploadContinuesOnAnotherInstanceAfterKill9OfItsHolder(t *testing.T) {
	c := startCluster(t)
	c.api.OpenCase(t, "kill-tus")
	cred := c.api.Credential(t, "kill-tus", "customer")
	p := newPattern(210)
	want := patternSHA256(t, p, killedSize)
	loc := c.api.Create(t, cred.Token, "vmcore", killedSize, want)
	client := c.api.NewClient()
	defer client.CloseIdleConnections()
	before := c.metrics(t)

	first, reached, resume := pausedAt(p, killedSize, pauseAt)
	patched := make(chan error, 1)
	go func() {
		_, _, err := c.api.PatchWith(context.Background(), client, cred.Token, loc, 0, first, killedSize)
		patched <- err
	}()
	waitReached(t, reached, patched)
	k := c.killHolder(t, "kill-tus", "vmcore")
	close(resume)
	if err := <-patched; err == nil {
		t.Fatalf("the PATCH went through a kill -9 of its instance %s", k.killed)
	}

	// The client's retry, as tus clients do it: HEAD for the offset (it
	// waits for the lock the dead instance held), then PATCH from there.
	var off int64
	if err := waitFor(30*time.Second, func() bool {
		o, err := tusOffset(t.Context(), c.api, client, cred.Token, loc)
		off = o
		return err == nil
	}); err != nil {
		t.Fatalf("no HEAD through the balancer answered within 30 s of the kill of %s", k.killed)
	}
	took := time.Since(k.at)
	if n, _, err := c.api.PatchWith(t.Context(), client, cred.Token, loc, off, p.stream(off, killedSize), killedSize-off); err != nil || n != killedSize {
		t.Fatalf("the PATCH from %d after the kill: offset %d, %v", off, n, err)
	}
	stored := growth(before, c.metrics(t), "casedrop_upload_bytes_received_total", "door", "tus")
	c.checkContinued(t, k, off, took, stored, want)
}

func TestBalancerSFTPUploadContinuesOnAnotherInstanceAfterKill9OfItsHolder(t *testing.T) {
	c := startCluster(t)
	c.api.OpenCase(t, "kill-sftp")
	login := c.sftpLogin(c.api.Credential(t, "kill-sftp", "customer"))
	p := newPattern(211)
	want := patternSHA256(t, p, killedSize)
	before := c.metrics(t)

	first, reached, resume := pausedAt(p, killedSize, pauseAt)
	written := make(chan error, 1)
	go func() { written <- sftpWrite(login, "vmcore", first, 0, nil) }()
	waitReached(t, reached, written)
	k := c.killHolder(t, "kill-sftp", "vmcore")
	close(resume)
	if err := <-written; err == nil {
		t.Fatalf("the SFTP upload went through a kill -9 of its instance %s", k.killed)
	}

	// The client's resume, as reput does it on a new connection: the
	// stored size, then the rest from there. Opening the file waits for
	// the lock the dead instance held.
	var (
		off    int64
		opened time.Time
		err    error
	)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if off, err = sftpStoredSize(login, "vmcore"); err == nil {
			if err = sftpWrite(login, "vmcore", p.stream(off, killedSize), off, &opened); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upload did not continue through the balancer within 30 s of the kill of %s: %v", k.killed, err)
		}
	}
	stored := growth(before, c.metrics(t), "casedrop_upload_bytes_received_total", "door", "sftp")
	c.checkContinued(t, k, off, opened.Sub(k.at), stored, want)
}

// sftpWrite writes r to name from offset off over pkg/sftp's client and
// closes it, as a client continuing from the stored size does; opened,
// when set, learns when the server let it open the file for writing (an
// upload's lock is taken there).
func sftpWrite(l sftpLogin, name string, r io.Reader, off int64, opened *time.Time) error {
	c, done, err := dialSFTP(l)
	if err != nil {
		return err
	}
	defer done()
	f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE)
	if err != nil {
		return err
	}
	if opened != nil {
		*opened = time.Now()
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	_, err = f.ReadFrom(r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// An instance stalls (SIGSTOP: a frozen VM, a long pause) while it holds
// a tus upload; its client gives up on it and continues through the
// balancer on another instance, which takes the upload over once the
// stalled one's lease has run out, and stores more. When the stalled
// instance wakes, its late save of the upload's state is refused: the
// upload's progress does not go back, and the file ends whole.
func TestBalancerAStalledInstanceThatWakesAfterItsUploadWasTakenOverCannotRollItBack(t *testing.T) {
	const (
		size  = 30*mib + 5
		later = 22 * mib // where the new instance has stored up to when the stalled one wakes
	)
	c := startCluster(t)
	c.api.OpenCase(t, "stall")
	cred := c.api.Credential(t, "stall", "customer")
	p := newPattern(212)
	want := patternSHA256(t, p, size)
	loc := c.api.Create(t, cred.Token, "heap.hprof", size, want)

	// The first client pauses in the third part; its instance is stopped
	// there, and the client gives up on its request.
	first, reached, resume := pausedAt(p, size, pauseAt)
	ctx, giveUp := context.WithCancel(t.Context())
	firstClient := c.api.NewClient()
	defer firstClient.CloseIdleConnections()
	patched := make(chan error, 1)
	go func() {
		_, _, err := c.api.PatchWith(ctx, firstClient, cred.Token, loc, 0, first, size)
		patched <- err
	}()
	waitReached(t, reached, patched)
	stored, name := c.pausedHolder(t, "stall", "heap.hprof")
	stalled := c.instance(t, name)
	if err := stalled.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stalled.Signal(syscall.SIGCONT) }) // before testserver stops it
	giveUp()
	close(resume)
	if err := <-patched; err == nil {
		t.Fatal("the PATCH to a stopped instance succeeded")
	}
	// A request the balancer sent to the stopped instance would hang:
	// the new client starts once the health checks have taken it out.
	c.lb.WaitStatus(t, name, "DOWN", 10*time.Second)

	client := c.api.NewClient()
	defer client.CloseIdleConnections()
	off, err := tusOffset(t.Context(), c.api, client, cred.Token, loc)
	if err != nil || off < stored || off > pauseAt {
		t.Fatalf("HEAD on another instance: offset %d, %v; want from %d to %d", off, err, stored, int64(pauseAt))
	}
	if n, _, err := c.api.PatchWith(t.Context(), client, cred.Token, loc, off, p.stream(off, later), later-off); err != nil || n != later {
		t.Fatalf("the PATCH from %d to %d on another instance: offset %d, %v", off, int64(later), n, err)
	}

	// The stalled instance wakes with the first request's bytes in hand,
	// and ends that request.
	if err := stalled.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	var ended string
	if err := waitFor(20*time.Second, func() bool {
		for line := range strings.Lines(stalled.Log()) {
			if strings.Contains(line, `"msg":"http","method":"PATCH"`) {
				ended = line
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatalf("%s did not end the stalled PATCH within 20 s of waking", name)
	}
	t.Logf("%s stalled with %d bytes stored; another instance continued from %d to %d; the stalled request ended: %s",
		name, stored, off, int64(later), strings.TrimSpace(ended))
	if !strings.Contains(ended, `"status":423`) {
		var why []string // what the instance logged about it
		for line := range strings.Lines(stalled.Log()) {
			if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) {
				why = append(why, strings.TrimSpace(line))
			}
		}
		t.Errorf("the stalled instance ended its PATCH with %s; want 423 (upload_taken_over); it logged:\n%s",
			strings.TrimSpace(ended), strings.Join(why, "\n"))
	}
	if now, err := tusOffset(t.Context(), c.api, client, cred.Token, loc); err != nil || now != later {
		t.Fatalf("after the stalled instance woke the upload is at offset %d (%v); want %d, where the new instance left it", now, err, int64(later))
	}
	if n, _, err := c.api.PatchWith(t.Context(), client, cred.Token, loc, later, p.stream(later, size), size-later); err != nil || n != size {
		t.Fatalf("the last PATCH: offset %d, %v", n, err)
	}
	checkComplete(t, fileNamed(t, c.api.Files(t, "stall"), "heap.hprof"), size, want)
	if n, sum := downloadSHA256(t, c.api, "stall", "heap.hprof"); n != size || sum != want {
		t.Errorf("download through the balancer: %d bytes, sha256 %s; want %d, %s", n, sum, int64(size), want)
	}
}
