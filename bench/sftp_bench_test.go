package bench

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/casedrop/casedrop/internal/testserver"
)

// sftpCiphers are the ciphers the SFTP benchmark compares: OpenSSH's
// default, which x/crypto runs in generic Go code on amd64, and AES-GCM,
// which runs on AES-NI.
var sftpCiphers = []struct{ name, metric string }{
	{"chacha20-poly1305@openssh.com", "chacha20-MB/s"},
	{"aes128-gcm@openssh.com", "aes128gcm-MB/s"},
}

// BenchmarkSFTPUpload1GiB uploads a 1 GiB file with OpenSSH's sftp
// (password through sshpass) into casedrop on MinIO, once per cipher of
// sftpCiphers, and, interleaved in the same run, `mc cp` of the same file
// into the same MinIO; it prints the median MB/s of each, their ratio to
// mc cp and casedrop's peak RSS. BENCH_ROUNDS sets the number of rounds
// (default 3).
func BenchmarkSFTPUpload1GiB(b *testing.B) {
	const size = 1 << 30
	for _, tool := range []string{"sftp", "sshpass"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s is needed: run `make test-deps` (%v)", tool, err)
		}
	}
	rg := newRig(b)
	cd, refBucket, mcEnv, rounds := rg.cd, rg.refBucket, rg.mcEnv, rg.rounds
	cd.OpenCase(b, "bench")
	cred := cd.Credential(b, "bench", "customer")
	file := randomFile(b, size)
	want := fileSHA256(b, file)

	mc := []float64{}
	sftp := make([][]float64, len(sftpCiphers))
	b.ResetTimer()
	for round := range rounds {
		mc = append(mc, timed(b, mcEnv, mcBin(b), "cp", "--quiet", file, fmt.Sprintf("bench/%s/ref-%d", refBucket, round)))
		for i, cipher := range sftpCiphers {
			sftp[i] = append(sftp[i], sftpPut(b, cd, cred, cipher.name, file, fmt.Sprintf("big-%d-%s", round, cipher.name)))
		}
	}
	b.StopTimer()
	rss, err := cd.PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range cd.Files(b, "bench") {
		if f.State != "complete" || f.Size != size || f.SHA256 != want {
			b.Fatalf("%s is %s, %d bytes, sha256 %s; want complete, %d bytes, %s", f.Name, f.State, f.Size, f.SHA256, int64(size), want)
		}
	}

	mbps := func(secs float64) float64 { return size / secs / 1e6 }
	mcRate := mbps(median(mc))
	fmt.Printf("\n1 GiB upload into MinIO on 127.0.0.1, median of %d interleaved rounds\n", rounds)
	fmt.Printf("  %-62s %8.1f MB/s\n", "mc cp (reference)", mcRate)
	for i, cipher := range sftpCiphers {
		rate := mbps(median(sftp[i]))
		fmt.Printf("  %-62s %8.1f MB/s  %.2fx mc cp\n", "casedrop SFTP, OpenSSH sftp -c "+cipher.name, rate, rate/mcRate)
		b.ReportMetric(rate, cipher.metric)
	}
	fmt.Printf("  casedrop peak RSS over all uploads: %.1f MiB\n", float64(rss)/(1<<20))
	fmt.Printf("  all runs (s): mc %v  sftp %v\n\n", mc, sftp)
	b.ReportMetric(mcRate, "mc-MB/s")
	b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
}

// sftpPut uploads file as name with OpenSSH's sftp and cipher, and
// returns the wall time in seconds.
func sftpPut(b *testing.B, cd *testserver.Server, cred testserver.Credential, cipher, file, name string) float64 {
	b.Helper()
	host, port, err := net.SplitHostPort(cd.SFTPAddr())
	if err != nil {
		b.Fatal(err)
	}
	batch := filepath.Join(b.TempDir(), "batch")
	if err := os.WriteFile(batch, []byte(fmt.Sprintf("put %q %q\n", file, name)), 0o600); err != nil {
		b.Fatal(err)
	}
	// sftp -b turns BatchMode on, and with it password logins off.
	return timed(b, append(os.Environ(), "SSHPASS="+cred.Token), "sshpass", "-e", "sftp", "-F", "/dev/null",
		"-o", "BatchMode=no", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "PreferredAuthentications=password",
		"-c", cipher, "-P", port, "-b", batch, cred.Username+"@"+host)
}
