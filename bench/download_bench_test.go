package bench

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkDownload1GiB downloads out of casedrop on MinIO (curl, HTTPS)
// and, interleaved in the same rounds, the same bytes out of the same
// MinIO with mc, each into a local file: a 1 GiB file whole (HTTP/1.1 and
// HTTP/2, against `mc cp`), its second half by a Range request (against
// `mc cat --offset`), and the archive.zip of a case of four files, 2.1 GiB
// (HTTP/2, against `mc cp --recursive` of the same four objects). It
// prints each one's median MB/s, its ratio to mc, casedrop's CPU seconds
// per GiB, MinIO's, and casedrop's peak RSS. BENCH_ROUNDS sets the number
// of rounds (default 3).
func BenchmarkDownload1GiB(b *testing.B) {
	const size, small = 1 << 30, 64 << 20
	rg := newRig(b)
	cd := rg.cd
	cd.OpenCase(b, "bench")
	token := cd.Credential(b, "bench", "staff").Token
	cacert := filepath.Join(cd.DataDir, "tls.crt")
	files := []struct {
		name, path string
		size       int64
	}{
		{"core.1", randomFile(b, size), size},
		{"core.2", randomFile(b, size), size},
		{"log.1", randomFile(b, small), small},
		{"log.2", randomFile(b, small), small},
	}
	var caseBytes int64
	for _, f := range files {
		u := cd.Create(b, token, f.name, f.size, "")
		run(b, nil, "curl", curlPatch("--http2", cacert, token, f.path, u)...)
		rg.mc(b, "cp", "--quiet", f.path, "bench/"+rg.refBucket+"/case/"+f.name)
		caseBytes += f.size
	}
	// A fresh process: the peak RSS is the downloads', not the uploads'
	// (whose part buffers stay for reuse).
	if err := cd.Stop(); err != nil {
		b.Fatal(err)
	}
	cd.Restart(b)
	rg.cdProc.pid = cd.PID

	out := filepath.Join(b.TempDir(), "out")
	curl := func(args ...string) {
		run(b, nil, "curl", append([]string{"-sS", "--fail", "--cacert", cacert,
			"-H", "Authorization: Bearer " + token, "-o", out}, args...)...)
	}
	fileURL := cd.URL + "/api/v1/cases/bench/files/core.1"
	zipURL := cd.URL + "/api/v1/cases/" + url.PathEscape("bench") + "/archive.zip"
	half := strconv.Itoa(size / 2)
	srv := rg.cdProc

	mcWhole := &contender{name: "mc cp, 1 GiB file", metric: "mc-MB/s"}
	mcWhole.ref = mcWhole
	mcRange := &contender{name: "mc cat --offset, its second half", metric: "mc-range-MB/s"}
	mcRange.ref = mcRange
	mcCase := &contender{name: "mc cp --recursive, the case's 4 files", metric: "mc-case-MB/s"}
	mcCase.ref = mcCase
	ref := "bench/" + rg.refBucket + "/case/"
	get := func(args ...string) func() { return func() { curl(args...) } }
	jobs := []struct {
		c  *contender
		n  int64
		do func()
	}{
		{mcWhole, size, func() { rg.mc(b, "cp", "--quiet", ref+"core.1", out) }},
		{&contender{name: "casedrop GET, h1", metric: "get-h1-MB/s", server: srv, ref: mcWhole}, size, get("--http1.1", fileURL)},
		{&contender{name: "casedrop GET, h2", metric: "get-h2-MB/s", server: srv, ref: mcWhole}, size, get("--http2", fileURL)},
		{mcRange, size / 2, func() { mcCatTo(b, rg, out, "--offset", half, ref+"core.1") }},
		{&contender{name: "casedrop GET Range, h1", metric: "range-h1-MB/s", server: srv, ref: mcRange}, size / 2, get("--http1.1", "-r", half+"-", fileURL)},
		{&contender{name: "casedrop GET Range, h2", metric: "range-h2-MB/s", server: srv, ref: mcRange}, size / 2, get("--http2", "-r", half+"-", fileURL)},
		{mcCase, caseBytes, func() { rg.mc(b, "cp", "--quiet", "--recursive", ref, out+"/") }},
		{&contender{name: "casedrop archive.zip, h2", metric: "zip-h2-MB/s", server: srv, ref: mcCase}, caseBytes, get("--http2", zipURL)},
	}
	b.ResetTimer()
	for range rg.rounds {
		for _, j := range jobs {
			j.c.measure(b, rg.minioProc, j.n, j.do)
			if err := os.RemoveAll(out); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	var rows []*contender
	for _, j := range jobs {
		rows = append(rows, j.c)
	}
	table(b, fmt.Sprintf("downloads out of MinIO on 127.0.0.1 into a local file (curl, HTTPS), median of %d interleaved rounds; "+
		"ratio to mc moving the same bytes (archive.zip: MB/s of the files' bytes)", rg.rounds), nil, rows...)
	fmt.Println()
}

// mcCatTo runs `mc cat` with args into the file out.
func mcCatTo(b *testing.B, rg *rig, out string, args ...string) {
	b.Helper()
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(mcBin(b), append([]string{"cat"}, args...)...)
	cmd.Env = rg.mcEnv
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = f, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("mc cat: %v %s", err, stderr.Bytes())
	}
}
