package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/cases"
	"github.com/casedrop/casedrop/web"
)

// errNotFound: the case or credential named does not exist (exit status 3).
var errNotFound = errors.New("not found")

// caseInfo is a case as `casedrop case` shows it (the API's JSON).
type caseInfo = cases.Summary

// issued is a credential just issued (the API's JSON).
type issued = web.Credential

// uploadLink is an upload link just issued (the API's JSON).
type uploadLink = web.Link

// admin is every admin action, done through a running server (remote) or
// directly on the data (local): each command is written once, over this.
type admin interface {
	openCase(ctx context.Context, id string) (caseInfo, error)
	closeCase(ctx context.Context, id string) (caseInfo, error)
	reopenCase(ctx context.Context, id string) (caseInfo, error)
	showCase(ctx context.Context, id string) (caseInfo, error)
	listCases(ctx context.Context) ([]cases.Case, error)
	issue(ctx context.Context, caseID, role string, ttlHours int, key auth.SSHKey) (issued, error)
	link(ctx context.Context, caseID string, ttl time.Duration) (uploadLink, error)
	revoke(ctx context.Context, id string) (cases.Credential, error)
	credentials(ctx context.Context, caseID string) ([]cases.Credential, error)
	purge(ctx context.Context, asOf time.Time, dry bool) ([]cases.PurgeReport, error)
	audit(ctx context.Context, caseID string, f cases.AuditFilter) ([]cases.Event, error)
}

// adminFlags are the flags every admin command takes.
type adminFlags struct {
	client clientFlags
	json   bool
}

// connect parses the admin command's flags and picks its backend: the
// server named by --server or CASEDROP_SERVER, else the data directly.
func connect(ctx context.Context, name string, args []string, getenv func(string) string, add func(*flag.FlagSet)) (admin, *adminFlags, []string, error) {
	af := &adminFlags{}
	cfg, rest, err := parseCommand(name, args, getenv, dataSettings, func(fs *flag.FlagSet) {
		af.client.registerServer(fs, getenv, "", "act through the running server at this base URL, e.g. https://localhost:8443 (env CASEDROP_SERVER); without it, act on the data directly (--data-dir or the --s3-* settings)")
		fs.BoolVar(&af.json, "json", false, "print JSON, for scripts")
		if add != nil {
			add(fs)
		}
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if af.client.server != "" {
		c, err := af.client.newClient(cfg.DataDir, getenv, true)
		if err != nil {
			return nil, nil, nil, err
		}
		return remote{c}, af, rest, nil
	}
	if err := cfg.completeData(); err != nil {
		return nil, nil, nil, usageError{err}
	}
	cfg.Instance = "cli" // the name in purge claims
	p, err := build(ctx, cfg, direct, slog.Default())
	if err != nil {
		return nil, nil, nil, err
	}
	return &local{catalog: p.catalog, issuer: p.issuer, purger: p.purger, publicURL: cfg.publicURL}, af, rest, nil
}

// remote does the admin actions through a running server's API.
type remote struct{ c *apiClient }

// send calls the API; an answer 404 is errNotFound (exit status 3).
func (r remote) send(ctx context.Context, method, path string, in, out any) error {
	err := r.c.send(ctx, method, path, in, out)
	var ae *answerError
	if errors.As(err, &ae) && ae.status == http.StatusNotFound {
		return fmt.Errorf("%w: %v", errNotFound, err)
	}
	return err
}

func (r remote) openCase(ctx context.Context, id string) (c caseInfo, err error) {
	return c, r.send(ctx, http.MethodPut, casePath(id), nil, &c)
}

func (r remote) closeCase(ctx context.Context, id string) (c caseInfo, err error) {
	return c, r.send(ctx, http.MethodPost, casePath(id, "close"), nil, &c)
}

func (r remote) reopenCase(ctx context.Context, id string) (c caseInfo, err error) {
	return c, r.send(ctx, http.MethodPost, casePath(id, "reopen"), nil, &c)
}

func (r remote) showCase(ctx context.Context, id string) (c caseInfo, err error) {
	return c, r.send(ctx, http.MethodGet, casePath(id), nil, &c)
}

func (r remote) listCases(ctx context.Context) ([]cases.Case, error) {
	var out struct{ Cases []cases.Case }
	return out.Cases, r.send(ctx, http.MethodGet, "/api/v1/cases", nil, &out)
}

func (r remote) issue(ctx context.Context, caseID, role string, ttlHours int, key auth.SSHKey) (i issued, err error) {
	in := map[string]any{"role": role, "ttl_hours": ttlHours}
	if key.AuthorizedKey != "" {
		in["ssh_public_key"] = key.AuthorizedKey
	}
	return i, r.send(ctx, http.MethodPost, casePath(caseID, "credentials"), in, &i)
}

func (r remote) link(ctx context.Context, caseID string, ttl time.Duration) (l uploadLink, err error) {
	in := map[string]int{"ttl_seconds": int(ttl / time.Second)}
	return l, r.send(ctx, http.MethodPost, casePath(caseID, "links"), in, &l)
}

func (r remote) revoke(ctx context.Context, id string) (c cases.Credential, err error) {
	return c, r.send(ctx, http.MethodDelete, "/api/v1/credentials/"+url.PathEscape(id), nil, &c)
}

func (r remote) credentials(ctx context.Context, caseID string) ([]cases.Credential, error) {
	var out struct{ Credentials []cases.Credential }
	return out.Credentials, r.send(ctx, http.MethodGet, casePath(caseID, "credentials"), nil, &out)
}

func (r remote) purge(ctx context.Context, asOf time.Time, dry bool) ([]cases.PurgeReport, error) {
	q := url.Values{"as_of": {asOf.UTC().Format(time.RFC3339)}, "dry_run": {strconv.FormatBool(dry)}}
	var out struct{ Purged []cases.PurgeReport }
	return out.Purged, r.send(ctx, http.MethodPost, "/api/v1/purge?"+q.Encode(), nil, &out)
}

func (r remote) audit(ctx context.Context, caseID string, f cases.AuditFilter) ([]cases.Event, error) {
	q := url.Values{}
	for k, v := range map[string]string{"credential": f.CredentialID, "file": f.File} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.Format(time.RFC3339))
	}
	if len(f.Types) > 0 {
		q.Set("type", strings.Join(f.Types, ","))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	path := "/api/v1/audit"
	if caseID != "" {
		path = casePath(caseID, "audit")
	}
	var out struct{ Events []cases.Event }
	return out.Events, r.send(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &out)
}

// local does the admin actions directly on the data, as the operator.
type local struct {
	catalog *cases.Catalog
	issuer  *auth.Issuer
	purger  *cases.Purger
	// publicURL is the base of the links made here: CASEDROP_PUBLIC_URL,
	// else serve's default.
	publicURL func() (string, error)
}

var cliActor = cases.AdminActor("cli", "")

// done lets an operation through whose only failure was its audit
// record (cases.ErrNotAudited): the operator is warned, and shown what was
// done.
func done(err error) error {
	if errors.Is(err, cases.ErrNotAudited) {
		fmt.Fprintln(os.Stderr, "casedrop: warning:", err)
		return nil
	}
	return err
}

func notFound(err error) error {
	if errors.Is(err, cases.ErrNotFound) {
		return fmt.Errorf("%w: %v", errNotFound, err)
	}
	return err
}

func (l *local) info(ctx context.Context, c cases.Case, err error) (caseInfo, error) {
	if err != nil {
		return caseInfo{}, notFound(err)
	}
	return l.catalog.Summarize(ctx, c)
}

func (l *local) openCase(ctx context.Context, id string) (caseInfo, error) {
	c, _, err := l.catalog.OpenCase(ctx, id, cliActor)
	return l.info(ctx, c, done(err))
}

func (l *local) closeCase(ctx context.Context, id string) (caseInfo, error) {
	c, err := l.catalog.CloseCase(ctx, id, cliActor)
	return l.info(ctx, c, done(err))
}

func (l *local) reopenCase(ctx context.Context, id string) (caseInfo, error) {
	c, err := l.catalog.ReopenCase(ctx, id, cliActor)
	return l.info(ctx, c, done(err))
}

func (l *local) showCase(ctx context.Context, id string) (caseInfo, error) {
	c, err := l.catalog.Get(ctx, id)
	return l.info(ctx, c, err)
}

func (l *local) listCases(ctx context.Context) ([]cases.Case, error) { return l.catalog.Cases(ctx) }

func (l *local) issue(ctx context.Context, caseID, role string, ttlHours int, key auth.SSHKey) (issued, error) {
	r, err := auth.ParseRole(role)
	if err != nil {
		return issued{}, usageErrorf("--role: %v", err)
	}
	c, err := l.catalog.IssueCredential(ctx, l.issuer, cases.CredentialRequest{
		Case: caseID, Role: r, TTL: time.Duration(ttlHours) * time.Hour, SSHKey: key,
	}, cliActor)
	if err := done(err); err != nil {
		return issued{}, notFound(err)
	}
	return issued{ID: c.ID, Case: caseID, Role: string(r), Username: c.Username, Password: c.Password, Token: c.Token,
		IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, SSHKeyFingerprint: c.SSHKeyFingerprint}, nil
}

func (l *local) link(ctx context.Context, caseID string, ttl time.Duration) (uploadLink, error) {
	base, err := l.publicURL()
	if err != nil {
		return uploadLink{}, usageError{err}
	}
	link, err := l.catalog.IssueLink(ctx, caseID, ttl, cliActor)
	if err := done(err); err != nil {
		return uploadLink{}, notFound(err)
	}
	return uploadLink{Code: link.Code, URL: web.LinkURL(base, caseID, link.Code), ExpiresAt: link.ExpiresAt}, nil
}

func (l *local) revoke(ctx context.Context, id string) (cases.Credential, error) {
	c, err := l.catalog.RevokeCredential(ctx, id, cliActor)
	return c, notFound(done(err))
}

func (l *local) credentials(ctx context.Context, caseID string) ([]cases.Credential, error) {
	if _, err := l.catalog.Get(ctx, caseID); err != nil {
		return nil, notFound(err)
	}
	return l.catalog.Credentials(ctx, caseID)
}

func (l *local) purge(ctx context.Context, asOf time.Time, dry bool) ([]cases.PurgeReport, error) {
	return l.purger.PurgeDue(ctx, asOf, dry)
}

func (l *local) audit(ctx context.Context, caseID string, f cases.AuditFilter) ([]cases.Event, error) {
	if caseID == "" {
		return l.catalog.AuditTrail(ctx, "", f) // the server-wide trail
	}
	if err := cases.ValidCaseID(caseID); err != nil {
		return nil, usageErrorf("%v", err)
	}
	return l.catalog.AuditTrail(ctx, caseID, f)
}
