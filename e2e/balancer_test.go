package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/haproxytest"
	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testserver"
)

// Three casedrop instances with --shared-lock on one erasure-coded MinIO
// bucket, behind a real HAProxy that sends every HTTPS request and every
// SFTP connection to the next instance: the way the several-instances
// mode is meant to run. The clients talk to HAProxy only; the tests look
// at the instances directly (their metrics, the lock records in the
// bucket) to see who did what.

// balancerPartMiB is the instances' part size: small, so that a file of a
// few tens of MiB spans several parts and a crash costs at most one.
const balancerPartMiB = 5

// cluster is the three instances and their balancer.
type cluster struct {
	instances []*testserver.Server // --instance a, b, c, in that order
	names     []string
	lb        *haproxytest.Balancer
	// api is the admin API and tus through the balancer.
	api    *testserver.Server
	minio  *miniotest.Server
	bucket string
	token  string // the admin token every instance shares
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{minio: miniotest.SharedErasure(t), names: []string{"a", "b", "c"}, token: newAdminToken(t)}
	c.bucket = c.minio.NewBucket(t)
	var servers []haproxytest.Server
	for _, name := range c.names {
		srv := testserver.Start(t, testserver.Options{
			S3: c.minio, Bucket: c.bucket, PartSizeMiB: balancerPartMiB, AdminToken: c.token,
			Args: []string{"--shared-lock", "--instance", name, "--trusted-proxies", "127.0.0.1"},
		})
		c.instances = append(c.instances, srv)
		servers = append(servers, haproxytest.Server{Name: name, HTTPS: strings.TrimPrefix(srv.URL, "https://"), SFTP: srv.SFTPAddr()})
	}
	c.lb = haproxytest.Start(t, haproxytest.Options{Servers: servers})
	c.api = c.instances[0].Via(c.lb.URL, c.lb.Client)
	return c
}

func newAdminToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// sftpLogin is the credential's login through the balancer.
func (c *cluster) sftpLogin(cred testserver.Credential) sftpLogin {
	return sftpLogin{addr: c.lb.SFTPAddr, user: cred.Username, token: cred.Token}
}

// metrics returns each instance's /metrics, read from the instance itself;
// "" for one that is down.
func (c *cluster) metrics(t *testing.T) []string {
	t.Helper()
	var all []string
	for _, srv := range c.instances {
		if !srv.Alive() {
			all = append(all, "")
			continue
		}
		all = append(all, metricsText(t, srv))
	}
	return all
}

// growth returns, per instance, how much the samples of name with labels
// (pairs: "door", "tus") grew from before to after; 0 for an instance down
// by then, whose figures died with it.
func growth(before, after []string, name string, labels ...string) []float64 {
	d := make([]float64, len(after))
	for i := range after {
		if after[i] != "" {
			d[i] = metricSum(after[i], name, labels...) - metricSum(before[i], name, labels...)
		}
	}
	return d
}

// metricSum adds up the samples of name in a Prometheus text exposition
// whose labels include labels (pairs), whatever their other labels.
func metricSum(text, name string, labels ...string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		// The value is last: a label value may hold spaces ("GET /...").
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		series, value := line[:i], line[i+1:]
		metric, labelSet, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && strings.Contains(labelSet, labels[i]+`="`+labels[i+1]+`"`)
		}
		if v, err := strconv.ParseFloat(value, 64); match && err == nil {
			sum += v
		}
	}
	return sum
}

// servedBy names the instances whose figure in d is above zero.
func (c *cluster) servedBy(d []float64) []string {
	var names []string
	for i, v := range d {
		if v > 0 {
			names = append(names, c.names[i])
		}
	}
	return names
}

// checkStoredBy checks that n instances stored an upload's bytes (stored:
// what each stored meanwhile, from its metrics), each byte once.
func (c *cluster) checkStoredBy(t *testing.T, n int, stored []float64, size int64) {
	t.Helper()
	if served := c.servedBy(stored); len(served) != n {
		t.Errorf("the upload's bytes were stored by %v; want %d instances (per instance: %v)", served, n, stored)
	}
	var total float64
	for _, v := range stored {
		total += v
	}
	if total != float64(size) {
		t.Errorf("the instances stored %.0f bytes in all, want each of the %d once", total, size)
	}
}

// lockHolder returns the instance the case's one held upload lock names as
// its holder, read from the lock record in the bucket; "" when no lock of
// the case is held.
func (c *cluster) lockHolder(t *testing.T, caseID string) string {
	t.Helper()
	mc, err := c.minio.Client()
	if err != nil {
		t.Fatal(err)
	}
	var holders []string
	for obj := range mc.ListObjects(t.Context(), c.bucket, minio.ListObjectsOptions{Prefix: cases.Prefix(caseID) + "uploads/"}) {
		if obj.Err != nil {
			t.Fatalf("listing the case's uploads: %v", obj.Err)
		}
		if !strings.HasSuffix(obj.Key, ".lock") {
			continue
		}
		o, err := mc.GetObject(t.Context(), c.bucket, obj.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Holder    string    `json:"holder"`
			ExpiresAt time.Time `json:"expires_at"`
			Released  bool      `json:"released"`
		}
		err = json.NewDecoder(o).Decode(&rec)
		o.Close()
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			continue // removed since it was listed
		}
		if err != nil {
			t.Fatalf("reading the lock record %s: %v", obj.Key, err)
		}
		if !rec.Released && time.Until(rec.ExpiresAt) > 0 {
			holders = append(holders, rec.Holder)
		}
	}
	if len(holders) > 1 {
		t.Fatalf("case %s has %d held upload locks (%v), want one", caseID, len(holders), holders)
	}
	if len(holders) == 0 {
		return ""
	}
	return holders[0]
}

// instance returns the instance named name.
func (c *cluster) instance(t *testing.T, name string) *testserver.Server {
	t.Helper()
	for i, n := range c.names {
		if n == name {
			return c.instances[i]
		}
	}
	t.Fatalf("no instance named %q", name)
	return nil
}

func TestBalancerSpreadsEveryClientOverThreeInstancesAndTheFilesEndWhole(t *testing.T) {
	c := startCluster(t)
	c.api.OpenCase(t, "lb")
	cred := c.api.Credential(t, "lb", "customer")
	login := c.sftpLogin(cred)
	dir := t.TempDir()
	want := map[string]string{} // name -> sha256 of what each subtest uploaded

	t.Run("tus-js-client's PATCHes go to all three instances and the file ends whole", func(t *testing.T) {
		const (
			size  = 21*mib + 7
			chunk = 4 * mib // not a multiple of the part: tails pass between instances
		)
		path, sum := patternFile(t, dir, "trace.tar", size, 200)
		before := c.metrics(t)
		r := runTusJS(t, c.lb, cred.Token, chunk, jsFile{Path: path, Name: "trace.tar", SHA256: sum})
		after := c.metrics(t)
		if !r.OK {
			t.Fatalf("tus-js-client failed: %s", r.Error)
		}
		if wantPatches := int((size + chunk - 1) / chunk); r.Patches != wantPatches || r.Retries != 0 {
			t.Errorf("tus-js-client sent %d PATCHes with %d retries; want %d, none retried", r.Patches, r.Retries, wantPatches)
		}
		patches := growth(before, after, "casedrop_http_request_seconds_count", "route", "/files/", "method", "PATCH")
		stored := growth(before, after, "casedrop_upload_bytes_received_total", "door", "tus")
		t.Logf("PATCHes per instance a, b, c: %v; bytes stored: %v", patches, stored)
		if served := c.servedBy(patches); len(served) != 3 {
			t.Errorf("the upload's PATCHes went to %v; want all three instances (per instance: %v)", served, patches)
		}
		c.checkStoredBy(t, 3, stored, size)
		checkComplete(t, fileNamed(t, c.api.Files(t, "lb"), "trace.tar"), size, sum)
		want["trace.tar"] = sum
	})

	t.Run("an OpenSSH put cut mid-way is finished by reput on another instance", func(t *testing.T) {
		const (
			size     = 30*mib + 3
			cutAfter = 12 * mib
		)
		path, sum := patternFile(t, dir, "core.dump", size, 201)
		// The test's own looks go to an instance directly: the balancer's
		// turns are left to the clients.
		direct := goSFTP(t, loginOf(c.instances[0], cred))
		before := c.metrics(t)
		cutting := startCuttingProxy(t, c.lb.SFTPAddr, cutAfter)
		if out, err := openSSH(t, login.via(cutting.addr()), "put "+batchQuoted(path)+"\n"); err == nil {
			t.Fatalf("a put cut off after %d MiB succeeded:\n%s", cutAfter/mib, out)
		}
		if !cutting.cut.Load() {
			t.Fatal("the proxy never cut the connection")
		}
		waitStored(t, direct, "core.dump", 20*time.Second)
		// The cut instance lets go of the upload when it sees the
		// connection end; what it stored by then is what reput continues.
		if err := waitFor(20*time.Second, func() bool { return c.lockHolder(t, "lb") == "" }); err != nil {
			t.Fatalf("the upload's lock is still held by %s after the cut", c.lockHolder(t, "lb"))
		}
		stored := waitStored(t, direct, "core.dump", time.Second)
		counting := countingProxy(t, c.lb.SFTPAddr)
		out := mustOpenSSH(t, login.via(counting.addr()), "reput "+batchQuoted(path)+"\n")
		after := c.metrics(t)
		if sent := counting.carried.Load(); sent > resent(size, stored) {
			t.Errorf("reput sent %d bytes; the missing ones were %d: it did not resume\n%s", sent, size-stored, out)
		}
		bytes := growth(before, after, "casedrop_upload_bytes_received_total", "door", "sftp")
		t.Logf("cut after %d MiB, %d bytes stored; reput sent %d bytes; bytes stored per instance a, b, c: %v",
			cutAfter/mib, stored, counting.carried.Load(), bytes)
		c.checkStoredBy(t, 2, bytes, size) // the put's instance, and the reput's
		checkComplete(t, fileNamed(t, c.api.Files(t, "lb"), "core.dump"), size, sum)
		want["core.dump"] = sum
	})

	t.Run("an SFTP login through the balancer is logged with the client's own address", func(t *testing.T) {
		// HAProxy sends a PROXY header naming the client, port included: an
		// instance that took it logs the client's port, not HAProxy's.
		nc, err := net.DialTimeout("tcp", c.lb.SFTPAddr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		client := nc.LocalAddr().String()
		sc, chans, reqs, err := ssh.NewClientConn(nc, c.lb.SFTPAddr, &ssh.ClientConfig{
			User: cred.Username, Auth: []ssh.AuthMethod{ssh.Password(cred.Token)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
		})
		if err != nil {
			t.Fatalf("SFTP login through the balancer: %v", err)
		}
		ssh.NewClient(sc, chans, reqs).Close()
		logged := `"remote":"` + client + `"`
		if err := waitFor(5*time.Second, func() bool {
			for _, srv := range c.instances {
				for line := range strings.Lines(srv.Log()) {
					if strings.Contains(line, `"msg":"sftp login"`) && strings.Contains(line, logged) {
						return true
					}
				}
			}
			return false
		}); err != nil {
			t.Errorf("no instance logged the SFTP login with the client's address %s", client)
		}
	})

	t.Run("a WinSCP-style .filepart written on one instance is finished by its rename on another", func(t *testing.T) {
		const size = 7*mib + 11
		path, sum := patternFile(t, dir, "db.tar", size, 202)
		// The host keys, asked of an instance directly (all present the
		// same): through the balancer the probes would take turns too.
		hostKeys := hostKeyFingerprints(t, c.instances[0].SFTPAddr())
		before := c.metrics(t)
		if out, err := psftpWithHostKeys(t, login, hostKeys, "put "+batchQuoted(path)+" db.tar.filepart\n"); err != nil {
			t.Fatalf("psftp put: %v\n%s", err, out)
		}
		closed := c.metrics(t)
		if out, err := psftpWithHostKeys(t, login, hostKeys, "mv db.tar.filepart db.tar\n"); err != nil {
			t.Fatalf("psftp mv: %v\n%s", err, out)
		}
		after := c.metrics(t)
		wrote := c.servedBy(growth(before, closed, "casedrop_upload_bytes_received_total", "door", "sftp"))
		finished := c.servedBy(growth(closed, after, "casedrop_uploads_finished_total", "door", "sftp", "result", "complete"))
		t.Logf("db.tar.filepart written by %v, finished by %v", wrote, finished)
		if len(wrote) != 1 || len(finished) != 1 || wrote[0] == finished[0] {
			t.Errorf("the .filepart was written by %v and finished by %v; want one instance each, two different ones", wrote, finished)
		}
		checkComplete(t, fileNamed(t, c.api.Files(t, "lb"), "db.tar"), size, sum)
		want["db.tar"] = sum
	})

	t.Run("casedrop files get downloads every file through the balancer with its digest", func(t *testing.T) {
		if len(want) != 3 {
			t.Fatalf("the uploads before did not all finish (%v): nothing to download", want)
		}
		out := t.TempDir()
		before := c.metrics(t)
		for name, sum := range want {
			path := filepath.Join(out, name)
			get := c.instances[0].CLI(t.Context(), "files", "get", "--server", c.lb.URL, "--cacert", c.lb.CertFile,
				"--data-dir", t.TempDir(), "--case", "lb", "-o", path, name)
			get.Env = append(get.Env, "CASEDROP_ADMIN_TOKEN="+c.token)
			if msg, err := get.CombinedOutput(); err != nil {
				t.Fatalf("casedrop files get %s: %v\n%s", name, err, msg)
			}
			if got := sha256File(t, path); got != sum {
				t.Errorf("%s downloaded through the balancer hashes to %s, want %s", name, got, sum)
			}
		}
		after := c.metrics(t)
		gets := growth(before, after, "casedrop_http_request_seconds_count", "route", "GET /api/v1/cases/{case}/files/{name}")
		if served := c.servedBy(gets); len(served) < 2 {
			t.Errorf("the downloads went to %v; want them spread over the instances (per instance: %v)", served, gets)
		}
	})
}

// jsFile is a file for e2e/js/upload_many.mjs.
type jsFile struct {
	Path   string `json:"path"`
	Name   string `json:"name"`
	SHA256 string `json:"sha256,omitempty"`
}

// runTusJS uploads file with tus-js-client through the balancer, chunk
// bytes a PATCH, and returns its report.
func runTusJS(t *testing.T, lb *haproxytest.Balancer, token string, chunk int64, file jsFile) jsReport {
	t.Helper()
	root, err := testserver.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "tus-js-client", "package.json")); err != nil {
		t.Fatalf("tus-js-client is not installed: run `npm ci` in %s (%v)", root, err)
	}
	needTools(t, "node")
	job, err := json.Marshal(map[string]any{
		"endpoint": lb.URL + "/files/", "token": token, "chunkSize": chunk, "files": []jsFile{file},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(root, "e2e", "js", "upload_many.mjs"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+lb.CertFile)
	cmd.Stdin = bytes.NewReader(job)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var out struct {
		Results []jsReport `json:"results"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out.Results) != 1 {
		t.Fatalf("node: %v; stdout %q; stderr:\n%s", runErr, stdout.String(), stderr.String())
	}
	return out.Results[0]
}

// psftpWithHostKeys runs psftp's batch script as l, trusting the host keys
// with these fingerprints without asking for them on another connection.
func psftpWithHostKeys(t *testing.T, l sftpLogin, fingerprints []string, script string) (string, error) {
	t.Helper()
	needTools(t, "psftp")
	host, port := l.hostPort(t)
	args := []string{"-P", port, "-l", l.user, "-pwfile", writeSecret(t, "password", l.token), "-batch"}
	for _, fp := range fingerprints {
		args = append(args, "-hostkey", fp)
	}
	args = append(args, "-b", writeSecret(t, "psftp-script", script), host)
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	return clientOutput(clientCommand(ctx, os.Environ(), "psftp", args...))
}
