package auth

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadAdminToken(t *testing.T) {
	t.Run("a missing token is generated and written with mode 0600 in a new 0700 directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data", "admin-token")
		token, created, err := LoadAdminToken("", path)
		if err != nil || !created {
			t.Fatalf("LoadAdminToken: created=%v, err=%v", created, err)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(token); err != nil || len(raw) != 32 {
			t.Fatalf("token is not 32 random bytes in base64url (%d bytes, %v)", len(raw), err)
		}
		assertMode(t, path, 0o600)
		assertMode(t, filepath.Dir(path), 0o700|os.ModeDir)
		if data, err := os.ReadFile(path); err != nil || string(data) != token+"\n" {
			t.Fatalf("file holds something other than the token (%v)", err)
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
			t.Fatalf("directory holds %d entries, want only the token file", len(entries))
		}
	})

	t.Run("a second load returns the same token and creates nothing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "admin-token")
		first, _, err := LoadAdminToken("", path)
		if err != nil {
			t.Fatal(err)
		}
		second, created, err := LoadAdminToken("", path)
		if err != nil || created || second != first {
			t.Fatalf("second load: same=%v, created=%v, err=%v", second == first, created, err)
		}
	})

	t.Run("the environment value overrides the file and writes nothing", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "admin-token")
		if err := os.WriteFile(path, []byte(strings.Repeat("f", 40)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		fromEnv := strings.Repeat("e", 32)
		token, created, err := LoadAdminToken(fromEnv, path)
		if err != nil || created || token != fromEnv {
			t.Fatalf("got %q, created=%v, err=%v", token, created, err)
		}
		if _, _, err := LoadAdminToken(fromEnv, filepath.Join(dir, "absent")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "absent")); !os.IsNotExist(err) {
			t.Fatal("an environment token still wrote a file")
		}
	})

	t.Run("the file's token is read without surrounding whitespace", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "admin-token")
		if err := os.WriteFile(path, []byte("  s3cret-token-s3cret-token-s3cret-token \n\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		token, created, err := LoadAdminToken("", path)
		if err != nil || created || token != "s3cret-token-s3cret-token-s3cret-token" {
			t.Fatalf("got %q, created=%v, err=%v", token, created, err)
		}
	})

	t.Run("a token shorter than 32 characters or with inner whitespace refuses to load, without quoting it", func(t *testing.T) {
		dir := t.TempDir()
		for _, bad := range []string{"Z", strings.Repeat("Z", MinAdminTokenLen-1), strings.Repeat("Z", 20) + " " + strings.Repeat("Z", 20), strings.Repeat("Z", 20) + "\n" + strings.Repeat("Z", 20)} {
			if _, _, err := LoadAdminToken(bad, filepath.Join(dir, "absent")); err == nil || strings.Contains(err.Error(), bad) {
				t.Errorf("environment token of %d characters: err = %v", len(bad), err)
			}
			path := filepath.Join(dir, "admin-token")
			if err := os.WriteFile(path, []byte(bad+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := LoadAdminToken("", path); err == nil || strings.Contains(err.Error(), bad) {
				t.Errorf("token file of %d characters: err = %v", len(bad), err)
			}
		}
		if _, _, err := LoadAdminToken(strings.Repeat("s", MinAdminTokenLen), filepath.Join(dir, "absent")); err != nil {
			t.Errorf("a token of exactly %d characters: %v", MinAdminTokenLen, err)
		}
	})

	t.Run("an empty token file is an error, not replaced", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "admin-token")
		if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadAdminToken("", path); err == nil {
			t.Fatal("an empty token file was accepted")
		}
	})

	t.Run("instances starting at once agree on one token", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "admin-token")
		const n = 8
		tokens, created, errs := make([]string, n), make([]bool, n), make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { tokens[i], created[i], errs[i] = LoadAdminToken("", path) })
		}
		wg.Wait()
		creators := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("instance %d: %v", i, errs[i])
			}
			if tokens[i] != tokens[0] {
				t.Fatal("instances got different tokens")
			}
			if created[i] {
				creators++
			}
		}
		if creators != 1 {
			t.Fatalf("%d instances report creating the token, want 1", creators)
		}
	})
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode(); got != want {
		t.Fatalf("%s has mode %v, want %v", path, got, want)
	}
}

func TestAdminTokenMatches(t *testing.T) {
	tests := []struct {
		name                string
		configured, present string
		want                bool
	}{
		{"the configured token matches itself", "s3cret", "s3cret", true},
		{"another token does not match", "s3cret", "s3creT", false},
		{"a prefix of the token does not match", "s3cret", "s3cre", false},
		{"the token with more after it does not match", "s3cret", "s3cret2", false},
		{"an empty presented token does not match", "s3cret", "", false},
		{"an empty configured token never matches an empty one", "", "", false},
		{"an empty configured token never matches anything", "", "s3cret", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AdminTokenMatches(tt.configured, tt.present); got != tt.want {
				t.Fatalf("AdminTokenMatches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseRole(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Role
		wantErr bool
	}{
		{name: "no role means customer", in: "", want: RoleCustomer},
		{name: "customer is customer", in: "customer", want: RoleCustomer},
		{name: "staff is staff", in: "staff", want: RoleStaff},
		{name: "an unknown role is an error", in: "admin", wantErr: true},
		{name: "roles are case sensitive", in: "Staff", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRole(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseRole(%q) = %q, %v", tt.in, got, err)
			}
		})
	}
}
