package sftpd_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	backendpkg "github.com/casedrop/casedrop/internal/backends"
	"github.com/casedrop/casedrop/internal/miniotest"
	"github.com/casedrop/casedrop/internal/testclock"
	"github.com/casedrop/casedrop/sftpd"
	"github.com/casedrop/casedrop/storage"
	"github.com/casedrop/casedrop/storage/diskstore"
	"github.com/casedrop/casedrop/upload"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

// backends runs fn against local disk and a real MinIO.
func backends(t *testing.T, fn func(t *testing.T, store storage.Store)) {
	backendpkg.Each(t, func(t *testing.T, newStore func() storage.Store) { fn(t, newStore()) })
}

func diskStore(t *testing.T) storage.Store {
	s, err := diskstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clock is a settable clock shared by everything in an env.
type clock = testclock.Clock

// logBuffer collects log lines from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a running SFTP door over a store with one open case, "case-1".
type env struct {
	store   storage.Store
	clock   *clock
	catalog *cases.Catalog
	ingest  *upload.Ingest
	issuer  *auth.Issuer
	srv     *sftpd.Server
	addr    string
	logs    *logBuffer
	served  chan error

	mu     sync.Mutex
	tokens []string
}

func newEnv(t *testing.T, store storage.Store, configure ...func(*sftpd.Config)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{store: store, clock: testclock.New(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)), logs: &logBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.catalog = cases.New(store, e.clock.Now)
	keys, err := auth.LoadKeys(ctx, store, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	e.issuer = &auth.Issuer{Keys: keys, Issuer: "casedrop", Now: e.clock.Now}
	e.ingest = upload.New(upload.Config{Store: store, Catalog: e.catalog, Now: e.clock.Now, Logger: log, PartSize: storage.MinPartSize})
	hostKeys, err := sftpd.LoadHostKeys(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sftpd.Config{
		Catalog:  e.catalog,
		Ingest:   e.ingest,
		Verifier: &auth.Verifier{Keys: keys, Issuer: "casedrop", Now: e.clock.Now, Revocations: e.catalog, Accounts: e.catalog},
		Limiter:  auth.NewLimiter(10, time.Minute, e.clock.Now),
		HostKeys: hostKeys,
		Logger:   log,
		Now:      e.clock.Now,
	}
	for _, c := range configure {
		c(&cfg)
	}
	e.srv, err = sftpd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.served = make(chan error, 1)
	go func() { e.served <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-e.served; !errors.Is(err, sftpd.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		e.checkNoSecretLogged(t)
		if t.Failed() {
			logs := e.logs.String()
			t.Logf("server log (end):\n%s", logs[max(0, len(logs)-8000):])
		}
	})
	e.openCase(t, "case-1")
	return e
}

// shutdown stops the server as SIGTERM does; the cleanup finds it stopped.
func (e *env) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func (e *env) openCase(t *testing.T, id string) {
	t.Helper()
	if _, _, err := e.catalog.Open(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

// checkNoSecretLogged fails if any token issued reached the log.
func (e *env) checkNoSecretLogged(t *testing.T) {
	logs := e.logs.String()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, tok := range e.tokens {
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		if strings.Contains(logs, tok) || strings.Contains(logs, sig) {
			t.Errorf("a token reached the log")
		}
	}
}

// cred is a credential as the case system hands it out.
type cred struct {
	id, user, token string
}

// issue issues and records a credential for caseID, as web's API does.
func (e *env) issue(t *testing.T, caseID string, ttl time.Duration) cred {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	token, claims, err := e.issuer.Issue(auth.Claims{Case: caseID, CredentialID: id, Username: caseID + "-" + id[:6]}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	err = e.catalog.AddCredential(context.Background(), cases.Credential{
		ID: id, Case: caseID, Username: claims.Username, Role: claims.Role, IssuedAt: claims.IssuedAt, ExpiresAt: claims.ExpiresAt,
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.tokens = append(e.tokens, token)
	e.mu.Unlock()
	return cred{id: id, user: claims.Username, token: token}
}

// conn is one client connection: the SFTP client, its SSH client and the
// TCP connection under them (close it to drop the link).
type conn struct {
	*sftp.Client
	ssh  *ssh.Client
	tcp  net.Conn
	done chan struct{} // closed when the SSH connection has ended
}

func clientConfig(user string, auth ...ssh.AuthMethod) *ssh.ClientConfig {
	return &ssh.ClientConfig{User: user, Auth: auth, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
}

func passwordAuth(password string) ssh.AuthMethod { return ssh.Password(password) }

// login connects with a password, failing the test if that fails.
func (e *env) login(t *testing.T, c cred) *conn {
	t.Helper()
	cn, err := e.dial(t, clientConfig(c.user, ssh.Password(c.token)))
	if err != nil {
		t.Fatalf("login as %s: %v", c.user, err)
	}
	return cn
}

func (e *env) dial(t *testing.T, cfg *ssh.ClientConfig) (*conn, error) {
	t.Helper()
	return e.dialAfter(t, cfg, nil)
}

// dialAfter is dial with preamble sent first, as a proxy sends its PROXY
// protocol header.
func (e *env) dialAfter(t *testing.T, cfg *ssh.ClientConfig, preamble []byte) (*conn, error) {
	t.Helper()
	tcp, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tcp.Write(preamble); err != nil {
		t.Fatal(err)
	}
	sc, chans, reqs, err := ssh.NewClientConn(tcp, e.addr, cfg)
	if err != nil {
		tcp.Close()
		return nil, err
	}
	sshClient := ssh.NewClient(sc, chans, reqs)
	client, err := sftp.NewClient(sshClient, sftp.UseConcurrentWrites(true))
	if err != nil {
		sshClient.Close()
		return nil, err
	}
	t.Cleanup(func() {
		client.Close()
		sshClient.Close()
	})
	c := &conn{Client: client, ssh: sshClient, tcp: tcp, done: make(chan struct{})}
	go func() {
		_ = sshClient.Wait()
		close(c.done)
	}()
	return c, nil
}

// drop cuts the link under the client, as a lost network would.
func (c *conn) drop() { c.tcp.Close() }

// partial starts uploading name with data, then loses the link. It returns
// a new connection once the server has stored what arrived: every byte the
// server acknowledged.
func (e *env) partial(t *testing.T, cr cred, name string, data []byte) *conn {
	t.Helper()
	first := e.login(t, cr)
	f, err := first.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	first.drop()
	c := e.login(t, cr)
	eventually(t, name+" is listed with the bytes that arrived", func() bool {
		return storedSize(t, c, name) == int64(len(data))
	})
	return c
}

// closed reports whether the server has ended the connection.
func (c *conn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// eventually waits for cond, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-tick.C
	}
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := mathrand.New(mathrand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// put uploads data as name in one go.
func put(t *testing.T, c *conn, name string, data []byte) {
	t.Helper()
	f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatalf("open %s for upload: %v", name, err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", name, err)
	}
}

// get downloads name.
func get(t *testing.T, c *conn, name string) []byte {
	t.Helper()
	f, err := c.Open(name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatalf("download %s: %v", name, err)
	}
	return buf.Bytes()
}

// events returns the case-1 audit events of type typ.
func (e *env) events(t *testing.T, typ string) []cases.Event {
	t.Helper()
	evs, err := e.catalog.AuditTrail(context.Background(), "case-1", cases.AuditFilter{Types: []string{typ}})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// catalogFile returns the catalog entry of name in case-1.
func (e *env) catalogFile(t *testing.T, name string) cases.File {
	t.Helper()
	f, err := e.catalog.File(context.Background(), "case-1", name)
	if err != nil {
		t.Fatalf("catalog entry of %s: %v", name, err)
	}
	return f
}

// wantStatus checks that err is an SFTP status with code.
func wantStatus(t *testing.T, what string, err error, code uint32) {
	t.Helper()
	var se *sftp.StatusError
	switch {
	case errors.As(err, &se):
		if se.Code != code {
			t.Fatalf("%s: status %d (%v), want %d", what, se.Code, err, code)
		}
	case code == codeNoSuchFile && errors.Is(err, os.ErrNotExist),
		code == codePermissionDenied && errors.Is(err, os.ErrPermission):
	default:
		t.Fatalf("%s: got %v, want SFTP status %d", what, err, code)
	}
}

// SFTP status codes (draft-ietf-secsh-filexfer-02).
const (
	codeNoSuchFile       = 2
	codePermissionDenied = 3
	codeFailure          = 4
)

// storedSize is what a new connection's stat says of name.
func storedSize(t *testing.T, c *conn, name string) int64 {
	t.Helper()
	fi, err := c.Stat(name)
	if err != nil {
		t.Fatalf("stat %s: %v", name, err)
	}
	return fi.Size()
}
