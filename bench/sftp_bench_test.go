package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/casedrop/casedrop/internal/testserver"
)

// sftpMAC is the MAC the bench pins for the ciphers that need one: the
// first casedrop offers, and one OpenSSH has too (its own first choice,
// umac-64-etm, is not in x/crypto).
const sftpMAC = "hmac-sha2-256-etm@openssh.com"

// sftpCipher is a cipher OpenSSH's client is told to use, with the MAC
// for one that has none of its own.
type sftpCipher struct{ name, short, mac string }

// sftpCiphers are the ciphers casedrop's SFTP door offers (sftpd's
// ciphers), in its order of preference.
var sftpCiphers = []sftpCipher{
	{"aes128-gcm@openssh.com", "aes128gcm", ""},
	{"aes256-gcm@openssh.com", "aes256gcm", ""},
	{"chacha20-poly1305@openssh.com", "chacha20", ""},
	{"aes128-ctr", "aes128ctr", sftpMAC},
	{"aes192-ctr", "aes192ctr", sftpMAC},
	{"aes256-ctr", "aes256ctr", sftpMAC},
}

// BenchmarkSFTPUpload1GiB uploads a 1 GiB file with OpenSSH's sftp, once
// per cipher casedrop offers, into casedrop on MinIO and into OpenSSH's
// sftp-server behind a loopback sshd writing to local disk (the reference:
// what SFTP does on this machine with no object store behind it), and into
// SFTPGo on the same MinIO when SFTPGO_BIN names a build of it, interleaved
// in the same rounds. All log in with the same key. It prints each one's
// median MB/s, its ratio to sshd with the same cipher, the server's CPU
// seconds per GiB (sshd's with its children), MinIO's, and the server's
// peak RSS. BENCH_ROUNDS sets the number of rounds (default 3),
// BENCH_SFTP_CIPHERS (short names separated by commas, e.g.
// "aes128gcm,chacha20") the ciphers, all by default; BENCH_BASELINE_BIN
// adds that build of casedrop (an earlier commit) on a bucket of its own.
func BenchmarkSFTPUpload1GiB(b *testing.B) {
	const size = 1 << 30
	rg := newRig(b)
	ciphers := benchCiphers(b)
	key := newSSHKey(b)
	file := randomFile(b, size)
	want := fileSHA256(b, file)
	builds := []*casedropBuild{{label: "casedrop", srv: rg.cd, bucket: rg.cdBucket, proc: rg.cdProc}}
	if bin := os.Getenv("BENCH_BASELINE_BIN"); bin != "" {
		bucket := rg.minio.NewBucket(b)
		srv := testserver.Start(b, testserver.Options{S3: rg.minio, Bucket: bucket, Binary: bin})
		builds = append(builds, &casedropBuild{label: "baseline", srv: srv, bucket: bucket, proc: &proc{pid: srv.PID}})
	}
	for _, cd := range builds {
		cd.srv.OpenCase(b, "bench")
		cred := cd.srv.CredentialWithKey(b, "bench", key.public)
		cd.target = sftpTarget{addr: cd.srv.SFTPAddr(), user: cred.Username}
	}
	ssh := startSSHD(b, key)
	sftpGo := startSFTPGo(b, rg.minio, key)

	type row struct {
		sshd     *contender
		casedrop []*contender // by build
		sftpgo   *contender
	}
	rows := make([]row, len(ciphers))
	for i, c := range ciphers {
		rows[i].sshd = &contender{name: "sshd to local disk, " + c.short, metric: "sshd-" + c.short + "-MB/s",
			server: ssh.proc, tree: true}
		rows[i].sshd.ref = rows[i].sshd
		for _, cd := range builds {
			rows[i].casedrop = append(rows[i].casedrop, &contender{name: cd.label + " to MinIO, " + c.short,
				metric: cd.label + "-" + c.short + "-MB/s", server: cd.proc, ref: rows[i].sshd})
		}
		if sftpGo != nil {
			rows[i].sftpgo = &contender{name: "SFTPGo to MinIO, " + c.short, metric: "sftpgo-" + c.short + "-MB/s",
				server: sftpGo.proc, ref: rows[i].sshd}
		}
	}
	b.ResetTimer()
	for round := range rg.rounds {
		for i, c := range ciphers {
			name := fmt.Sprintf("big-%d-%s", round, c.short)
			rows[i].sshd.measure(b, nil, size, func() {
				run(b, nil, "sftp", sftpPutArgs(b, ssh.sftpTarget, key, c.name, c.mac, file, name)...)
			})
			stored := filepath.Join(ssh.dir, name)
			if st, err := os.Stat(stored); err != nil || st.Size() != size {
				b.Fatalf("sshd stored %v, %v; want %d bytes", st, err, size)
			}
			os.Remove(stored)
			for j, cd := range builds {
				rows[i].casedrop[j].measure(b, rg.minioProc, size, func() {
					run(b, nil, "sftp", sftpPutArgs(b, cd.target, key, c.name, c.mac, file, name)...)
				})
				rg.dropObjects(b, cd.bucket, "cases/bench/objects/")
			}
			if sftpGo != nil {
				rows[i].sftpgo.measure(b, rg.minioProc, size, func() {
					run(b, nil, "sftp", sftpPutArgs(b, sftpGo.sftpTarget, key, c.name, c.mac, file, name)...)
				})
				rg.dropObjects(b, sftpGo.bucket, "")
			}
		}
	}
	b.StopTimer()
	for _, cd := range builds {
		for _, f := range cd.srv.Files(b, "bench") {
			if f.State != "complete" || f.Size != size || f.SHA256 != want {
				b.Fatalf("%s: %s is %s, %d bytes, sha256 %s; want complete, %d bytes, %s", cd.label, f.Name, f.State, f.Size, f.SHA256, int64(size), want)
			}
		}
	}
	var all []*contender
	for _, r := range rows {
		all = append(all, r.sshd)
		all = append(all, r.casedrop...)
		if r.sftpgo != nil {
			all = append(all, r.sftpgo)
		}
	}
	table(b, fmt.Sprintf("1 GiB SFTP upload (OpenSSH sftp, key login; ctr ciphers with %s), median of %d interleaved rounds; ratio to sshd with the same cipher",
		sftpMAC, rg.rounds), nil, all...)
	if sftpGo == nil {
		fmt.Println("  SFTPGo: skipped, set SFTPGO_BIN")
	}
	fmt.Println()
}

// casedropBuild is one build of casedrop the SFTP bench uploads to.
type casedropBuild struct {
	label  string
	srv    *testserver.Server
	bucket string
	proc   *proc
	target sftpTarget
}

// benchCiphers are the ciphers BENCH_SFTP_CIPHERS names, all by default.
func benchCiphers(b *testing.B) []sftpCipher {
	b.Helper()
	env := os.Getenv("BENCH_SFTP_CIPHERS")
	if env == "" {
		return sftpCiphers
	}
	var picked []sftpCipher
	for short := range strings.SplitSeq(env, ",") {
		i := slices.IndexFunc(sftpCiphers, func(c sftpCipher) bool { return c.short == strings.TrimSpace(short) })
		if i < 0 {
			b.Fatalf("BENCH_SFTP_CIPHERS=%q: %q is none of casedrop's ciphers", env, short)
		}
		picked = append(picked, sftpCiphers[i])
	}
	return picked
}
