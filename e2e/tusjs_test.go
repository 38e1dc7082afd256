package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/internal/testserver"
)

// jsReport is what e2e/js/upload_many.mjs prints per file.
type jsReport struct {
	Name        string  `json:"name"`
	URL         string  `json:"url"`
	OK          bool    `json:"ok"`
	Error       string  `json:"error"`
	Retries     int     `json:"retries"`
	HeadOffsets []int64 `json:"headOffsets"`
	Patches     int     `json:"patches"`
}

func TestTusJSClientUploadsSeveralFilesAtOnceAndResumesTheOneInterruptedMidway(t *testing.T) {
	root, err := testserver.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "tus-js-client", "package.json")); err != nil {
		t.Fatalf("tus-js-client is not installed: run `npm ci` in %s (%v)", root, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is needed to run tus-js-client: %v", err)
	}
	onLocalDiskAndMinIO(t, func(t *testing.T, opts testserver.Options) {
		const (
			partSize = 5 * mib
			cutAfter = 15 * mib
			bigName  = "core.dump"
			// slack covers what the proxy carries besides file bytes: TLS
			// handshakes and record overhead, HTTP headers of ~15 requests.
			slack = 1 * mib
		)
		opts.PartSizeMiB = partSize / mib
		srv := testserver.Start(t, opts)
		srv.OpenCase(t, "tusjs")
		cred := srv.Credential(t, "tusjs", "customer")

		files := []struct {
			name    string
			size    int64
			declare bool // put the sha256 into Upload-Metadata
			sha256  string
			path    string
		}{
			{name: "empty.txt", size: 0},
			{name: "settings.conf", size: 1 << 10, declare: true},
			{name: "capture.pcap", size: 7 * mib},
			{name: bigName, size: 40 * mib, declare: true},
		}
		type jobFile struct {
			Path   string `json:"path"`
			Name   string `json:"name"`
			SHA256 string `json:"sha256,omitempty"`
		}
		var total int64
		var jobFiles []jobFile
		dir := t.TempDir()
		for i := range files {
			f := &files[i]
			f.path = filepath.Join(dir, f.name)
			f.sha256 = newPattern(uint64(100+i)).writeFile(t, f.path, f.size)
			total += f.size
			jf := jobFile{Path: f.path, Name: f.name}
			if f.declare {
				jf.SHA256 = f.sha256
			}
			jobFiles = append(jobFiles, jf)
		}
		// Only the big upload's connection reaches cutAfter before the cut,
		// so the cut lands mid-way through it.
		proxy := startCuttingProxy(t, strings.TrimPrefix(srv.URL, "https://"), cutAfter)
		job, err := json.Marshal(map[string]any{
			"endpoint": "https://" + proxy.addr() + "/files/",
			"token":    cred.Token,
			"files":    jobFiles,
		})
		if err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", filepath.Join(root, "e2e", "js", "upload_many.mjs"))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+filepath.Join(srv.DataDir, "tls.crt"))
		cmd.Stdin = bytes.NewReader(job)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		runErr := cmd.Run()
		elapsed := time.Since(start)
		var out struct {
			Results []jsReport `json:"results"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("node: %v; stdout %q; stderr:\n%s", runErr, stdout.String(), stderr.String())
		}
		if runErr != nil {
			t.Errorf("node: %v; report %+v; stderr:\n%s", runErr, out.Results, stderr.String())
		}
		reports := map[string]jsReport{}
		for _, r := range out.Results {
			reports[r.Name] = r
			if !r.OK {
				t.Errorf("tus-js-client failed to upload %s: %s", r.Name, r.Error)
			}
		}

		if !proxy.cut.Load() {
			t.Fatalf("the proxy never cut a connection (carried %d bytes)", proxy.carried.Load())
		}
		big := reports[bigName]
		if big.Retries < 1 || len(big.HeadOffsets) == 0 {
			t.Errorf("%s: %d retries, HEAD offsets %v; want the upload interrupted and resumed", bigName, big.Retries, big.HeadOffsets)
		} else if o := big.HeadOffsets[0]; o <= 0 || o > proxy.cutConn.Load() {
			t.Errorf("%s resumed from offset %d; want 0 < offset <= %d, the bytes its connection carried", bigName, o, proxy.cutConn.Load())
		}

		// What a resume re-sends: the bytes of the cut connection the server
		// had not stored. It stores what it had read (parts and the tail)
		// when the connection broke, but it may lag behind the wire by what
		// the socket buffers held (the retry's HEAD interrupts the broken
		// PATCH before it drains them), and with fsync per part on a slow
		// disk that lag reaches a part or more. So the bound lets a resume
		// re-send all but one part of what the cut connection carried; a
		// restart from 0 re-sends all of it and more (headers, TLS).
		carried, cutConn := proxy.carried.Load(), proxy.cutConn.Load()
		bound := total + cutConn - partSize + slack
		if cutConn <= partSize+slack {
			t.Fatalf("the cut came after %d bytes, too early for the bound to tell a resume from a restart", cutConn)
		}
		if carried >= bound {
			t.Errorf("the proxy carried %d bytes for %d bytes of files, cut after %d; want fewer than %d: the interrupted upload was re-sent from (near) 0",
				carried, total, cutConn, bound)
		}
		// And the client re-sent from the offset the server gave it: the
		// proxy carried the files, plus what the cut connection had carried
		// beyond that offset, plus protocol overhead.
		if len(big.HeadOffsets) > 0 {
			if extra := carried - total - (cutConn - big.HeadOffsets[0]); extra < 0 || extra >= slack {
				t.Errorf("the proxy carried %d bytes: %d more than the files plus the %d bytes the resume from %d had to re-send; want 0 to %d",
					carried, extra, cutConn-big.HeadOffsets[0], big.HeadOffsets[0], slack)
			}
		}
		t.Logf("4 files, %d bytes, in %v; the proxy carried %d bytes (+%d, bound +%d); cut after %d bytes; %s resumed from offset(s) %v",
			total, elapsed.Round(time.Millisecond), carried, carried-total, bound-total, cutConn, bigName, big.HeadOffsets)

		list := srv.Files(t, "tusjs")
		for _, f := range files {
			checkComplete(t, fileNamed(t, list, f.name), f.size, f.sha256)
			body, digest := srv.Download(t, "tusjs", f.name)
			want, err := os.ReadFile(f.path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("downloaded %s differs from the source (%d bytes, want %d)", f.name, len(body), len(want))
			}
			if want := reprDigest(t, f.sha256); digest != want {
				t.Errorf("%s: Repr-Digest %q, want %q", f.name, digest, want)
			}
		}
	})
}
