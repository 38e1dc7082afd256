package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTrail keeps the refusals recorded, and counts those counted.
type fakeTrail struct {
	mu      sync.Mutex
	records []Refusal
	counted map[string]int
}

func (f *fakeTrail) RecordRefusal(_ context.Context, r Refusal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records = append(f.records, r)
	return nil
}

func (f *fakeTrail) count(door string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counted[door]++
}

// newGate is a gate over a login environment, limiting each source to
// maxFailures a minute on the environment's clock.
func newGate(t *testing.T, maxFailures int) (*Gate, *testEnv, *fakeAccounts, *fakeTrail) {
	t.Helper()
	e, accounts := newLoginEnv(t)
	trail := &fakeTrail{counted: map[string]int{}}
	g := &Gate{
		Verifier:     e.verifier,
		Limiter:      NewLimiter(maxFailures, time.Minute, e.clock.Now),
		Trail:        trail,
		CountRefusal: trail.count,
		Log:          slog.New(slog.DiscardHandler),
	}
	return g, e, accounts, trail
}

var guesser = Knock{Door: "sftp", Remote: netip.MustParseAddr("203.0.113.7"), User: "c1-abcdef", On: "password login"}

func TestAValidCredentialPassesTheGateWhateverItsSourceFailed(t *testing.T) {
	g, e, accounts, _ := newGate(t, 2)
	cr := issueAccount(t, e, accounts, "c1", 0, false, false)
	ctx := context.Background()
	for range 5 {
		if _, err := g.Password(ctx, guesser, cr.Username, "wrong-password"); err == nil {
			t.Fatal("a wrong password passed")
		}
	}
	var r *Refused
	if _, err := g.Token(ctx, guesser, "bad.bad.bad", ""); !errors.As(err, &r) || !r.Limited || r.RetryAfter <= 0 {
		t.Fatalf("the source over its budget got %v, want a limited refusal", err)
	}
	for name, login := range map[string]func() (Claims, error){
		"its token":          func() (Claims, error) { return g.Token(ctx, guesser, cr.token, "c1") },
		"its token on SFTP":  func() (Claims, error) { return g.Password(ctx, guesser, cr.Username, cr.token) },
		"its short password": func() (Claims, error) { return g.Password(ctx, guesser, cr.Username, cr.password) },
	} {
		if c, err := login(); err != nil || c.CredentialID != cr.CredentialID {
			t.Errorf("%s from a limited source: %+v, %v; want it let in", name, c, err)
		}
	}

	fresh := Knock{Door: "api", Remote: netip.MustParseAddr("198.51.100.1")}
	for range 5 {
		if _, err := g.Token(ctx, fresh, cr.token, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.Token(ctx, fresh, "bad.bad.bad", ""); !errors.As(err, &r) || r.Limited {
		t.Errorf("the first refusal after 5 valid logins got %v, want one within the budget: valid logins must not count", err)
	}
}

func TestRefusalsAreRecordedWithinTheBudgetThenOnceAMinute(t *testing.T) {
	g, e, _, trail := newGate(t, 2)
	ctx := context.Background()
	for range 10 {
		_, _ = g.Token(ctx, guesser, "bad.bad.bad", "")
	}
	if n := len(trail.records); n != 3 {
		t.Fatalf("10 refusals in a minute made %d records, want 3 (2 within the budget, 1 over it)", n)
	}
	if d := trail.records[2].Detail; !strings.Contains(d, "over its failed-login budget") {
		t.Errorf("the record past the budget says %q", d)
	}
	e.clock.Advance(time.Minute)
	_, _ = g.Token(ctx, guesser, "bad.bad.bad", "")
	if n := len(trail.records); n != 4 {
		t.Fatalf("%d records a minute later, want 4", n)
	}
	r := trail.records[3]
	if r.Door != "sftp" || r.Remote != guesser.Remote || r.User != guesser.User ||
		!strings.HasPrefix(r.Detail, "invalid credential on password login") || !strings.Contains(r.Detail, "7 more failures") {
		t.Errorf("the record a minute later is %+v, want the 7 failures not recorded", r)
	}
	if n := trail.counted["sftp"]; n != 11 {
		t.Errorf("%d refusals counted, want every one of the 11", n)
	}
}

func TestAKeyTurnedDownIsNeitherCountedNorRecorded(t *testing.T) {
	g, e, accounts, trail := newGate(t, 1)
	cr := issueAccount(t, e, accounts, "c1", 0, true, false)
	ctx := context.Background()
	for range 5 {
		_, err := g.Key(ctx, guesser, cr.Username, newSSHKey(t))
		var r *Refused
		if err == nil || errors.As(err, &r) {
			t.Fatalf("an unknown key got %v, want a plain refusal", err)
		}
	}
	if len(trail.records) != 0 || len(trail.counted) != 0 {
		t.Errorf("keys turned down were recorded %v, counted %v", trail.records, trail.counted)
	}
	if g.Limiter.Limited(guesser.Remote) {
		t.Error("keys turned down count against their source")
	}
	if c, err := g.Key(ctx, guesser, cr.Username, cr.key); err != nil || c.CredentialID != cr.CredentialID {
		t.Errorf("its own key: %+v, %v", c, err)
	}
}

func TestACheckThatFailsIsNoRefusal(t *testing.T) {
	g, e, accounts, trail := newGate(t, 1)
	cr := issueAccount(t, e, accounts, "c1", 0, false, false)
	accounts.err = errors.New("store unavailable")
	_, err := g.Password(context.Background(), guesser, cr.Username, cr.password)
	var r *Refused
	if err == nil || errors.As(err, &r) || Reason(err) != "" {
		t.Fatalf("a failed lookup got %v, want its error, not a refusal", err)
	}
	if len(trail.records) != 0 || len(trail.counted) != 0 {
		t.Errorf("a failed check was recorded %v, counted %v", trail.records, trail.counted)
	}
}

func TestARefusalSaysWhyAndNeverHoldsTheSecret(t *testing.T) {
	g, e, accounts, trail := newGate(t, 10)
	cr := issueAccount(t, e, accounts, "c1", 0, false, false)
	e.revocations.revoked[cr.Case+"/"+cr.CredentialID] = true
	_, err := g.Token(context.Background(), Knock{Door: "api", Remote: guesser.Remote, On: "GET /api/v1/cases/c1/files"}, cr.token, "c1")
	if !errors.Is(err, ErrRevoked) {
		t.Fatalf("a revoked token got %v, want ErrRevoked", err)
	}
	sig := cr.token[strings.LastIndexByte(cr.token, '.')+1:]
	for _, r := range trail.records {
		if strings.Contains(r.Detail+r.User+r.On, sig) {
			t.Errorf("the record %+v holds the token", r)
		}
	}
}
