package upload_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/upload"
)

func TestAFileCompletesAsScanningWithItsScanQueuedAndTheWorkerIsToldAtOnce(t *testing.T) {
	ctx := context.Background()
	store, err := diskstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clk := testclock.New(clock())
	catalog := cases.New(store, clk.Now)
	if _, _, err := catalog.Open(ctx, "case-1"); err != nil {
		t.Fatal(err)
	}
	told := 0
	in := upload.New(upload.Config{Store: store, Catalog: catalog, Now: clk.Now, PartSize: storage.MinPartSize,
		Scanning: true, ScanQueued: func() { told++ }})
	data := []byte("a log line\n")
	up, err := in.Create(ctx, upload.NewFile{Case: "case-1", Name: "x.log", Size: int64(len(data)), Via: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(ctx, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if told != 0 {
		t.Fatalf("the worker was told %d times before the file was committed", told)
	}
	if _, err := up.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	entry, err := catalog.File(ctx, "case-1", "x.log")
	if err != nil || entry.State != cases.FileScanning {
		t.Fatalf("the finished file is %+v, %v; want scanning", entry, err)
	}
	if jobs, err := catalog.ScanQueue(ctx); err != nil || len(jobs) != 1 || jobs[0].File != "x.log" {
		t.Fatalf("the scan queue: %+v, %v; want x.log's scan", jobs, err)
	}
	if told != 1 {
		t.Fatalf("the worker was told %d times of the file committed as scanning, want once", told)
	}
}
