package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testserver"
	"github.com/minio/minio-go/v7"
)

// needTools fails the test unless every tool is on PATH (make test-deps
// installs them).
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: run `make test-deps` (%v)", tool, err)
		}
	}
}

// uploadPattern uploads size bytes of the pattern seeded with seed as
// name, through tus, and returns their hex SHA-256.
func uploadPattern(t *testing.T, srv *testserver.Server, token, name string, size int64, seed uint64) string {
	t.Helper()
	u := srv.Create(t, token, name, size, "")
	body := newPattern(seed).stream(0, size)
	body.hash = sha256.New()
	if n, _, err := srv.Patch(t.Context(), token, u, 0, body, size); err != nil || n != size {
		t.Fatalf("uploading %s: offset %d, %v", name, n, err)
	}
	body.waitEOF(t, 10*time.Second)
	return hex.EncodeToString(body.hash.Sum(nil))
}

// uploadBytes uploads data as name, declaring its digest.
func uploadBytes(t *testing.T, srv *testserver.Server, token, name string, data []byte) {
	t.Helper()
	sum := sha256.Sum256(data)
	u := srv.Create(t, token, name, int64(len(data)), hex.EncodeToString(sum[:]))
	if n, _, err := srv.Patch(t.Context(), token, u, 0, bytes.NewReader(data), int64(len(data))); err != nil || n != int64(len(data)) {
		t.Fatalf("uploading %s: offset %d, %v", name, n, err)
	}
}

// curl runs curl against srv, trusting its certificate, with token.
func curl(t *testing.T, srv *testserver.Server, token string, args ...string) ([]byte, error) {
	t.Helper()
	all := []string{"-sS", "--fail", "--cacert", filepath.Join(srv.DataDir, "tls.crt")}
	if token != "" {
		all = append(all, "-H", "Authorization: Bearer "+token)
	}
	return exec.CommandContext(t.Context(), "curl", append(all, args...)...).CombinedOutput()
}

func apiURL(srv *testserver.Server, caseID string, under ...string) string {
	u := srv.URL + "/api/v1/cases/" + url.PathEscape(caseID)
	for _, p := range under {
		u += "/" + url.PathEscape(p)
	}
	return u
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestADownloadedCasePassesSha256sumAndItsManifestSignatureOpenssl(t *testing.T) {
	needTools(t, "curl", "sha256sum", "openssl")
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		srv := testserver.Start(t, opts)
		requireManifestKey(t, srv)
		srv.OpenCase(t, "sums")
		token := srv.Credential(t, "sums", "staff").Token
		core, err := io.ReadAll(newPattern(5).stream(0, 3*mib))
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{
			"core dump.bin":     core,
			"logs app #1.log":   []byte("2026-11-23 app started\n"),
			"plain.txt":         []byte("plain"),
			"Prüfbericht ✓.pdf": []byte("%PDF-1.7 ..."),
		}
		for name, data := range files {
			uploadBytes(t, srv, token, name, data)
		}

		dir := t.TempDir()
		for name := range files {
			if out, err := curl(t, srv, token, "-o", filepath.Join(dir, name), apiURL(srv, "sums", "files", name)); err != nil {
				t.Fatalf("curl %s: %v\n%s", name, err, out)
			}
		}
		for _, fetch := range []struct{ url, file, token string }{
			{apiURL(srv, "sums", "SHA256SUMS"), "SHA256SUMS", token},
			{apiURL(srv, "sums", "SHA256SUMS.sig"), "SHA256SUMS.sig", token},
			{srv.URL + "/api/v1/manifest-key.pem", "manifest-key.pem", ""}, // public
		} {
			if out, err := curl(t, srv, fetch.token, "-o", filepath.Join(dir, fetch.file), fetch.url); err != nil {
				t.Fatalf("curl %s: %v\n%s", fetch.url, err, out)
			}
		}

		check := exec.CommandContext(t.Context(), "sha256sum", "--strict", "-c", "SHA256SUMS")
		check.Dir = dir
		out, err := check.CombinedOutput()
		if err != nil {
			t.Fatalf("sha256sum -c SHA256SUMS failed over the downloaded files: %v\n%s", err, out)
		}
		if n := strings.Count(string(out), ": OK"); n != len(files) {
			t.Fatalf("sha256sum checked %d files, want %d:\n%s", n, len(files), out)
		}

		verifySig := func(manifest string) ([]byte, error) {
			cmd := exec.CommandContext(t.Context(), "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "manifest-key.pem",
				"-rawin", "-in", manifest, "-sigfile", "SHA256SUMS.sig")
			cmd.Dir = dir
			return cmd.CombinedOutput()
		}
		if out, err := verifySig("SHA256SUMS"); err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
			t.Fatalf("openssl does not verify the manifest's signature with the published key: %v\n%s", err, out)
		}
		t.Run("openssl refuses the signature once one byte of the manifest changes", func(t *testing.T) {
			sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
			if err != nil {
				t.Fatal(err)
			}
			sums[10] ^= 0x01
			if err := os.WriteFile(filepath.Join(dir, "tampered"), sums, 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := verifySig("tampered"); err == nil {
				t.Fatalf("openssl verified a tampered manifest:\n%s", out)
			}
		})
		t.Run("casedrop manifest-key prints the published key", func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, "manifest-key.pem"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := srv.CLI(t.Context(), "manifest-key", "--server", srv.URL, "--data-dir", srv.DataDir).Output()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("manifest-key: %v\n%s\nwant\n%s", err, got, want)
			}
		})
	})
}

// requireManifestKey fails the test unless the server publishes a
// manifest key, saying what is missing when it does not.
func requireManifestKey(t *testing.T, srv *testserver.Server) {
	t.Helper()
	resp, err := srv.Client.Get(srv.URL + "/api/v1/manifest-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/manifest-key.pem: %s; serve must load manifest.LoadSigner and pass it as web.Config.ManifestSigner", resp.Status)
	}
}

func TestACurlDownloadCutAtARandomPointResumesWithCurlC(t *testing.T) {
	needTools(t, "curl")
	const size = 24 * mib
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "cut")
	token := srv.Credential(t, "cut", "staff").Token
	want := uploadPattern(t, srv, token, "trace 1.pcap", size, 6)

	seed := uint64(time.Now().UnixNano())
	cut := rand.New(rand.NewPCG(seed, 0)).Int64N(size-2) + 1
	t.Logf("cutting after %d bytes (seed %d)", cut, seed)
	out := filepath.Join(t.TempDir(), "trace.pcap")
	u := apiURL(srv, "cut", "files", "trace 1.pcap")
	if msg, err := curl(t, srv, token, "-r", "0-"+strconv.FormatInt(cut-1, 10), "-o", out, u); err != nil {
		t.Fatalf("curl -r: %v\n%s", err, msg)
	}
	if st, err := os.Stat(out); err != nil || st.Size() != cut {
		t.Fatalf("the cut download holds %v bytes (%v), want %d", st, err, cut)
	}
	// curl -C - asks for the rest with a Range from the file's length; it
	// fails if the server answers with the whole file instead.
	if msg, err := curl(t, srv, token, "-C", "-", "-o", out, u); err != nil {
		t.Fatalf("curl -C - did not resume: %v\n%s", err, msg)
	}
	if got := sha256File(t, out); got != want {
		t.Fatalf("the resumed download hashes to %s, want %s", got, want)
	}
}

// TestABigCaseStreamsAsAZip64ArchiveAndResumesAKilledFilesGet uploads two
// files of 2100 MiB: the archive of the case is over 4 GiB, so entries
// start past 4 GiB and the central directory needs Zip64.
func TestABigCaseStreamsAsAZip64ArchiveAndResumesAKilledFilesGet(t *testing.T) {
	needTools(t, "unzip", "/usr/bin/python3", "sha256sum")
	const (
		bigSize = 2100 * mib
		maxRSS  = 200 * mib
	)
	srv := testserver.Start(t, testserver.Options{})
	srv.OpenCase(t, "big")
	token := srv.Credential(t, "big", "customer").Token
	want := map[string]string{
		"a-core.1": uploadPattern(t, srv, token, "a-core.1", bigSize, 11),
		"b-core.2": uploadPattern(t, srv, token, "b-core.2", bigSize, 12),
	}
	small := map[string][]byte{"z back slash.log": []byte("after 4 GiB\n"), "zz-Prüfbericht.txt": []byte("ok\n")}
	for name, data := range small {
		uploadBytes(t, srv, token, name, data)
	}

	t.Run("the zip passes unzip -t and Python's zipfile, with bounded server memory", func(t *testing.T) {
		archive := filepath.Join(t.TempDir(), "big.zip")
		// A fresh process: its peak RSS is the zip's, not the uploads'
		// (whose part buffers stay for reuse).
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		srv.Restart(t)
		before, err := srv.ResetPeakRSS()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		n := downloadTo(t, srv, apiURL(srv, "big", "archive.zip"), archive)
		elapsed := time.Since(start)
		rss, err := srv.PeakRSS()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("archive.zip of %d bytes (%.2f GiB) in %v: %.0f MB/s; server RSS %.1f MiB before, peak %.1f MiB during it",
			n, float64(n)/(1<<30), elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds()/1e6, float64(before)/mib, float64(rss)/mib)
		if n <= 4<<30 {
			t.Fatalf("the archive has %d bytes; the test needs more than 4 GiB", n)
		}
		if rss >= maxRSS {
			t.Errorf("the server's peak RSS while streaming the zip was %.1f MiB, want below %d MiB", float64(rss)/mib, maxRSS/mib)
		}

		if out, err := exec.CommandContext(t.Context(), "unzip", "-tq", archive).CombinedOutput(); err != nil {
			t.Fatalf("unzip -t: %v\n%s", err, out)
		}
		script := `import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    if bad is not None:
        sys.exit("bad entry: " + bad)
    for i in z.infolist():
        print(i.file_size, i.filename)
`
		out, err := exec.CommandContext(t.Context(), "/usr/bin/python3", "-c", script, archive).CombinedOutput()
		if err != nil {
			t.Fatalf("python zipfile: %v\n%s", err, out)
		}
		listing := string(out)
		for _, entry := range []string{fmt.Sprint(int64(bigSize), " a-core.1"), fmt.Sprint(int64(bigSize), " b-core.2"),
			"12 z back slash.log", "3 zz-Prüfbericht.txt", " SHA256SUMS"} {
			if !strings.Contains(listing, entry) {
				t.Errorf("python lists no entry %q:\n%s", entry, listing)
			}
		}

		// The small files, past 4 GiB in the archive, come out under their
		// own names and match the manifest inside.
		dir := t.TempDir()
		if out, err := exec.CommandContext(t.Context(), "unzip", "-q", "-d", dir, archive, "-x", "a-core.1", "b-core.2").CombinedOutput(); err != nil {
			t.Fatalf("unzip: %v\n%s", err, out)
		}
		check := exec.CommandContext(t.Context(), "sha256sum", "--strict", "--ignore-missing", "-c", "SHA256SUMS")
		check.Dir = dir
		out, err = check.CombinedOutput()
		if err != nil || strings.Count(string(out), ": OK") != len(small) {
			t.Fatalf("sha256sum -c over the unzipped small files: %v\n%s", err, out)
		}
		sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		for name, sum := range want {
			if !strings.Contains(string(sums), sum+"  "+name+"\n") {
				t.Errorf("the manifest in the archive lacks %s %s:\n%s", sum, name, sums)
			}
		}
	})

	t.Run("casedrop files get killed mid-download resumes and verifies", func(t *testing.T) {
		const killAt = 300 * mib
		out := filepath.Join(t.TempDir(), "core")
		get := func(ctx context.Context) *exec.Cmd {
			cmd := srv.CLI(ctx, "files", "get", "--server", srv.URL, "--data-dir", srv.DataDir, "--case", "big", "-o", out, "b-core.2")
			cmd.Env = append(cmd.Env, "CASEDROP_ADMIN_TOKEN="+srv.AdminToken)
			return cmd
		}
		first := get(t.Context())
		var firstOut bytes.Buffer
		first.Stdout, first.Stderr = &firstOut, &firstOut
		if err := first.Start(); err != nil {
			t.Fatal(err)
		}
		err := waitFor(60*time.Second, func() bool {
			st, err := os.Stat(out)
			return err == nil && st.Size() >= killAt
		})
		_ = first.Process.Kill()
		waitErr := first.Wait()
		if err != nil {
			t.Fatalf("the download did not reach %d MiB: %v (%v)\n%s", killAt/mib, err, waitErr, firstOut.String())
		}
		st, err := os.Stat(out)
		if err != nil || st.Size() >= bigSize {
			t.Fatalf("after the kill the output holds %v bytes (%v): the kill came too late to test a resume", st, err)
		}
		t.Logf("killed casedrop files get with %d MiB written", st.Size()/mib)

		second, err := get(t.Context()).CombinedOutput()
		if err != nil {
			t.Fatalf("casedrop files get after the kill: %v\n%s", err, second)
		}
		if resumed := fmt.Sprintf("resuming %s from byte %d of %d", out, st.Size(), int64(bigSize)); !strings.Contains(string(second), resumed) {
			t.Errorf("the second run does not say %q:\n%s", resumed, second)
		}
		if got := sha256File(t, out); got != want["b-core.2"] {
			t.Fatalf("the resumed file hashes to %s, want %s", got, want["b-core.2"])
		}
	})
}

// downloadTo streams GET u (as the admin) into path and returns its length.
func downloadTo(t *testing.T, srv *testserver.Server, u, path string) int64 {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := io.Copy(f, resp.Body)
	if err != nil {
		t.Fatalf("GET %s after %d bytes: %v", u, n, err)
	}
	return n
}

// catalogKey is where a file's catalog entry is kept (docs/storage-layout.md).
func catalogKey(caseID, name string) string {
	sum := sha256.Sum256([]byte(cases.NameKey(name)))
	return "cases/" + caseID + "/files/n-" + hex.EncodeToString(sum[:20]) + ".json"
}

// runVerify runs `casedrop verify` with args and env and returns its
// output and exit status.
func runVerify(t *testing.T, srv *testserver.Server, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := srv.CLI(t.Context(), append([]string{"verify"}, args...)...)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		t.Fatalf("casedrop verify: %v", err)
	}
	return string(out), 0
}

func TestVerifyReportsAnObjectChangedBehindTheServersBack(t *testing.T) {
	uploadThree := func(t *testing.T, srv *testserver.Server) {
		srv.OpenCase(t, "v")
		token := srv.Credential(t, "v", "customer").Token
		for _, name := range []string{"one.bin", "two words.bin", "three.bin"} {
			uploadBytes(t, srv, token, name, bytes.Repeat([]byte(name), 10000))
		}
	}
	expectProblem := func(t *testing.T, out string, code int, kind, name string) {
		t.Helper()
		if code != 1 || !strings.Contains(out, kind) || !strings.Contains(out, strconv.Quote(name)) {
			t.Fatalf("verify exited %d; want 1 with %s of %q:\n%s", code, kind, name, out)
		}
	}

	t.Run("a byte flipped on local disk", func(t *testing.T) {
		srv := testserver.Start(t, testserver.Options{})
		uploadThree(t, srv)
		if out, code := runVerify(t, srv, nil, "--data-dir", srv.DataDir); code != 0 || !strings.Contains(out, "3 ok") {
			t.Fatalf("verify of a clean store exited %d:\n%s", code, out)
		}
		store := filepath.Join(srv.DataDir, "store")
		var f cases.File
		data, err := os.ReadFile(filepath.Join(store, catalogKey("v", "two words.bin")))
		if err != nil || json.Unmarshal(data, &f) != nil || f.Object == "" {
			t.Fatalf("reading the catalog entry: %v %q", err, data)
		}
		object := filepath.Join(store, "cases", "v", "objects", f.Object)
		obj, err := os.ReadFile(object)
		if err != nil {
			t.Fatal(err)
		}
		obj[len(obj)/2] ^= 0x01
		if err := os.WriteFile(object, obj, 0o600); err != nil {
			t.Fatal(err)
		}
		out, code := runVerify(t, srv, nil, "--data-dir", srv.DataDir)
		expectProblem(t, out, code, "MISMATCH", "two words.bin")
		if out, code := runVerify(t, srv, nil, "--data-dir", srv.DataDir, "--case", "v", "--file", "one.bin"); code != 0 {
			t.Fatalf("verify of an intact file exited %d:\n%s", code, out)
		}
	})

	t.Run("an object overwritten in MinIO", func(t *testing.T) {
		s3 := miniotest.Shared(t)
		bucket := s3.NewBucket(t)
		srv := testserver.Start(t, testserver.Options{S3: s3, Bucket: bucket})
		uploadThree(t, srv)
		args := []string{"--s3-endpoint", s3.Endpoint, "--s3-bucket", bucket, "--s3-access-key", s3.AccessKey, "--s3-insecure"}
		env := []string{"CASEDROP_S3_SECRET_KEY=" + s3.SecretKey}
		if out, code := runVerify(t, srv, env, args...); code != 0 || !strings.Contains(out, "3 ok") {
			t.Fatalf("verify of a clean bucket exited %d:\n%s", code, out)
		}
		client, err := s3.Client()
		if err != nil {
			t.Fatal(err)
		}
		objectOf := func(name string) string {
			obj, err := client.GetObject(t.Context(), bucket, catalogKey("v", name), minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Close()
			var f cases.File
			if err := json.NewDecoder(obj).Decode(&f); err != nil || f.Object == "" {
				t.Fatalf("reading the catalog entry of %s: %v", name, err)
			}
			return "cases/v/objects/" + f.Object
		}
		other := bytes.Repeat([]byte("ONE.BIN"), 10000)
		if _, err := client.PutObject(t.Context(), bucket, objectOf("one.bin"), bytes.NewReader(other), int64(len(other)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		out, code := runVerify(t, srv, env, args...)
		expectProblem(t, out, code, "MISMATCH", "one.bin")

		if err := client.RemoveObject(t.Context(), bucket, objectOf("three.bin"), minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		out, code = runVerify(t, srv, env, args...)
		expectProblem(t, out, code, "MISSING", "three.bin")
	})
}
