package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// sftpMAC is the MAC the bench pins for the ciphers that need one: the
// first casedrop offers, and one OpenSSH has too (its own first choice,
// umac-64-etm, is not in x/crypto).
const sftpMAC = "hmac-sha2-256-etm@openssh.com"

// sftpCiphers are the ciphers casedrop's SFTP door offers (sftpd's
// ciphers), in its order of preference.
var sftpCiphers = []struct{ name, short, mac string }{
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
// peak RSS. BENCH_ROUNDS sets the number of rounds (default 3).
func BenchmarkSFTPUpload1GiB(b *testing.B) {
	const size = 1 << 30
	rg := newRig(b)
	cd := rg.cd
	cd.OpenCase(b, "bench")
	key := newSSHKey(b)
	cred := cd.CredentialWithKey(b, "bench", key.public)
	file := randomFile(b, size)
	want := fileSHA256(b, file)
	casedrop := sftpTarget{addr: cd.SFTPAddr(), user: cred.Username}
	ssh := startSSHD(b, key)
	sftpGo := startSFTPGo(b, rg.minio, key)

	type trio struct{ sshd, casedrop, sftpgo *contender }
	rows := make([]trio, len(sftpCiphers))
	for i, c := range sftpCiphers {
		rows[i].sshd = &contender{name: "sshd to local disk, " + c.short, metric: "sshd-" + c.short + "-MB/s",
			server: ssh.proc, tree: true}
		rows[i].sshd.ref = rows[i].sshd
		rows[i].casedrop = &contender{name: "casedrop to MinIO, " + c.short, metric: "casedrop-" + c.short + "-MB/s",
			server: rg.cdProc, ref: rows[i].sshd}
		if sftpGo != nil {
			rows[i].sftpgo = &contender{name: "SFTPGo to MinIO, " + c.short, metric: "sftpgo-" + c.short + "-MB/s",
				server: sftpGo.proc, ref: rows[i].sshd}
		}
	}
	b.ResetTimer()
	for round := range rg.rounds {
		for i, c := range sftpCiphers {
			name := fmt.Sprintf("big-%d-%s", round, c.short)
			rows[i].sshd.measure(b, nil, size, func() {
				run(b, nil, "sftp", sftpPutArgs(b, ssh.sftpTarget, key, c.name, c.mac, file, name)...)
			})
			stored := filepath.Join(ssh.dir, name)
			if st, err := os.Stat(stored); err != nil || st.Size() != size {
				b.Fatalf("sshd stored %v, %v; want %d bytes", st, err, size)
			}
			os.Remove(stored)
			rows[i].casedrop.measure(b, rg.minioProc, size, func() {
				run(b, nil, "sftp", sftpPutArgs(b, casedrop, key, c.name, c.mac, file, name)...)
			})
			rg.dropObjects(b, rg.cdBucket, "cases/bench/objects/")
			if sftpGo != nil {
				rows[i].sftpgo.measure(b, rg.minioProc, size, func() {
					run(b, nil, "sftp", sftpPutArgs(b, sftpGo.sftpTarget, key, c.name, c.mac, file, name)...)
				})
				rg.dropObjects(b, sftpGo.bucket, "")
			}
		}
	}
	b.StopTimer()
	for _, f := range cd.Files(b, "bench") {
		if f.State != "complete" || f.Size != size || f.SHA256 != want {
			b.Fatalf("%s is %s, %d bytes, sha256 %s; want complete, %d bytes, %s", f.Name, f.State, f.Size, f.SHA256, int64(size), want)
		}
	}
	var all []*contender
	for _, r := range rows {
		all = append(all, r.sshd, r.casedrop)
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
