package bench

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkUpload1GiB uploads a 1 GiB file over tus (curl, HTTPS,
// HTTP/1.1 and HTTP/2) into casedrop on MinIO and into tusd with its S3
// store on the same MinIO, once with its content hashes on (its default)
// and once off, and, interleaved in the same rounds, `mc cp`s the same file
// into the same MinIO. It prints each one's median MB/s, its ratio to mc
// cp, the server's CPU seconds per GiB, MinIO's, and the server's peak RSS.
// BENCH_ROUNDS sets the number of rounds (default 3).
func BenchmarkUpload1GiB(b *testing.B) {
	const size = 1 << 30
	rg := newRig(b)
	cd := rg.cd
	cd.OpenCase(b, "bench")
	cred := cd.Credential(b, "bench", "customer")
	file := randomFile(b, size)
	want := fileSHA256(b, file)
	cert, key := filepath.Join(cd.DataDir, "tls.crt"), filepath.Join(cd.DataDir, "tls.key")
	tusds := []*tusd{startTusd(b, rg.minio, cert, key, true), startTusd(b, rg.minio, cert, key, false)}

	mc := &contender{name: "mc cp (reference)", metric: "mc-MB/s"}
	protos := []struct{ flag, name string }{{"--http1.1", "h1"}, {"--http2", "h2"}}
	// rows[proto][0] is casedrop, then tusd with hashes, then without.
	rows := make([][]*contender, len(protos))
	for i, p := range protos {
		rows[i] = []*contender{
			{name: "casedrop tus, " + p.name, metric: "casedrop-" + p.name + "-MB/s", server: rg.cdProc},
			{name: "tusd " + tusdVersion + " s3store, " + p.name, metric: "tusd-" + p.name + "-MB/s", server: tusds[0].proc},
			{name: "tusd, content hashes off, " + p.name, metric: "tusd-nohash-" + p.name + "-MB/s", server: tusds[1].proc},
		}
	}
	b.ResetTimer()
	for round := range rg.rounds {
		mc.measure(b, rg.minioProc, size, func() {
			rg.mc(b, "cp", "--quiet", file, fmt.Sprintf("bench/%s/ref", rg.refBucket))
		})
		rg.dropObjects(b, rg.refBucket, "")
		for i, p := range protos {
			url := cd.Create(b, cred.Token, fmt.Sprintf("big-%d-%s", round, p.name), size, "")
			rows[i][0].measure(b, rg.minioProc, size, func() {
				run(b, nil, "curl", curlPatch(p.flag, cert, cred.Token, file, url)...)
			})
			rg.dropObjects(b, rg.cdBucket, "cases/bench/objects/")
			for j, t := range tusds {
				url := t.create(b, size)
				rows[i][1+j].measure(b, rg.minioProc, size, func() {
					run(b, nil, "curl", curlPatch(p.flag, cert, "", file, url)...)
				})
				rg.dropObjects(b, t.bucket, "")
			}
		}
	}
	b.StopTimer()
	for _, f := range cd.Files(b, "bench") {
		if f.State != "complete" || f.Size != size || f.SHA256 != want {
			b.Fatalf("%s is %s, %d bytes, sha256 %s; want complete, %d bytes, %s", f.Name, f.State, f.Size, f.SHA256, int64(size), want)
		}
	}
	all := []*contender{mc}
	for _, r := range rows {
		all = append(all, r...)
	}
	table(b, fmt.Sprintf("1 GiB tus upload over HTTPS (curl) into MinIO on 127.0.0.1, median of %d interleaved rounds", rg.rounds), mc, all...)
	for i, p := range protos {
		fmt.Printf("  casedrop against tusd, %s: %.2fx with its hashes, %.2fx without\n", p.name,
			rows[i][0].rate()/rows[i][1].rate(), rows[i][0].rate()/rows[i][2].rate())
	}
	fmt.Println()
}
