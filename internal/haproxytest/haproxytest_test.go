package haproxytest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// fakeServer stands for one instance: an HTTPS server that answers every
// request with its name and the X-Forwarded-For it got, and a TCP server
// that reads a PROXY header and answers an SSH-like banner naming itself
// and the client the header named.
type fakeServer struct {
	name  string
	https *httptest.Server
	sftp  net.Listener
}

func startFake(t *testing.T, name string) *fakeServer {
	t.Helper()
	f := &fakeServer{name: name}
	f.https = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(f.https.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.sftp = &proxyproto.Listener{Listener: ln}
	t.Cleanup(func() { _ = f.sftp.Close() })
	go func() {
		for {
			c, err := f.sftp.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "SSH-2.0-fake %s %s\r\n", name, c.RemoteAddr())
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return f
}

func (f *fakeServer) server() Server {
	return Server{Name: f.name, HTTPS: f.https.Listener.Addr().String(), SFTP: f.sftp.Addr().String()}
}

func startThree(t *testing.T) (*Balancer, []*fakeServer) {
	t.Helper()
	var fakes []*fakeServer
	var servers []Server
	for _, name := range []string{"a", "b", "c"} {
		f := startFake(t, name)
		fakes = append(fakes, f)
		servers = append(servers, f.server())
	}
	return Start(t, Options{Servers: servers}), fakes
}

// get sends GET / through client and returns the answer's body and
// whether the request went over a connection already used.
func get(t *testing.T, client *http.Client, url string) (body string, reused bool, proto string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
	}))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v: %s", url, resp.Status, err, b)
	}
	return string(b), reused, resp.Proto
}

func TestEveryRequestOnOneKeptAliveConnectionGoesToTheNextServer(t *testing.T) {
	b, _ := startThree(t)
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			tr := b.Client.Transport.(*http.Transport).Clone()
			if proto == "HTTP/1.1" {
				tr.ForceAttemptHTTP2 = false
				tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
			}
			client := &http.Client{Transport: tr}
			defer tr.CloseIdleConnections()
			var got []string
			for i := range 6 {
				body, reused, gotProto := get(t, client, b.URL+"/")
				if gotProto != proto {
					t.Fatalf("request %d went as %s, want %s", i+1, gotProto, proto)
				}
				if i > 0 && !reused {
					t.Fatalf("request %d opened a new connection: the test needs one kept alive", i+1)
				}
				name, xff, _ := strings.Cut(body, " ")
				if xff != "127.0.0.1" {
					t.Errorf("server %s got X-Forwarded-For %q, want 127.0.0.1", name, xff)
				}
				got = append(got, name)
			}
			count := map[string]int{}
			for i, name := range got {
				count[name]++
				if i > 0 && name == got[i-1] {
					t.Errorf("requests %d and %d both went to %s: %v", i, i+1, name, got)
				}
			}
			if count["a"] != 2 || count["b"] != 2 || count["c"] != 2 {
				t.Errorf("six requests on one connection went to %v; want each server twice", got)
			}
		})
	}
}

// banner connects to the SFTP frontend and returns the server's banner
// and the client's own address.
func banner(t *testing.T, addr string) (line, local string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err = bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the banner through %s: %v", addr, err)
	}
	return strings.TrimSpace(line), c.LocalAddr().String()
}

func TestEverySFTPConnectionGoesToTheNextServerAnnouncedByAPROXYHeader(t *testing.T) {
	b, _ := startThree(t)
	seen := map[string]bool{}
	for range 3 {
		line, local := banner(t, b.SFTPAddr)
		fields := strings.Fields(line) // SSH-2.0-fake NAME CLIENT
		if len(fields) != 3 {
			t.Fatalf("banner %q", line)
		}
		if fields[2] != local {
			t.Errorf("server %s was told the client is %s; the client is %s", fields[1], fields[2], local)
		}
		seen[fields[1]] = true
	}
	if len(seen) != 3 {
		t.Errorf("three connections went to %v; want one to each server", seen)
	}
}

func TestADeadServerIsTakenOutAndItsRequestsGoToTheOthers(t *testing.T) {
	b, fakes := startThree(t)
	dead := fakes[1]
	dead.https.Close()
	_ = dead.sftp.Close()
	// Before the checks notice, a refused connection is retried on another
	// server: no request fails.
	for i := range 6 {
		body, _, _ := get(t, b.Client, b.URL+"/")
		if strings.HasPrefix(body, dead.name+" ") {
			t.Fatalf("request %d was answered by the closed server", i+1)
		}
	}
	start := time.Now()
	b.WaitStatus(t, dead.name, "DOWN", 3*time.Second)
	t.Logf("%s down in both backends %v after its listeners closed", dead.name, time.Since(start).Round(time.Millisecond))
	for range 4 {
		if line, _ := banner(t, b.SFTPAddr); strings.Contains(line, " "+dead.name+" ") {
			t.Fatalf("an SFTP connection went to the dead server: %q", line)
		}
	}
	if !strings.Contains(b.Log(), "Server https/"+dead.name+" is DOWN") {
		t.Errorf("the log does not say that https/%s went down:\n%s", dead.name, b.Log())
	}
}

// The frontend's certificate is the one CertFile holds.
func TestTheHTTPSFrontendPresentsCertFile(t *testing.T) {
	b, _ := startThree(t)
	conn, err := tls.Dial("tcp", strings.TrimPrefix(b.URL, "https://"), b.Client.Transport.(*http.Transport).TLSClientConfig)
	if err != nil {
		t.Fatalf("TLS handshake trusting only CertFile: %v", err)
	}
	conn.Close()
}

// The helper process runs Start where no haproxy is on PATH.
func TestHelperProcessStartsWithoutHAProxy(t *testing.T) {
	if os.Getenv("HAPROXYTEST_HELPER") != "1" {
		return
	}
	Start(t, Options{Servers: []Server{{Name: "a", HTTPS: "127.0.0.1:1", SFTP: "127.0.0.1:2"}}})
}

func TestStartWithoutHAProxyFailsTheTestSayingHowToInstallIt(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessStartsWithoutHAProxy$", "-test.v")
	cmd.Env = append(os.Environ(), "HAPROXYTEST_HELPER=1", "PATH="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the test passed without haproxy:\n%s", out)
	}
	if !strings.Contains(string(out), "haproxy is not installed") || !strings.Contains(string(out), "make test-deps") {
		t.Errorf("the failure does not say that haproxy is missing and how to get it:\n%s", out)
	}
}
