package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/upload"
	"github.com/casedrop/casedrop/webhook"
)

var secret = []byte("shared-secret")

// receiver is the case system: it records deliveries and fails on demand.
type receiver struct {
	mu        sync.Mutex
	failNext  int
	delivered []webhook.Payload
	badSig    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !hmac.Equal([]byte(r.Header.Get(webhook.SignatureHeader)), []byte(webhook.Sign(secret, body))) {
		rc.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if rc.failNext > 0 {
		rc.failNext--
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.delivered = append(rc.delivered, p)
}

func (rc *receiver) got() []webhook.Payload {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhook.Payload(nil), rc.delivered...)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// instance is a casedrop process over the shared data directory.
func instance(t *testing.T, root string, clk *clock, url string) (*upload.Ingest, *cases.Catalog, *webhook.Deliverer) {
	store, err := diskstore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	cat := cases.New(store, clk.now)
	cat.EnableOutbox()
	quiet := slog.New(slog.DiscardHandler)
	in := upload.New(upload.Config{Store: store, Catalog: cat, Now: clk.now, Logger: quiet})
	return in, cat, webhook.New(webhook.Config{URL: url, Secret: secret, Outbox: cat, Now: clk.now, Logger: quiet})
}

func put(t *testing.T, in *upload.Ingest, name string, data []byte, declared string) {
	ctx := context.Background()
	up, err := in.Create(ctx, upload.NewFile{Case: "c1", Name: name, Size: int64(len(data)), SHA256: declared, Via: "tus", UploadedBy: "c1-abc"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(ctx, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	_, _ = up.Finish(ctx)
}

func TestTheCaseSystemHearsOfEveryFileAtLeastOnce(t *testing.T) {
	ctx := context.Background()
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	root := t.TempDir()
	clk := &clock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	in, cat, d := instance(t, root, clk, srv.URL)
	if _, _, err := cat.Open(ctx, "c1"); err != nil {
		t.Fatal(err)
	}

	put(t, in, "a.log", []byte("hello"), "")
	t.Run("a completed file is delivered, signed, with its size and digest", func(t *testing.T) {
		if err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		got := rc.got()
		if len(got) != 1 || got[0].Type != "file.completed" || got[0].File.Name != "a.log" || got[0].File.Size != 5 ||
			got[0].File.SHA256 != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" || got[0].Case != "c1" {
			t.Fatalf("delivered %+v", got)
		}
		if rc.badSig != 0 {
			t.Fatal("a delivery's signature did not verify")
		}
	})
	t.Run("a delivered event is not sent again", func(t *testing.T) {
		if err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(rc.got()); n != 1 {
			t.Fatalf("%d deliveries, want 1", n)
		}
	})
	t.Run("a receiver's 500 is retried after a backoff", func(t *testing.T) {
		rc.mu.Lock()
		rc.failNext = 1
		rc.mu.Unlock()
		put(t, in, "b.log", []byte("world"), "0000000000000000000000000000000000000000000000000000000000000000")
		if err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(rc.got()); n != 1 {
			t.Fatalf("%d deliveries after a 500, want still 1", n)
		}
		if err := d.DeliverDue(ctx); err != nil || len(rc.got()) != 1 {
			t.Fatal("retried before its backoff")
		}
		clk.advance(2 * time.Second)
		if err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		got := rc.got()
		if len(got) != 2 || got[1].Type != "file.rejected" || got[1].File.Name != "b.log" {
			t.Fatalf("after the retry: %+v", got)
		}
	})
	t.Run("no event is lost across a restart while the receiver is down", func(t *testing.T) {
		rc.mu.Lock()
		rc.failNext = 1000
		rc.mu.Unlock()
		put(t, in, "c.log", []byte("!"), "")
		_ = d.DeliverDue(ctx) // fails: the receiver is down
		// The process stops; a new one starts on the same data.
		rc.mu.Lock()
		rc.failNext = 0
		rc.mu.Unlock()
		clk.advance(time.Hour)
		_, _, d2 := instance(t, root, clk, srv.URL)
		if err := d2.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		got := rc.got()
		if len(got) != 3 || got[2].File.Name != "c.log" {
			t.Fatalf("after the restart: %+v", got)
		}
		if pending, _ := cat.Outbox(ctx); len(pending) != 0 {
			t.Fatalf("outbox not empty: %+v", pending)
		}
	})
}
