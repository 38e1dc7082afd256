package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/manifest"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/upload"
	"github.com/casedrop/casedrop/web"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestServeSettingsStillComeFromFlagsThenEnvironmentThenDefaults(t *testing.T) {
	c, err := parseConfig("serve", []string{"--https-addr", ":9443", "--s3-insecure"}, env(map[string]string{
		"CASEDROP_HTTPS_ADDR": ":7443", "CASEDROP_SFTP_ADDR": ":2022", "CASEDROP_ADMIN_TOKEN": "tok",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPSAddr != ":9443" || c.SFTPAddr != ":2022" || c.DataDir != "./casedrop-data" || !c.S3Insecure || c.PartSizeMiB != 16 ||
		c.AdminToken != "tok" || c.PublicURL != "https://localhost:9443" {
		t.Fatalf("config %+v", c)
	}
	for _, args := range [][]string{{"extra"}, {"--no-such-flag"}, {"--tls-cert", "x.pem"}, {"--part-size-mib", "2"}} {
		if _, err := parseConfig("serve", args, env(nil)); !errors.As(err, new(usageError)) {
			t.Errorf("serve %v: %v, want a usage error", args, err)
		}
	}
	if _, err := parseConfig("serve", []string{"-h"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("serve -h: %v, want flag.ErrHelp", err)
	}
}

func TestEmbedOriginsComeFromTheFlagOrTheEnvironmentNormalised(t *testing.T) {
	c, err := parseConfig("serve", nil, env(nil))
	if err != nil || c.embedOrigins != nil {
		t.Fatalf("default: %q, %v; want none", c.embedOrigins, err)
	}
	c, err = parseConfig("serve", nil, env(map[string]string{"CASEDROP_EMBED_ORIGINS": "https://Support.Example.com:443, http://127.0.0.1:9000"}))
	if err != nil || strings.Join(c.embedOrigins, " ") != "https://support.example.com http://127.0.0.1:9000" {
		t.Fatalf("from the environment: %q, %v", c.embedOrigins, err)
	}
	c, err = parseConfig("serve", []string{"--embed-origins", "https://portal.test"}, env(map[string]string{"CASEDROP_EMBED_ORIGINS": "https://other.test"}))
	if err != nil || strings.Join(c.embedOrigins, " ") != "https://portal.test" {
		t.Fatalf("the flag over the environment: %q, %v", c.embedOrigins, err)
	}
}

func TestABadEmbedOriginRefusesToStartNamingIt(t *testing.T) {
	for _, bad := range []string{"https://support.example.com/portal", "*", "https://*.example.com", "null",
		"support.example.com", "https://support.example.com?x", "https://user@support.example.com", "ftp://support.example.com"} {
		_, err := parseConfig("serve", []string{"--embed-origins", "https://ok.test," + bad}, env(nil))
		if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "--embed-origins") || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("--embed-origins %s: %v, want a usage error naming the flag and the value", bad, err)
		}
		_, err = parseConfig("serve", nil, env(map[string]string{"CASEDROP_EMBED_ORIGINS": bad}))
		if err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("CASEDROP_EMBED_ORIGINS=%s: %v, want refused naming the value", bad, err)
		}
	}
}

func TestOneScannerAtAWellFormedAddressOrServeRefusesToStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // in the error; empty: starts
	}{
		{"clamd alone", []string{"--scan-clamd", "tcp://127.0.0.1:3310"}, nil, ""},
		{"ICAP alone", []string{"--scan-icap", "icap://127.0.0.1:1344/virus_scan?mode=simple"}, nil, ""},
		{"ICAP from the environment", nil, map[string]string{"CASEDROP_SCAN_ICAP": "icap://icap.example/avscan"}, ""},
		{"both", []string{"--scan-clamd", "tcp://127.0.0.1:3310", "--scan-icap", "icap://127.0.0.1/virus_scan"}, nil, "not both"},
		{"both, one from the environment", []string{"--scan-icap", "icap://127.0.0.1/virus_scan"}, map[string]string{"CASEDROP_SCAN_CLAMD": "tcp://127.0.0.1:3310"}, "not both"},
		{"an ICAP URL without a service", []string{"--scan-icap", "icap://127.0.0.1:1344"}, nil, "--scan-icap"},
		{"an ICAP URL of another scheme", []string{"--scan-icap", "http://127.0.0.1:1344/virus_scan"}, nil, "icap://host[:port]/service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig("serve", tc.args, env(tc.env))
			if tc.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.want != "" && (!errors.As(err, new(usageError)) || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("%v, want a usage error with %q", err, tc.want)
			}
		})
	}
}

func TestDataCommandsTakeOnlyTheSettingsOfWhereTheDataIs(t *testing.T) {
	var only string
	c, rest, err := parseCommand("verify", []string{"--data-dir", "/d", "--s3-bucket", "b", "--case", "C", "x", "--", "-y"},
		env(map[string]string{"CASEDROP_S3_ENDPOINT": "s3:9000", "CASEDROP_HTTPS_ADDR": ":1"}), dataSettings,
		func(fs *flag.FlagSet) { fs.StringVar(&only, "case", "", "") })
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/d" || c.S3Bucket != "b" || c.S3Endpoint != "s3:9000" || only != "C" || c.HTTPSAddr != ":1" {
		t.Fatalf("config %+v, case %q", c, only)
	}
	if strings.Join(rest, " ") != "x -y" {
		t.Fatalf("arguments %q, want x and -y", rest)
	}
	if _, _, err := parseCommand("verify", []string{"--https-addr", ":1"}, env(nil), dataSettings, nil); !errors.As(err, new(usageError)) {
		t.Fatalf("verify --https-addr: %v, want a usage error", err)
	}
	var out string
	_, rest, err = parseCommand("files get", []string{"--case", "C", "core.bin", "-o", "/tmp/x"}, env(nil), dataDirOnly,
		func(fs *flag.FlagSet) { fs.String("case", "", ""); fs.StringVar(&out, "o", "", "") })
	if err != nil || len(rest) != 1 || rest[0] != "core.bin" || out != "/tmp/x" {
		t.Fatalf("a flag after the name: %v, rest %q, -o %q", err, rest, out)
	}
}

// testServer is the real HTTP surface on local disk, behind TLS, with
// the store beneath it for going behind its back.
type testServer struct {
	url, cacert, dataDir string
	store                *diskstore.Store
	catalog              *cases.Catalog
	ingest               *upload.Ingest
	// cutAfter, when positive, cuts the next file download after that
	// many bytes of body.
	cutAfter atomic.Int64
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{dataDir: t.TempDir()}
	var err error
	if ts.store, err = diskstore.New(filepath.Join(ts.dataDir, "store")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ts.catalog = cases.New(ts.store, time.Now)
	ts.ingest = upload.New(upload.Config{Store: ts.store, Catalog: ts.catalog, Now: time.Now, Logger: slog.New(slog.DiscardHandler)})
	keys, err := auth.LoadKeys(ctx, ts.store, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := manifest.LoadSigner(ctx, ts.store)
	if err != nil {
		t.Fatal(err)
	}
	h, err := web.New(web.Config{
		Catalog: ts.catalog, Ingest: ts.ingest, AdminToken: "admin-token",
		Issuer:         &auth.Issuer{Keys: keys, Issuer: "casedrop", Now: time.Now},
		Verifier:       &auth.Verifier{Keys: keys, Issuer: "casedrop", Now: time.Now, Revocations: ts.catalog},
		ManifestSigner: signer, Now: time.Now, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/files/") {
			if n := ts.cutAfter.Swap(0); n > 0 {
				w = &cuttingWriter{ResponseWriter: w, left: n}
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ts.url = srv.URL
	ts.cacert = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ts.cacert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.catalog.Open(ctx, "C-1"); err != nil {
		t.Fatal(err)
	}
	return ts
}

// cuttingWriter passes left bytes of body on, then breaks the connection.
type cuttingWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cuttingWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > c.left {
		_, _ = c.ResponseWriter.Write(b[:c.left])
		c.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	c.left -= int64(len(b))
	return c.ResponseWriter.Write(b)
}

// put stores data as the complete file name of case C-1.
func (ts *testServer) put(t *testing.T, name string, data []byte) cases.File {
	t.Helper()
	ctx := context.Background()
	up, err := ts.ingest.Create(ctx, upload.NewFile{Case: "C-1", Name: name, Size: int64(len(data)), Via: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(ctx, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	f, err := up.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (ts *testServer) get(t *testing.T, out, name string, extra ...string) (string, error) {
	t.Helper()
	args := append([]string{"--server", ts.url, "--cacert", ts.cacert, "--case", "C-1", "-o", out, name}, extra...)
	notes, err := os.CreateTemp(t.TempDir(), "notes")
	if err != nil {
		t.Fatal(err)
	}
	defer notes.Close()
	err = filesGet(context.Background(), args, env(map[string]string{"CASEDROP_ADMIN_TOKEN": "admin-token"}), notes)
	text, _ := os.ReadFile(notes.Name())
	return string(text), err
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestFilesGetResumesAnInterruptedDownloadAndChecksTheWholeFile(t *testing.T) {
	ts := startServer(t)
	data := pattern(3<<20 + 12345)
	ts.put(t, "core dump.bin", data)
	out := filepath.Join(t.TempDir(), "core.bin")

	ts.cutAfter.Store(1 << 20)
	if _, err := ts.get(t, out, "core dump.bin"); err == nil || !strings.Contains(err.Error(), "run the same command again") {
		t.Fatalf("a download cut by the server: %v, want an error that says to run again", err)
	}
	st, err := os.Stat(out)
	if err != nil || st.Size() == 0 || st.Size() >= int64(len(data)) {
		t.Fatalf("after the cut the output holds %v bytes (%v); want a part of the file", st, err)
	}
	notes, err := ts.get(t, out, "core dump.bin")
	if err != nil {
		t.Fatalf("running again: %v", err)
	}
	if !strings.Contains(notes, fmt.Sprintf("resuming %s from byte %d of %d", out, st.Size(), len(data))) {
		t.Fatalf("the second run did not resume where the first stopped: %q", notes)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("the resumed file differs from the uploaded one")
	}

	t.Run("a complete file is only checked", func(t *testing.T) {
		if notes, err := ts.get(t, out, "core dump.bin"); err != nil || notes != "" {
			t.Fatalf("%q, %v", notes, err)
		}
	})
	t.Run("a partial file of other bytes fails the digest check", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other")
		if err := os.WriteFile(other, []byte("not the start of the file"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.get(t, other, "core dump.bin"); !errors.Is(err, errDigestMismatch) {
			t.Fatalf("got %v, want a digest mismatch", err)
		}
	})
	t.Run("a local file larger than the server's is left alone", func(t *testing.T) {
		big := filepath.Join(t.TempDir(), "big")
		if err := os.WriteFile(big, append(bytes.Clone(data), 'x'), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.get(t, big, "core dump.bin"); err == nil || !strings.Contains(err.Error(), "not a partial download") {
			t.Fatalf("got %v", err)
		}
		if st, _ := os.Stat(big); st.Size() != int64(len(data))+1 {
			t.Fatal("the larger file was changed")
		}
	})
	t.Run("without a credential it says how to give one", func(t *testing.T) {
		err := filesGet(context.Background(), []string{"--server", ts.url, "--data-dir", t.TempDir(), "--case", "C-1", "x"}, env(nil), nil)
		if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "CASEDROP_TOKEN") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestFilesListPrintsTheCaseFiles(t *testing.T) {
	ts := startServer(t)
	f := ts.put(t, "app log ✓.log", []byte("lines"))
	var out bytes.Buffer
	err := filesList(context.Background(), []string{"--server", ts.url, "--cacert", ts.cacert, "--case", "C-1"},
		env(map[string]string{"CASEDROP_ADMIN_TOKEN": "admin-token"}), &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "app log ✓.log") || !strings.Contains(out.String(), f.SHA256) {
		t.Fatalf("list:\n%s", out.String())
	}
	out.Reset()
	err = filesList(context.Background(), []string{"C-1", "--server", ts.url, "--cacert", ts.cacert},
		env(map[string]string{"CASEDROP_ADMIN_TOKEN": "admin-token"}), &out)
	if err != nil || !strings.Contains(out.String(), f.SHA256) {
		t.Fatalf("files list with the case as an argument: %v\n%s", err, out.String())
	}
}

// verifyData runs `casedrop verify` on the test server's data directory.
func verifyData(t *testing.T, ts *testServer, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runVerify(context.Background(), append([]string{"--data-dir", ts.dataDir}, args...), env(nil), &out, nil)
	return out.String(), err
}

func TestVerifyReportsCorruptAndMissingObjects(t *testing.T) {
	ts := startServer(t)
	a := ts.put(t, "a.bin", pattern(100000))
	b := ts.put(t, "b b.bin", pattern(5000))
	ts.put(t, "c.bin", pattern(10))
	if _, _, err := ts.catalog.Open(context.Background(), "C-2"); err != nil {
		t.Fatal(err)
	}

	if out, err := verifyData(t, ts); err != nil || !strings.Contains(out, "3 files") || !strings.Contains(out, "3 ok") {
		t.Fatalf("a clean store: %v\n%s", err, out)
	}
	objectPath := func(f cases.File) string {
		return filepath.Join(ts.dataDir, "store", "cases", "C-1", "objects", f.Object)
	}
	flipByte(t, objectPath(a), 4242)
	if err := os.Remove(objectPath(b)); err != nil {
		t.Fatal(err)
	}

	out, err := verifyData(t, ts)
	if !errors.Is(err, errProblemsFound) {
		t.Fatalf("a corrupt store: %v, want problems found\n%s", err, out)
	}
	for _, want := range []string{`MISMATCH   C-1 "a.bin": stored bytes hash to`, `MISSING    C-1 "b b.bin"`, "1 ok, 1 mismatched, 1 missing"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	t.Run("one file is verified alone", func(t *testing.T) {
		if out, err := verifyData(t, ts, "--case", "C-1", "--file", "c.bin"); err != nil || !strings.Contains(out, "1 files") {
			t.Fatalf("%v\n%s", err, out)
		}
		if _, err := verifyData(t, ts, "--case", "C-1", "--file", "a.bin"); !errors.Is(err, errProblemsFound) {
			t.Fatalf("the corrupt file alone: %v", err)
		}
	})
	t.Run("another case is not affected", func(t *testing.T) {
		if out, err := verifyData(t, ts, "--case", "C-2"); err != nil || !strings.Contains(out, "0 files") {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("what does not exist is an error, not a clean report", func(t *testing.T) {
		for _, args := range [][]string{{"--case", "C-3"}, {"--case", "C-1", "--file", "nope"}} {
			if _, err := verifyData(t, ts, args...); err == nil || errors.Is(err, errProblemsFound) {
				t.Errorf("verify %v: %v", args, err)
			}
		}
		var out bytes.Buffer
		if err := runVerify(context.Background(), []string{"--data-dir", t.TempDir()}, env(nil), &out, nil); err == nil || !strings.Contains(err.Error(), "no casedrop data") {
			t.Errorf("an empty data directory: %v", err)
		}
	})
	t.Run("--file needs --case", func(t *testing.T) {
		if _, err := verifyData(t, ts, "--file", "a.bin"); !errors.As(err, new(usageError)) {
			t.Fatalf("got %v", err)
		}
	})
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func TestManifestKeyPrintsThePublicKeyFromTheDataOrTheServer(t *testing.T) {
	ts := startServer(t)
	want, err := manifest.PublicKeyPEM(context.Background(), ts.store)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--data-dir", ts.dataDir}, {"--server", ts.url, "--cacert", ts.cacert}} {
		var out bytes.Buffer
		if err := runManifestKey(context.Background(), args, env(nil), &out); err != nil || !bytes.Equal(out.Bytes(), want) {
			t.Errorf("manifest-key %v: %v\n%s", args, err, out.String())
		}
	}
	empty := t.TempDir()
	if err := os.MkdirAll(filepath.Join(empty, "store"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := runManifestKey(context.Background(), []string{"--data-dir", empty}, env(nil), new(bytes.Buffer)); !errors.Is(err, manifest.ErrNoKey) {
		t.Errorf("a store without a key: %v, want ErrNoKey", err)
	}
}

func TestReprDigestParsing(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	b64 := base64.StdEncoding.EncodeToString(sum[:])
	for field, ok := range map[string]bool{
		"sha-256=:" + b64 + ":":                 true,
		"sha-512=:AAAA:, sha-256=:" + b64 + ":": true,
		"sha-512=:AAAA:":                        false,
		"sha-256=:AAAA:":                        false,
		"":                                      false,
	} {
		got, err := reprSHA256(field)
		if ok != (err == nil) || ok && hex.EncodeToString(got) != hex.EncodeToString(sum[:]) {
			t.Errorf("%q: %x, %v", field, got, err)
		}
	}
}

func TestFilesGetNeverWritesOutsideItsFolder(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, out, want string }{
		{`..\..\x.bat`, "", ".._.._x.bat"},
		{"../../etc/passwd", "", ".._.._etc_passwd"},
		{"CON", "", "_CON"},
		{"x.txt. ", "", "x.txt"},
		{"core.bin", "", "core.bin"},
		{"../../etc/passwd", dir, filepath.Join(dir, ".._.._etc_passwd")},
		{"/abs/name", dir, filepath.Join(dir, "_abs_name")},
		{"core.bin", filepath.Join(dir, "chosen.bin"), filepath.Join(dir, "chosen.bin")},
	} {
		got, err := outputPath(tc.name, tc.out, io.Discard)
		if err != nil || got != tc.want {
			t.Errorf("outputPath(%q, %q) = %q, %v; want %q", tc.name, tc.out, got, err, tc.want)
		}
	}
}
