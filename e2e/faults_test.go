package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testserver"
)

// Faults between casedrop and its store, and crashes of casedrop itself:
// what was stored stays stored, and the outcome of a store operation is
// found out before anything is thrown away.

// answerDropper relays S3 requests to MinIO and, for the requests match
// picks while drops lasts, lets MinIO do the work but cuts the connection
// instead of passing the answer on: the answer is lost, not the work.
type answerDropper struct {
	target  string
	match   func(*http.Request) bool
	skip    atomic.Int32 // matching requests to let through first
	drops   atomic.Int32
	dropped atomic.Int32
	proxy   *httputil.ReverseProxy
	addr    string
}

func startAnswerDropper(t *testing.T, target string, match func(*http.Request) bool) *answerDropper {
	t.Helper()
	d := &answerDropper{target: target, match: match,
		proxy: httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = ln.Addr().String()
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return d
}

func (d *answerDropper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !d.match(r) || d.skip.Add(-1) >= 0 || d.drops.Add(-1) < 0 {
		d.proxy.ServeHTTP(w, r) // the Host header stays: it is signed
		return
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.RequestURI = "http", d.target, ""
	if resp, err := http.DefaultTransport.RoundTrip(out); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body) // MinIO has done it
		resp.Body.Close()
	}
	d.dropped.Add(1)
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
	}
}

// relayedMinIO is the shared MinIO as casedrop sees it through d.
func relayedMinIO(m *miniotest.Server, d *answerDropper) *miniotest.Server {
	return &miniotest.Server{Endpoint: d.addr, AccessKey: m.AccessKey, SecretKey: m.SecretKey}
}

func isCompletion(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
}

func isPartUpload(r *http.Request) bool {
	q := r.URL.Query()
	return r.Method == http.MethodPut && q.Has("uploadId") && q.Has("partNumber")
}

// dialSFTP logs in as l with pkg/sftp's client, failing as a client
// would (no test failure): the server may be down. done closes the
// session and its connection.
func dialSFTP(l sftpLogin) (c *sftp.Client, done func(), err error) {
	conn, err := ssh.Dial("tcp", l.addr, &ssh.ClientConfig{
		User: l.user, Auth: []ssh.AuthMethod{ssh.Password(l.token)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		return nil, nil, err
	}
	c, err = sftp.NewClient(conn)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return c, func() { c.Close(); conn.Close() }, nil
}

// sftpPut writes the pattern file path from offset off to name over
// pkg/sftp's client, as a resuming client does, and closes it.
func sftpPut(l sftpLogin, name, path string, off int64, counter *atomic.Int64) (sent int64, err error) {
	c, done, err := dialSFTP(l)
	if err != nil {
		return 0, err
	}
	defer done()
	src, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	if _, err := src.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE)
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return 0, err
	}
	sent, err = f.ReadFrom(&countingReader{r: src, also: counter})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return sent, err
}

// sftpStoredSize is the size name is listed with, 0 when it is not there.
func sftpStoredSize(l sftpLogin, name string) (int64, error) {
	c, done, err := dialSFTP(l)
	if err != nil {
		return 0, err
	}
	defer done()
	fi, err := c.Stat(name)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// tusOffset asks for the offset of an upload, without failing the test.
func tusOffset(ctx context.Context, srv *testserver.Server, client *http.Client, token, uploadURL string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, uploadURL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Tus-Resumable", "1.0.0")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HEAD: %s", resp.Status)
	}
	return strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
}

// tusPutFrom sends the pattern file path from offset off in one PATCH.
func tusPutFrom(ctx context.Context, srv *testserver.Server, client *http.Client, token, uploadURL, path string, off, size int64, counter *atomic.Int64) (int64, error) {
	src, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	body := &countingReader{r: io.NewSectionReader(src, off, size-off), also: counter}
	_, _, err = srv.PatchWith(ctx, client, token, uploadURL, off, body, size-off)
	return body.n.Load(), err
}

// countingReader counts what is read through it, also into also (when
// set) as it goes.
type countingReader struct {
	r    io.Reader
	n    atomic.Int64
	also *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	if c.also != nil {
		c.also.Add(int64(n))
	}
	return n, err
}

// The answer to a completion is lost on its way back from the store: the
// upload is found complete, on both doors, and nothing starts again.
func TestALostCompletionAnswerStillFinishesTheUpload(t *testing.T) {
	minio := miniotest.Shared(t)
	relay := startAnswerDropper(t, minio.Endpoint, isCompletion)
	srv := testserver.Start(t, testserver.Options{S3: relayedMinIO(minio, relay), Bucket: minio.NewBucket(t), PartSizeMiB: sftpPartMiB})
	srv.OpenCase(t, "lost")
	cred := srv.Credential(t, "lost", "customer")
	login := loginOf(srv, cred)
	dir := t.TempDir()
	const size = 23*mib + 7

	t.Run("tus", func(t *testing.T) {
		path, want := patternFile(t, dir, "via-tus.bin", size, 61)
		loc := srv.Create(t, cred.Token, "via-tus.bin", size, "")
		relay.drops.Store(1)
		before := relay.dropped.Load()
		if _, err := tusPutFrom(t.Context(), srv, srv.Client, cred.Token, loc, path, 0, size, nil); err != nil {
			t.Fatalf("the PATCH whose completion's answer was lost: %v", err)
		}
		if relay.dropped.Load() == before {
			t.Fatal("the relay dropped no completion's answer")
		}
		checkComplete(t, fileNamed(t, srv.Files(t, "lost"), "via-tus.bin"), size, want)
	})
	t.Run("sftp", func(t *testing.T) {
		path, want := patternFile(t, dir, "via-sftp.bin", size, 62)
		relay.drops.Store(1)
		before := relay.dropped.Load()
		if _, err := sftpPut(login, "via-sftp.bin", path, 0, nil); err != nil {
			t.Fatalf("the upload whose completion's answer was lost: %v", err)
		}
		if relay.dropped.Load() == before {
			t.Fatal("the relay dropped no completion's answer")
		}
		checkComplete(t, fileNamed(t, srv.Files(t, "lost"), "via-sftp.bin"), size, want)
	})
}

// The answer to a part upload is lost: that request fails, and the client
// continues from an offset that kept everything stored before it.
func TestALostPartAnswerCostsOnlyThatPart(t *testing.T) {
	minio := miniotest.Shared(t)
	relay := startAnswerDropper(t, minio.Endpoint, isPartUpload)
	srv := testserver.Start(t, testserver.Options{S3: relayedMinIO(minio, relay), Bucket: minio.NewBucket(t), PartSizeMiB: sftpPartMiB})
	srv.OpenCase(t, "lost-part")
	cred := srv.Credential(t, "lost-part", "customer")
	login := loginOf(srv, cred)
	dir := t.TempDir()
	const size = 31*mib + 5
	// The third part's answer is lost: two parts are stored before it.
	arm := func() { relay.skip.Store(2); relay.drops.Store(1) }

	t.Run("tus", func(t *testing.T) {
		path, want := patternFile(t, dir, "part-tus.bin", size, 63)
		loc := srv.Create(t, cred.Token, "part-tus.bin", size, "")
		arm()
		if _, err := tusPutFrom(t.Context(), srv, srv.Client, cred.Token, loc, path, 0, size, nil); err == nil {
			t.Fatal("the PATCH whose part's answer was lost succeeded")
		}
		off, err := tusOffset(t.Context(), srv, srv.Client, cred.Token, loc)
		if err != nil || off < 2*sftpPartMiB*mib {
			t.Fatalf("after the lost answer the offset is %d (%v); want the two parts stored before it kept", off, err)
		}
		if _, err := tusPutFrom(t.Context(), srv, srv.Client, cred.Token, loc, path, off, size, nil); err != nil {
			t.Fatalf("the PATCH from %d: %v", off, err)
		}
		checkComplete(t, fileNamed(t, srv.Files(t, "lost-part"), "part-tus.bin"), size, want)
	})
	t.Run("sftp", func(t *testing.T) {
		path, want := patternFile(t, dir, "part-sftp.bin", size, 64)
		arm()
		if _, err := sftpPut(login, "part-sftp.bin", path, 0, nil); err == nil {
			t.Fatal("the upload whose part's answer was lost succeeded")
		}
		var off int64
		if err := waitFor(20*time.Second, func() bool {
			n, err := sftpStoredSize(login, "part-sftp.bin")
			off = n
			return err == nil && n >= 2*sftpPartMiB*mib
		}); err != nil {
			t.Fatalf("after the lost answer the file is listed with %d bytes; want the two parts stored before it kept", off)
		}
		if _, err := sftpPut(login, "part-sftp.bin", path, off, nil); err != nil {
			t.Fatalf("the upload from %d: %v", off, err)
		}
		checkComplete(t, fileNamed(t, srv.Files(t, "lost-part"), "part-sftp.bin"), size, want)
	})
}

// kill -9 again and again under uploads on both doors: every file ends
// whole with its digest, and the bytes sent again stay a small share.
func TestRepeatedKill9CostsLittle(t *testing.T) {
	minio := miniotest.Shared(t)
	// The default part size (16 MiB): what a crash can cost is counted in
	// parts.
	srv := testserver.Start(t, testserver.Options{S3: minio, Bucket: minio.NewBucket(t)})
	srv.OpenCase(t, "kills")
	cred := srv.Credential(t, "kills", "customer")
	login := loginOf(srv, cred)
	dir := t.TempDir()
	const (
		tusUploads, sftpUploads = 4, 2
		size                    = 160 * mib
		kills                   = 3
	)
	var sent, done atomic.Int64
	var lastErrs sync.Map // name -> the client's last error, for a failure's report
	type result struct {
		name, want string
		err        error
	}
	results := make(chan result, tusUploads+sftpUploads)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range tusUploads + sftpUploads {
		name := fmt.Sprintf("upload-%d.bin", i)
		path, want := patternFile(t, dir, name, size, 70+uint64(i))
		viaTus := i < tusUploads
		var loc string
		if viaTus {
			loc = srv.Create(t, cred.Token, name, size, want)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer done.Add(1)
			client := srv.NewClient()
			for ctx.Err() == nil {
				if viaTus {
					off, err := tusOffset(ctx, srv, client, cred.Token, loc)
					if err != nil {
						lastErrs.Store(name, err)
						client.CloseIdleConnections()
						waitServer(ctx, srv)
						continue
					}
					if off == size {
						results <- result{name, want, nil}
						return
					}
					if _, err := tusPutFrom(ctx, srv, client, cred.Token, loc, path, off, size, &sent); err != nil {
						lastErrs.Store(name, err)
					}
					continue
				}
				off, err := sftpStoredSize(login, name)
				if err != nil {
					lastErrs.Store(name, err)
					waitServer(ctx, srv)
					continue
				}
				_, err = sftpPut(login, name, path, off, &sent)
				lastErrs.Store(name, err)
				if err == nil {
					results <- result{name, want, nil}
					return
				}
			}
			results <- result{name, want, ctx.Err()}
		}()
	}
	// The killer: a kill -9 each time another quarter of the files' bytes
	// went out, then a restart; the uploads go on through each.
	killed := 0
	total := int64(tusUploads+sftpUploads) * size
	for k := range kills {
		at := total * int64(k+1) / (kills + 1)
		all := int64(tusUploads + sftpUploads)
		if err := waitFor(time.Minute, func() bool {
			return sent.Load() >= at || done.Load() == all || ctx.Err() != nil
		}); err != nil {
			lastErrs.Range(func(k, v any) bool { t.Logf("%s: last error %v", k, v); return true })
			t.Fatalf("kill %d: the uploads made no progress (%d MiB sent, %d of %d done)\n%s", k+1, sent.Load()/mib, done.Load(), all, tail(srv.Log(), 6000))
		}
		if done.Load() == all {
			break
		}
		srv.Kill()
		srv.Restart(t)
		killed++
	}
	wg.Wait()
	close(results)
	files := srv.Files(t, "kills")
	for r := range results {
		if r.err != nil {
			last, _ := lastErrs.Load(r.name)
			t.Errorf("%s did not finish: %v (its client's last error: %v)\n%s", r.name, r.err, last, tail(srv.Log(), 8000))
			continue
		}
		checkComplete(t, fileNamed(t, files, r.name), size, r.want)
	}
	ratio := float64(sent.Load()) / float64(total)
	t.Logf("%d kills: %d MiB sent for %d MiB of files, ratio %.2f", killed, sent.Load()/mib, total/mib, ratio)
	if killed < 3 {
		t.Errorf("the uploads ended after %d kills; the test needs at least 3 to say anything", killed)
	}
	if ratio > 1.3 {
		t.Errorf("the clients sent %.2f times the files' bytes through %d kills; want at most 1.3", ratio, killed)
	}
}

// waitServer waits until the server answers again, or ctx ends.
func waitServer(ctx context.Context, srv *testserver.Server) {
	client := srv.NewClient()
	defer client.CloseIdleConnections()
	_ = waitFor(30*time.Second, func() bool {
		if ctx.Err() != nil {
			return true
		}
		resp, err := client.Get(srv.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }
