package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// clientFlags are the flags of the commands that talk to a running server.
type clientFlags struct {
	server string
	token  string
	cacert string
}

// register adds the flags to fs; --server defaults to CASEDROP_SERVER,
// else to the local server's https://localhost:8443.
func (f *clientFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	f.registerServer(fs, getenv, "https://localhost:8443", "base URL of the running server (env CASEDROP_SERVER; default https://localhost:8443)")
}

// registerServer adds the flags to fs, --server with the default def
// (unless CASEDROP_SERVER is set) and the help text help.
func (f *clientFlags) registerServer(fs *flag.FlagSet, getenv func(string) string, def, help string) {
	if server := getenv("CASEDROP_SERVER"); server != "" {
		def = server
	}
	fs.StringVar(&f.server, "server", def, help)
	fs.StringVar(&f.token, "token", "", "a credential of the case (prefer env CASEDROP_TOKEN; default: the admin token, env CASEDROP_ADMIN_TOKEN or <data-dir>/admin-token)")
	fs.StringVar(&f.cacert, "cacert", "", "PEM certificate to trust besides the system's (default <data-dir>/tls.crt if it exists)")
}

// apiClient calls a running casedrop server's API.
type apiClient struct {
	base  string // scheme://host[:port], no trailing slash
	token string
	http  *http.Client
}

// newClient returns a client of the server named by f. The credential is
// --token, else CASEDROP_TOKEN, else the admin token (CASEDROP_ADMIN_TOKEN,
// else <data-dir>/admin-token); with needToken false, none is fine.
func (f *clientFlags) newClient(dataDir string, getenv func(string) string, needToken bool) (*apiClient, error) {
	u, err := url.Parse(f.server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, usageErrorf("--server %q: want a URL like https://host:8443", f.server)
	}
	c := &apiClient{base: strings.TrimRight(f.server, "/")}
	c.token, err = f.credential(dataDir, getenv)
	if err != nil && needToken {
		return nil, err
	}
	pool, err := trustedCerts(f.cacert, dataDir)
	if err != nil {
		return nil, err
	}
	c.http = &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 15 * time.Second,
	}}
	return c, nil
}

func (f *clientFlags) credential(dataDir string, getenv func(string) string) (string, error) {
	for _, t := range []string{f.token, getenv("CASEDROP_TOKEN"), getenv("CASEDROP_ADMIN_TOKEN")} {
		if t = strings.TrimSpace(t); t != "" {
			return t, nil
		}
	}
	path := filepath.Join(dataDir, "admin-token")
	data, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(data)) == "" {
		return "", usageErrorf("no credential: set CASEDROP_TOKEN (or --token) to a credential of the case, or CASEDROP_ADMIN_TOKEN, or point --data-dir at the server's data directory (no readable %s)", path)
	}
	return strings.TrimSpace(string(data)), nil
}

// trustedCerts is the system's roots plus the certificate in cacert, or
// else in <data-dir>/tls.crt if there is one (the server's generated
// self-signed certificate).
func trustedCerts(cacert, dataDir string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	path := cacert
	if path == "" {
		path = filepath.Join(dataDir, "tls.crt")
	}
	data, err := os.ReadFile(path)
	if cacert == "" && errors.Is(err, fs.ErrNotExist) {
		return pool, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--cacert: %w", err)
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

// casePath is the API path of a case, or of something under it.
func casePath(caseID string, under ...string) string {
	p := "/api/v1/cases/" + url.PathEscape(caseID)
	for _, u := range under {
		p += "/" + url.PathEscape(u)
	}
	return p
}

// answerError is a server's answer whose status was not one asked for; it
// carries the server's message.
type answerError struct {
	status int
	msg    string
}

func (e *answerError) Error() string { return e.msg }

// do sends a request to path (with the credential, and body if not nil)
// and returns the response when its status is one of ok; any other status
// becomes an *answerError.
func (c *apiClient) do(ctx context.Context, method, path string, header http.Header, body io.Reader, ok ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	var e struct{ Error, Code string }
	msg := resp.Status
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		msg = e.Error + " (" + resp.Status + ")"
	}
	return nil, &answerError{status: resp.StatusCode, msg: method + " " + path + ": " + msg}
}

// send calls method on path with in, if not nil, as its JSON body and
// decodes the JSON answer into out, if not nil.
func (c *apiClient) send(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	header := http.Header{}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
		header.Set("Content-Type", "application/json")
	}
	resp, err := c.do(ctx, method, path, header, body, http.StatusOK, http.StatusCreated, http.StatusNoContent)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out)
}
