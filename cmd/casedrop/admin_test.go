package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/casedrop/casedrop/storage/diskstore"
)

// adminOnData runs an admin command directly on a data directory.
func adminOnData(t *testing.T, dataDir string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runAdmin(context.Background(), args[0], append(args[1:], "--data-dir", dataDir), env(nil), &out)
	return out.String(), err
}

func TestAdminCommandsOnTheDataDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "store"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := diskstore.New(filepath.Join(dir, "store")); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := adminOnData(t, dir, args...)
		if err != nil {
			t.Fatalf("casedrop %s: %v", strings.Join(args, " "), err)
		}
		return out
	}

	if out := run("case", "open", "CASE-7"); !strings.Contains(out, "state") || !strings.Contains(out, "open") {
		t.Fatalf("case open printed %q", out)
	}
	var cred struct{ ID, Token, Username string }
	if err := json.Unmarshal([]byte(run("credentials", "issue", "CASE-7", "--role", "staff", "--json")), &cred); err != nil || cred.Token == "" || cred.ID == "" {
		t.Fatalf("credentials issue --json: %+v %v", cred, err)
	}
	if out := run("credentials", "list", "CASE-7"); !strings.Contains(out, cred.ID) || !strings.Contains(out, "staff") {
		t.Fatalf("credentials list printed %q", out)
	}
	run("case", "close", "CASE-7")
	var creds []struct {
		ID        string
		RevokedAt *time.Time `json:"revoked_at"`
	}
	if err := json.Unmarshal([]byte(run("credentials", "list", "CASE-7", "--json")), &creds); err != nil || len(creds) != 1 || creds[0].RevokedAt == nil {
		t.Fatalf("after close the credential is not revoked: %+v %v", creds, err)
	}
	if out := run("purge", "--dry-run", "--as-of", time.Now().Add(31*24*time.Hour).UTC().Format(time.RFC3339)); !strings.Contains(out, "would purge") || !strings.Contains(out, "CASE-7") {
		t.Fatalf("dry run 31 days ahead printed %q", out)
	}
	if out := run("purge"); !strings.Contains(out, "nothing due") {
		t.Fatalf("purge today printed %q", out)
	}
	// The operator purges now what is due in 31 days.
	if out := run("purge", "--as-of", time.Now().Add(31*24*time.Hour).UTC().Format(time.RFC3339)); !strings.Contains(out, "purged") || !strings.Contains(out, "CASE-7") {
		t.Fatalf("purge 31 days ahead printed %q", out)
	}
	var shown struct {
		PurgedAt *time.Time `json:"purged_at"`
	}
	if err := json.Unmarshal([]byte(run("case", "show", "CASE-7", "--json")), &shown); err != nil || shown.PurgedAt == nil {
		t.Fatalf("case show after the purge: purged_at %v (%v)", shown.PurgedAt, err)
	}
	audit := run("audit", "CASE-7")
	for _, typ := range []string{"case.opened", "credential.issued", "case.closed"} {
		if !strings.Contains(audit, typ) {
			t.Errorf("audit lacks %s:\n%s", typ, audit)
		}
	}
	if strings.Contains(audit, cred.Token) {
		t.Fatal("the audit trail shows a token")
	}

	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		found bool
	}{
		{"a malformed --as-of is a usage error", []string{"purge", "--as-of", "tomorrow"}, true, true},
		{"an unknown case is not found", []string{"case", "show", "NOPE"}, false, false},
		{"an unknown credential is not found", []string{"credentials", "revoke", "nosuchcredential"}, false, false},
		{"a customer credential for a closed case is refused", []string{"credentials", "issue", "CASE-7"}, false, true},
		{"a missing case argument is a usage error", []string{"case", "show"}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := adminOnData(t, dir, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.As(err, new(usageError)) != tc.usage || errors.Is(err, errNotFound) == tc.found {
				t.Fatalf("error %v: usage=%v notfound=%v", err, errors.As(err, new(usageError)), errors.Is(err, errNotFound))
			}
		})
	}
}
