package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/casedrop/casedrop/internal/testserver"
)

// BenchmarkConcurrentUploads sends BENCH_CONCURRENT_N uploads at once
// (default 50), half over tus (HTTPS HTTP/2, a connection each, as that
// many browsers would) and half over SFTP (OpenSSH sftp with its default
// cipher, a connection each), into a fresh casedrop on MinIO, once per size
// of BENCH_CONCURRENT_MIB (default "32,320": the same load with files ten
// times larger), and in the same run `mc cp --recursive`s the same files
// into the same MinIO. It prints the total MB/s of each, its ratio to mc
// cp, casedrop's CPU seconds per GiB, MinIO's, and casedrop's peak RSS.
// With BENCH_BASELINE_BIN naming another build of casedrop (an earlier
// commit), that build runs the same uploads too (BENCH_CASEDROP_BIN
// replaces this module's build, to compare builds).
func BenchmarkConcurrentUploads(b *testing.B) {
	n := envInt(b, "BENCH_CONCURRENT_N", 50)
	sizes := []int{32, 320}
	if s := os.Getenv("BENCH_CONCURRENT_MIB"); s != "" {
		sizes = nil
		for f := range strings.SplitSeq(s, ",") {
			mib, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || mib <= 0 {
				b.Fatalf("BENCH_CONCURRENT_MIB=%q: want sizes in MiB separated by commas", s)
			}
			sizes = append(sizes, mib)
		}
	}
	rg := newRig(b)
	// The rig's own server is not used here: each run starts a fresh one.
	if err := rg.cd.Stop(); err != nil {
		b.Fatal(err)
	}
	builds := []struct{ name, bin string }{{"casedrop", os.Getenv("BENCH_CASEDROP_BIN")}}
	if bin := os.Getenv("BENCH_BASELINE_BIN"); bin != "" {
		builds = append(builds, struct{ name, bin string }{"baseline", bin})
	}

	var rows []*contender
	b.ResetTimer()
	for _, mib := range sizes {
		size := int64(mib) << 20
		file := randomFile(b, int(size))
		dir := b.TempDir()
		for i := range n {
			if err := os.Link(file, filepath.Join(dir, fmt.Sprintf("f%03d.bin", i))); err != nil {
				b.Fatal(err)
			}
		}
		mc := &contender{name: fmt.Sprintf("mc cp --recursive, %d x %d MiB", n, mib)}
		mc.ref = mc
		mc.measure(b, rg.minioProc, int64(n)*size, func() {
			rg.mc(b, "cp", "--quiet", "--recursive", dir+"/", "bench/"+rg.refBucket+"/")
		})
		rg.dropObjects(b, rg.refBucket, "")
		rows = append(rows, mc)
		for _, build := range builds {
			c := &contender{name: fmt.Sprintf("%s, %d tus + %d SFTP x %d MiB", build.name, n-n/2, n/2, mib),
				metric: fmt.Sprintf("%s-%dMiB-MB/s", build.name, mib), ref: mc}
			concurrentUploads(b, rg, c, build.bin, file, n, size)
			rows = append(rows, c)
		}
	}
	b.StopTimer()
	table(b, fmt.Sprintf("%d uploads at once into MinIO on 127.0.0.1, half tus (HTTPS HTTP/2), half SFTP (OpenSSH sftp), a connection each; total MB/s of one run",
		n), nil, rows...)
	fmt.Println()
}

// concurrentUploads starts a fresh casedrop (of bin, or this module's),
// sends n uploads of file at once, half over each door, and measures them
// into c.
func concurrentUploads(b *testing.B, rg *rig, c *contender, bin, file string, n int, size int64) {
	bucket := rg.minio.NewBucket(b)
	cd := testserver.Start(b, testserver.Options{S3: rg.minio, Bucket: bucket, Binary: bin})
	defer cd.Stop()
	c.server = &proc{pid: cd.PID}
	cd.OpenCase(b, "bench")
	// A credential per eight uploads, casedrop's limit for one; over SFTP
	// each has a key of its own.
	tus, sftp := n-n/2, n/2
	type sftpLogin struct {
		target sftpTarget
		key    sshKey
	}
	var tokens []string
	var logins []sftpLogin
	for range (tus + 7) / 8 {
		tokens = append(tokens, cd.Credential(b, "bench", "customer").Token)
	}
	for range (sftp + 7) / 8 {
		key := newSSHKey(b)
		cred := cd.CredentialWithKey(b, "bench", key.public)
		logins = append(logins, sftpLogin{sftpTarget{addr: cd.SFTPAddr(), user: cred.Username}, key})
	}
	urls := make([]string, tus)
	for i := range tus {
		urls[i] = cd.Create(b, tokens[i/8], fmt.Sprintf("tus-%03d.bin", i), size, "")
	}
	sftpArgs := make([][]string, sftp)
	for i := range sftp {
		l := logins[i/8]
		sftpArgs[i] = sftpPutArgs(b, l.target, l.key, "", "", file, fmt.Sprintf("sftp-%03d.bin", i))
	}
	c.measure(b, rg.minioProc, int64(n)*size, func() {
		var wg sync.WaitGroup
		for i := range tus {
			wg.Go(func() {
				f, err := os.Open(file)
				if err != nil {
					b.Error(err)
					return
				}
				defer f.Close()
				client := cd.NewClient()
				defer client.CloseIdleConnections()
				if _, status, err := cd.PatchWith(context.Background(), client, tokens[i/8], urls[i], 0, f, size); err != nil {
					b.Errorf("tus upload %d: %d %v", i, status, err)
				}
			})
		}
		for i := range sftp {
			wg.Go(func() {
				if out, err := exec.Command("sftp", sftpArgs[i]...).CombinedOutput(); err != nil {
					b.Errorf("sftp upload %d: %v\n%s", i, err, out)
				}
			})
		}
		wg.Wait()
	})
	if b.Failed() {
		b.FailNow()
	}
	for _, f := range cd.Files(b, "bench") {
		if f.State != "complete" || f.Size != size {
			b.Fatalf("%s is %s, %d bytes; want complete, %d bytes", f.Name, f.State, f.Size, size)
		}
	}
	rg.dropObjects(b, bucket, "")
}
