package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/upload"
	"github.com/casedrop/casedrop/webhook"
)

// secret is the case system's Standard Webhooks secret.
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func key(t *testing.T) []byte {
	t.Helper()
	k, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// attempt is one delivery as the receiver saw it.
type attempt struct {
	id string
	at time.Time
}

// receiver is the case system: it checks deliveries as the Standard
// Webhooks libraries do (signature, and a timestamp within 5 minutes of
// its clock), records them and fails on demand.
type receiver struct {
	key       []byte
	now       func() time.Time
	mu        sync.Mutex
	failNext  int
	delivered []webhook.Payload
	attempts  []attempt
	badSig    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	id := r.Header.Get(webhook.IDHeader)
	secs, err := strconv.ParseInt(r.Header.Get(webhook.TimestampHeader), 10, 64)
	at := time.Unix(secs, 0)
	if err != nil || id == "" || at.Sub(rc.now()).Abs() > 5*time.Minute ||
		!hmac.Equal([]byte(r.Header.Get(webhook.SignatureHeader)), []byte(webhook.Sign(rc.key, id, at, body))) {
		rc.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.attempts = append(rc.attempts, attempt{id, at})
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

type clock = testclock.Clock

// instance is a casedrop process over the shared data directory.
func instance(t *testing.T, root string, clk *clock, url string) (*upload.Ingest, *cases.Catalog, *webhook.Deliverer) {
	store, err := diskstore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	cat := cases.New(store, clk.Now)
	cat.EnableOutbox()
	quiet := slog.New(slog.DiscardHandler)
	in := upload.New(upload.Config{Store: store, Catalog: cat, Now: clk.Now, Logger: quiet})
	return in, cat, webhook.New(webhook.Config{URL: url, Key: key(t), Outbox: cat, Now: clk.Now, Logger: quiet})
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
	clk := testclock.New(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	rc := &receiver{key: key(t), now: clk.Now}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	root := t.TempDir()
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
		clk.Advance(2 * time.Second)
		if err := d.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		got := rc.got()
		if len(got) != 2 || got[1].Type != "file.rejected" || got[1].File.Name != "b.log" {
			t.Fatalf("after the retry: %+v", got)
		}
		rc.mu.Lock()
		tries := rc.attempts[len(rc.attempts)-2:]
		rc.mu.Unlock()
		if tries[0].id != tries[1].id || got[1].ID != tries[0].id {
			t.Fatalf("the retry has webhook-id %q, the first attempt %q, the payload %q", tries[1].id, tries[0].id, got[1].ID)
		}
		if want := tries[0].at.Add(2 * time.Second); !tries[1].at.Equal(want) {
			t.Fatalf("the retry is signed at %v, want its own time %v", tries[1].at, want)
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
		clk.Advance(time.Hour)
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

func TestSignIsTheStandardWebhooksSignature(t *testing.T) {
	// The example of the Standard Webhooks libraries' own tests.
	got := webhook.Sign(key(t), "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestParseSecretTakesOnlyAWhsecSecret(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret string
		ok     bool
	}{
		{"whsec_ and the base64 of 32 bytes is taken", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32)), true},
		{"a plain password is refused, not taken as key bytes", "shared-secret", false},
		{"base64 without whsec_ is refused", base64.StdEncoding.EncodeToString(make([]byte, 32)), false},
		{"whsec_ with what is not base64 is refused", "whsec_not base64!", false},
		{"a key shorter than 24 bytes is refused", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16)), false},
		{"a key longer than 64 bytes is refused", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := webhook.ParseSecret(tc.secret)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseSecret(%q): %v", tc.secret, err)
			}
			if err != nil && !errors.Is(err, webhook.ErrSecret) {
				t.Fatalf("ParseSecret(%q): %v, want ErrSecret", tc.secret, err)
			}
		})
	}
}

// listedTogether is an outbox whose first readers wait for each other, so
// that instances racing for the same notifications all see them unclaimed.
type listedTogether struct {
	*cases.Catalog
	wg *sync.WaitGroup
}

func (o listedTogether) Outbox(ctx context.Context) ([]cases.Notification, error) {
	pending, err := o.Catalog.Outbox(ctx)
	o.wg.Done()
	o.wg.Wait()
	return pending, err
}

func TestSeveralInstancesSendEachEventOnce(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	rc := &receiver{key: key(t), now: clk.Now}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	root := t.TempDir()
	in, cat, _ := instance(t, root, clk, srv.URL)
	_, catB, _ := instance(t, root, clk, srv.URL)
	if _, _, err := cat.Open(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	const lease = time.Minute
	deliverer := func(name string, o webhook.Outbox) *webhook.Deliverer {
		return webhook.New(webhook.Config{URL: srv.URL, Key: key(t), Outbox: o, Now: clk.Now, Logger: quiet, Instance: name, ClaimLease: lease})
	}

	t.Run("two instances delivering at once send each event once", func(t *testing.T) {
		for _, name := range []string{"a.log", "b.log", "c.log"} {
			put(t, in, name, []byte(name), "")
		}
		together := &sync.WaitGroup{}
		together.Add(2)
		a := deliverer("instance-a", listedTogether{cat, together})
		b := deliverer("instance-b", listedTogether{catB, together})
		var wg sync.WaitGroup
		var errA, errB error
		wg.Go(func() { errA = a.DeliverDue(ctx) })
		wg.Go(func() { errB = b.DeliverDue(ctx) })
		wg.Wait()
		if errA != nil || errB != nil {
			t.Fatalf("DeliverDue: %v, %v", errA, errB)
		}
		got := rc.got()
		seen := map[string]int{}
		for _, p := range got {
			seen[p.File.Name]++
		}
		if len(got) != 3 || seen["a.log"] != 1 || seen["b.log"] != 1 || seen["c.log"] != 1 {
			t.Fatalf("the receiver got %v, want each of the 3 files once", seen)
		}
		if pending, _ := cat.Outbox(ctx); len(pending) != 0 {
			t.Fatalf("outbox not empty: %+v", pending)
		}
	})

	t.Run("a claim whose instance died is taken over once it expires", func(t *testing.T) {
		put(t, in, "d.log", []byte("d"), "")
		// Instance a claims the notification and dies before sending it.
		pending, err := cat.Outbox(ctx)
		if err != nil || len(pending) != 1 {
			t.Fatalf("outbox: %v, %+v", err, pending)
		}
		if _, mine, err := cat.Claim(ctx, pending[0], "instance-a", lease); err != nil || !mine {
			t.Fatalf("Claim: %v, %v", mine, err)
		}
		b := deliverer("instance-b", catB)
		if err := b.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(rc.got()); n != 3 {
			t.Fatalf("%d deliveries while a's claim holds, want still 3", n)
		}
		clk.Advance(lease)
		if err := b.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		got := rc.got()
		if len(got) != 4 || got[3].File.Name != "d.log" {
			t.Fatalf("after the claim expired: %+v", got)
		}
	})

	t.Run("a failed attempt releases the claim, so any instance retries it", func(t *testing.T) {
		rc.mu.Lock()
		rc.failNext = 1
		rc.mu.Unlock()
		put(t, in, "e.log", []byte("e"), "")
		if err := deliverer("instance-a", cat).DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Second) // the backoff, far shorter than the lease
		if err := deliverer("instance-b", catB).DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		got := rc.got()
		if len(got) != 5 || got[4].File.Name != "e.log" {
			t.Fatalf("after the retry on the other instance: %+v", got)
		}
	})
}
