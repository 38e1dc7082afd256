package web_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/web"
)

// newSignedEnv is newEnv: every env signs its manifests.
func newSignedEnv(t *testing.T) *env { return newEnv(t) }

// upload stores data as a complete file named name, in one request.
func (e *env) upload(token, name string, data []byte) {
	e.t.Helper()
	resp := e.do("POST", "/files/", token, bytes.NewReader(data), "Tus-Resumable", "1.0.0",
		"Upload-Length", fmt.Sprint(len(data)), "Upload-Metadata", meta("filename", name),
		"Content-Type", "application/offset+octet-stream")
	e.expect(resp, http.StatusCreated)
}

// legacyUpload stores data as a complete file of case c1 named name the
// way releases before today's name rules did: its catalog entry under a
// hash of the name exactly as given (docs/storage-layout.md), whatever
// the name.
func (e *env) legacyUpload(token, name string, data []byte) {
	e.t.Helper()
	ctx := context.Background()
	placeholder := fmt.Sprintf("legacy-%x", sha256.Sum256([]byte(name)))
	e.upload(token, placeholder, data)
	f, err := e.catalog.File(ctx, "c1", placeholder)
	if err != nil {
		e.t.Fatal(err)
	}
	f.Name = name
	entry, err := json.Marshal(f)
	if err != nil {
		e.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(name))
	key := cases.Prefix("c1") + "files/" + hex.EncodeToString(sum[:20]) + ".json"
	if err := e.store.Put(ctx, key, bytes.NewReader(entry), int64(len(entry))); err != nil {
		e.t.Fatal(err)
	}
	if err := e.catalog.RemoveFile(ctx, "c1", placeholder); err != nil {
		e.t.Fatal(err)
	}
}

func filePath(caseID, name string) string {
	return "/api/v1/cases/" + caseID + "/files/" + url.PathEscape(name)
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

func TestSHA256SUMSListsTheCompleteFilesInSha256sumFormat(t *testing.T) {
	e := newSignedEnv(t)
	cred := e.openCase("c1")
	files := map[string][]byte{
		"core dump.bin":   []byte("core bytes"),
		`C:\logs\app.log`: []byte("log lines\n"),
		"plain.txt":       []byte("plain"),
	}
	for name, data := range files {
		if name == `C:\logs\app.log` { // refused today, stored by an older release
			e.legacyUpload(cred.Token, name, data)
			continue
		}
		e.upload(cred.Token, name, data)
	}
	e.create(cred.Token, 100, meta("filename", "still-uploading.bin"))
	e.expect(e.patch(cred.Token, e.create(cred.Token, 3, meta("filename", "refused.bin", "sha256", shaHex([]byte("other")))), 0, []byte("abc")), 460)
	t.Run("a name with a newline never enters a case", func(t *testing.T) {
		e.expect(e.do("POST", "/files/", cred.Token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "1", "Upload-Metadata", meta("filename", "a\nb")), http.StatusBadRequest)
	})

	want := "# casedrop manifest of case c1\n# as of 2026-11-23T09:00:00Z\n" +
		`\` + shaHex(files[`C:\logs\app.log`]) + `  C:\\logs\\app.log` + "\n" +
		shaHex(files["core dump.bin"]) + "  core dump.bin\n" +
		shaHex(files["plain.txt"]) + "  plain.txt\n"
	resp := e.do("GET", "/api/v1/cases/c1/SHA256SUMS", cred.Token, nil)
	if got := e.expect(resp, 200); string(got) != want {
		t.Fatalf("SHA256SUMS is\n%q\nwant\n%q", got, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	t.Run("the admin gets the same manifest", func(t *testing.T) {
		if got := e.expect(e.do("GET", "/api/v1/cases/c1/SHA256SUMS", adminToken, nil), 200); string(got) != want {
			t.Fatalf("admin's SHA256SUMS %q", got)
		}
	})
	t.Run("a case that does not exist has no manifest", func(t *testing.T) {
		e.expect(e.do("GET", "/api/v1/cases/nope/SHA256SUMS", adminToken, nil), http.StatusNotFound)
	})
}

func TestTheManifestSignatureVerifiesWithThePublishedKey(t *testing.T) {
	e := newSignedEnv(t)
	cred := e.openCase("c1")
	e.upload(cred.Token, "a.bin", []byte("first"))
	e.upload(cred.Token, "b b.bin", []byte("second"))

	sumsResp := e.do("GET", "/api/v1/cases/c1/SHA256SUMS", cred.Token, nil)
	sums := e.expect(sumsResp, 200)
	sig := e.expect(e.do("GET", "/api/v1/cases/c1/SHA256SUMS.sig", cred.Token, nil), 200)
	keyResp := e.do("GET", "/api/v1/manifest-key.pem", "", nil)
	pemBytes := e.expect(keyResp, 200)

	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("manifest-key.pem is not a PEM public key: %q", pemBytes)
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := parsed.(ed25519.PublicKey)
	if !ok {
		t.Fatalf("the manifest key is a %T, want Ed25519", parsed)
	}
	if len(sig) != ed25519.SignatureSize {
		t.Fatalf("signature of %d bytes, want %d raw bytes", len(sig), ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, sums, sig) {
		t.Fatal("the signature does not verify over SHA256SUMS")
	}
	t.Run("and fails once one byte of the manifest changes", func(t *testing.T) {
		changed := bytes.Clone(sums)
		changed[len(changed)/2] ^= 0x01
		if ed25519.Verify(pub, changed, sig) {
			t.Fatal("the signature verifies over a changed manifest")
		}
	})
	t.Run("the manifest stays the same bytes while the case does not change", func(t *testing.T) {
		e.clock.Advance(time.Hour)
		resp := e.do("GET", "/api/v1/cases/c1/SHA256SUMS", cred.Token, nil)
		if again := e.expect(resp, 200); !bytes.Equal(again, sums) || resp.Header.Get("ETag") != sumsResp.Header.Get("ETag") {
			t.Fatalf("an hour later the manifest is\n%s\nwas\n%s", again, sums)
		}
	})
	t.Run("the SSH signature is an SSHSIG in the case's namespace", func(t *testing.T) {
		resp := e.do("GET", "/api/v1/cases/c1/SHA256SUMS.sshsig", cred.Token, nil)
		armored := e.expect(resp, 200)
		block, _ := pem.Decode(armored)
		if block == nil || block.Type != "SSH SIGNATURE" || !bytes.HasPrefix(block.Bytes, []byte("SSHSIG")) ||
			!bytes.Contains(block.Bytes, []byte("casedrop-case:c1")) {
			t.Fatalf("SHA256SUMS.sshsig is not an SSHSIG of case c1's namespace:\n%s", armored)
		}
		if resp.Header.Get("ETag") != sumsResp.Header.Get("ETag") {
			t.Fatalf("SHA256SUMS.sshsig has ETag %s, the manifest %s", resp.Header.Get("ETag"), sumsResp.Header.Get("ETag"))
		}
		line := e.expect(e.do("GET", "/api/v1/manifest-allowed-signers", "", nil), 200)
		if !strings.HasPrefix(string(line), `casedrop namespaces="casedrop-case:*" ssh-ed25519 AAAA`) {
			t.Fatalf("allowed signers line %q", line)
		}
	})
	t.Run("If-Match with the manifest's ETag pins the signatures to those bytes", func(t *testing.T) {
		etag := sumsResp.Header.Get("ETag")
		for _, sig := range []string{"SHA256SUMS.sig", "SHA256SUMS.sshsig"} {
			e.expect(e.do("GET", "/api/v1/cases/c1/"+sig, cred.Token, nil, "If-Match", etag), 200)
		}
		e.upload(cred.Token, "c.bin", []byte("third"))
		for _, sig := range []string{"SHA256SUMS.sig", "SHA256SUMS.sshsig"} {
			e.expect(e.do("GET", "/api/v1/cases/c1/"+sig, cred.Token, nil, "If-Match", etag), http.StatusPreconditionFailed)
		}
	})
	t.Run("the key is public but the manifest and signatures are not", func(t *testing.T) {
		other := e.openCase("c2")
		for _, path := range []string{"/api/v1/cases/c1/SHA256SUMS", "/api/v1/cases/c1/SHA256SUMS.sig", "/api/v1/cases/c1/SHA256SUMS.sshsig", "/api/v1/cases/c1/archive.zip"} {
			e.expect(e.do("GET", path, "", nil), http.StatusUnauthorized)
			e.expect(e.do("GET", path, other.Token, nil), http.StatusForbidden)
		}
	})
}

func TestAServerWithoutAManifestKeySaysSo(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.ManifestSigner = nil })
	cred := e.openCase("c1")
	e.expect(e.do("GET", "/api/v1/cases/c1/SHA256SUMS", cred.Token, nil), 200)
	e.expect(e.do("GET", "/api/v1/cases/c1/SHA256SUMS.sig", cred.Token, nil), http.StatusServiceUnavailable)
	e.expect(e.do("GET", "/api/v1/cases/c1/SHA256SUMS.sshsig", cred.Token, nil), http.StatusServiceUnavailable)
	e.expect(e.do("GET", "/api/v1/manifest-key.pem", "", nil), http.StatusServiceUnavailable)
	e.expect(e.do("GET", "/api/v1/manifest-allowed-signers", "", nil), http.StatusServiceUnavailable)
}

func TestDownloadsServeRangesIfRangeHEADAndDigests(t *testing.T) {
	e := newSignedEnv(t)
	cred := e.openCase("c1")
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	e.upload(cred.Token, "trace.pcap", data)
	path := filePath("c1", "trace.pcap")
	etag := `"` + shaHex(data) + `"`

	t.Run("a whole download carries Content-Digest equal to Repr-Digest", func(t *testing.T) {
		resp := e.do("GET", path, cred.Token, nil)
		if got := e.expect(resp, 200); !bytes.Equal(got, data) {
			t.Fatal("bytes differ")
		}
		if resp.Header.Get("Repr-Digest") != digestOf(data) || resp.Header.Get("Content-Digest") != digestOf(data) {
			t.Fatalf("Repr-Digest %q, Content-Digest %q; want both %q", resp.Header.Get("Repr-Digest"), resp.Header.Get("Content-Digest"), digestOf(data))
		}
		if resp.Header.Get("ETag") != etag || resp.Header.Get("Accept-Ranges") != "bytes" {
			t.Fatalf("ETag %q, Accept-Ranges %q", resp.Header.Get("ETag"), resp.Header.Get("Accept-Ranges"))
		}
	})
	t.Run("a range is served with the representation's digest only", func(t *testing.T) {
		resp := e.do("GET", path, cred.Token, nil, "Range", "bytes=1000-")
		if got := e.expect(resp, http.StatusPartialContent); !bytes.Equal(got, data[1000:]) {
			t.Fatal("range bytes differ")
		}
		if cr := resp.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes 1000-%d/%d", len(data)-1, len(data)) {
			t.Fatalf("Content-Range %q", cr)
		}
		if resp.Header.Get("Content-Digest") != "" || resp.Header.Get("Repr-Digest") != digestOf(data) {
			t.Fatalf("on a 206: Content-Digest %q (want none), Repr-Digest %q", resp.Header.Get("Content-Digest"), resp.Header.Get("Repr-Digest"))
		}
	})
	t.Run("If-Range with the current ETag resumes with the range", func(t *testing.T) {
		resp := e.do("GET", path, cred.Token, nil, "Range", "bytes=60000-", "If-Range", etag)
		if got := e.expect(resp, http.StatusPartialContent); !bytes.Equal(got, data[60000:]) {
			t.Fatal("range bytes differ")
		}
	})
	t.Run("If-Range with a stale ETag sends the whole file", func(t *testing.T) {
		resp := e.do("GET", path, cred.Token, nil, "Range", "bytes=60000-", "If-Range", `"`+shaHex([]byte("older content"))+`"`)
		if got := e.expect(resp, 200); !bytes.Equal(got, data) {
			t.Fatal("not the whole file")
		}
		if resp.Header.Get("Content-Digest") != digestOf(data) {
			t.Fatalf("Content-Digest %q on the whole file", resp.Header.Get("Content-Digest"))
		}
	})
	t.Run("a range past the end is not satisfiable", func(t *testing.T) {
		e.expect(e.do("GET", path, cred.Token, nil, "Range", fmt.Sprintf("bytes=%d-", len(data))), http.StatusRequestedRangeNotSatisfiable)
	})
	t.Run("HEAD has the headers and no body", func(t *testing.T) {
		resp := e.do("HEAD", path, cred.Token, nil)
		if body := e.expect(resp, 200); len(body) != 0 {
			t.Fatalf("HEAD sent %d bytes", len(body))
		}
		if resp.ContentLength != int64(len(data)) || resp.Header.Get("Repr-Digest") != digestOf(data) || resp.Header.Get("ETag") != etag {
			t.Fatalf("HEAD: Content-Length %d, Repr-Digest %q, ETag %q", resp.ContentLength, resp.Header.Get("Repr-Digest"), resp.Header.Get("ETag"))
		}
		if resp.Header.Get("Content-Digest") != "" {
			t.Fatal("HEAD carries a Content-Digest though it has no content")
		}
	})
}

func TestContentDispositionNamesEveryFileExactly(t *testing.T) {
	e := newSignedEnv(t)
	cred := e.openCase("c1")
	for _, tc := range []struct {
		what, name, header string
	}{
		{"a plain name is quoted", "core.tar.gz", `attachment; filename="core.tar.gz"`},
		{"a name with spaces and a semicolon is quoted", "my dump; 2.bin", `attachment; filename="my dump; 2.bin"`},
		{"a UTF-8 name goes into filename*", "Prüfbericht ✓.pdf", `attachment; filename="Pr_fbericht _.pdf"; filename*=UTF-8''Pr%C3%BCfbericht%20%E2%9C%93.pdf`},
		{"a name with a quote goes into filename*", `say "hi".txt`, `attachment; filename="say _hi_.txt"; filename*=UTF-8''say%20%22hi%22.txt`},
		{"a name with a backslash goes into filename*", `C:\x.log`, `attachment; filename="C:_x.log"; filename*=UTF-8''C%3A%5Cx.log`},
		{"a name with a percent sign goes into filename*", "100%.txt", `attachment; filename="100_.txt"; filename*=UTF-8''100%25.txt`},
	} {
		t.Run(tc.what, func(t *testing.T) {
			if cases.ValidName(tc.name) != nil { // stored by an older release
				e.legacyUpload(cred.Token, tc.name, []byte(tc.name))
			} else {
				e.upload(cred.Token, tc.name, []byte(tc.name))
			}
			resp := e.do("HEAD", filePath("c1", tc.name), cred.Token, nil)
			e.expect(resp, 200)
			got := resp.Header.Get("Content-Disposition")
			if got != tc.header {
				t.Errorf("Content-Disposition %s\nwant %s", got, tc.header)
			}
			disposition, params, err := mime.ParseMediaType(got)
			if err != nil || disposition != "attachment" || params["filename"] != tc.name {
				t.Fatalf("a MIME parser reads %q %q (%v), want attachment %q", disposition, params["filename"], err, tc.name)
			}
		})
	}
}

func TestArchiveZipHoldsTheFilesAndTheirManifest(t *testing.T) {
	e := newSignedEnv(t)
	cred := e.openCase("c1")
	files := map[string][]byte{
		"core dump.bin":   bytes.Repeat([]byte{0xab}, 300000),
		`C:\logs\app.log`: []byte("log lines\n"),
		"Prüfbericht.pdf": []byte("%PDF-1.7"),
		"empty":           {},
	}
	for name, data := range files {
		if name == `C:\logs\app.log` { // refused today, stored by an older release
			e.legacyUpload(cred.Token, name, data)
			continue
		}
		e.upload(cred.Token, name, data)
	}
	e.create(cred.Token, 100, meta("filename", "still-uploading.bin"))
	// Inside the archive, the manifest lists each file under its entry's
	// name: the old name with a backslash and a colon is made safe.
	files["C__logs_app.log"] = files[`C:\logs\app.log`]
	delete(files, `C:\logs\app.log`)
	sums := []byte(strings.ReplaceAll(string(e.expect(e.do("GET", "/api/v1/cases/c1/SHA256SUMS", cred.Token, nil), 200)),
		`\`+shaHex(files["C__logs_app.log"])+`  C:\\logs\\app.log`, shaHex(files["C__logs_app.log"])+"  C__logs_app.log"))

	resp := e.do("GET", "/api/v1/cases/c1/archive.zip", cred.Token, nil)
	body := e.expect(resp, 200)
	if resp.Header.Get("Content-Type") != "application/zip" || resp.Header.Get("Content-Disposition") != `attachment; filename="c1.zip"` {
		t.Fatalf("Content-Type %q, Content-Disposition %q", resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("the archive does not open: %v", err)
	}
	want := map[string][]byte{"SHA256SUMS": sums}
	for name, data := range files {
		want[name] = data
	}
	got := map[string][]byte{}
	for _, f := range zr.File {
		if f.Method != zip.Store {
			t.Errorf("%s: method %d, want stored", f.Name, f.Method)
		}
		if f.CreatorVersion>>8 != 3 {
			t.Errorf("%s: made on system %d, want Unix (3): unzip reads a backslash in a DOS name as a folder", f.Name, f.CreatorVersion>>8)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc) // checks the CRC-32 at the end
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		got[f.Name] = data
	}
	if len(got) != len(want) || len(zr.File) != len(want) {
		t.Fatalf("the archive holds %d entries %v, want %d", len(zr.File), keys(got), len(want))
	}
	for name, data := range want {
		if g, ok := got[name]; !ok || !bytes.Equal(g, data) {
			t.Errorf("entry %q: present %v, %d bytes; want %d bytes", name, ok, len(g), len(data))
		}
	}

	t.Run("the archive and manifest downloads are audited", func(t *testing.T) {
		trail := string(e.expect(e.do("GET", "/api/v1/cases/c1/audit", adminToken, nil), 200))
		for _, event := range []string{"archive.downloaded", "manifest.downloaded"} {
			if !strings.Contains(trail, event) {
				t.Errorf("no %s in the audit trail:\n%s", event, trail)
			}
		}
	})
	t.Run("HEAD sends no archive", func(t *testing.T) {
		resp := e.do("HEAD", "/api/v1/cases/c1/archive.zip", cred.Token, nil)
		if body := e.expect(resp, 200); len(body) != 0 || resp.Header.Get("Content-Type") != "application/zip" {
			t.Fatalf("HEAD: %d bytes, Content-Type %q", len(body), resp.Header.Get("Content-Type"))
		}
	})
	t.Run("a file called SHA256SUMS leaves the manifest its own name", func(t *testing.T) {
		e.expect(e.do("POST", "/files/", cred.Token, nil, "Tus-Resumable", "1.0.0", "Upload-Length", "1",
			"Upload-Metadata", meta("filename", "sha256sums")), http.StatusBadRequest)
		e.legacyUpload(cred.Token, "SHA256SUMS", []byte("the customer's own sums"))
		body := e.expect(e.do("GET", "/api/v1/cases/c1/archive.zip", cred.Token, nil), 200)
		zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]int{}
		for _, f := range zr.File {
			names[f.Name]++
		}
		if names["SHA256SUMS"] != 1 || names["_SHA256SUMS"] != 1 {
			t.Fatalf("entries %v", names)
		}
	})
	t.Run("a missing object breaks the download instead of ending it like a whole archive", func(t *testing.T) {
		f, err := e.catalog.File(context.Background(), "c1", "core dump.bin")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.store.Delete(context.Background(), cases.Prefix("c1")+"objects/"+f.Object); err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest("GET", e.srv.URL+"/api/v1/cases/c1/archive.zip", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+cred.Token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if readErr == nil && resp.StatusCode == 200 {
				if _, zerr := zip.NewReader(bytes.NewReader(body), int64(len(body))); zerr == nil {
					t.Fatal("the archive of a case with a missing object reads as a whole zip")
				}
			}
		}
		if !strings.Contains(e.logs.String(), "archive download failed") {
			t.Error("the failure is not logged")
		}
	})
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// A modification time the uploader's client set (SFTP) is the file's in
// the list and in the archive; without one, the time it was complete.
func TestTheFileListAndArchiveCarryTheClientsModificationTime(t *testing.T) {
	e := newSignedEnv(t)
	cred := e.openCase("c1")
	e.upload(cred.Token, "set.log", []byte("one"))
	e.upload(cred.Token, "unset.log", []byte("two"))
	set, err := e.catalog.File(context.Background(), "c1", "set.log")
	if err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC)
	if err := e.catalog.SetModTime(context.Background(), "c1", "set.log", set.Object, mtime); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Files []struct {
			Name       string
			ModifiedAt time.Time `json:"modified_at"`
		}
	}
	if err := json.Unmarshal(e.expect(e.do("GET", "/api/v1/cases/c1/files", cred.Token, nil), 200), &list); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"set.log": mtime, "unset.log": e.clock.Now()}
	for _, f := range list.Files {
		if !f.ModifiedAt.Equal(want[f.Name]) {
			t.Errorf("list: %s modified_at %v, want %v", f.Name, f.ModifiedAt, want[f.Name])
		}
	}
	body := e.expect(e.do("GET", "/api/v1/cases/c1/archive.zip", cred.Token, nil), 200)
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if w, ok := want[f.Name]; ok && !f.Modified.Equal(w) {
			t.Errorf("archive: %s modified %v, want %v", f.Name, f.Modified, w)
		}
	}
}
