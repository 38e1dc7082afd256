package bench

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testserver"
)

// rig is what every benchmark compares on: casedrop storing into a MinIO
// bucket, and `mc` talking to another bucket of the same MinIO.
type rig struct {
	minio     *miniotest.Server
	cd        *testserver.Server
	refBucket string
	mcEnv     []string // the environment that makes "bench/" name that MinIO for mc
	rounds    int      // BENCH_ROUNDS, default 3
}

func newRig(b *testing.B) *rig {
	r := &rig{rounds: 3, minio: miniotest.Shared(b)}
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS")); err == nil && n > 0 {
		r.rounds = n
	}
	r.cd = testserver.Start(b, testserver.Options{S3: r.minio, Bucket: r.minio.NewBucket(b)})
	r.refBucket = r.minio.NewBucket(b)
	r.mcEnv = append(os.Environ(),
		"MC_CONFIG_DIR="+b.TempDir(),
		fmt.Sprintf("MC_HOST_bench=http://%s:%s@%s", r.minio.AccessKey, r.minio.SecretKey, r.minio.Endpoint))
	return r
}
