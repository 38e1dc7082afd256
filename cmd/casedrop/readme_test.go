package main

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// readmeRow is one setting as the README's configuration table gives it.
type readmeRow struct{ flag, env, def string }

// readmeSettings reads the table under "## Configuration" in the README,
// one row a setting: a row naming two ("`--tls-cert`, `--tls-key`") gives
// both, with the same default.
func readmeSettings(t *testing.T) []readmeRow {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []readmeRow
	section, inTable := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			section = line == "## Configuration"
		case !section:
		case strings.HasPrefix(line, "| flag | environment | default |"):
			inTable = true
		case inTable && !strings.HasPrefix(line, "|"):
			return rows
		case inTable && !strings.HasPrefix(line, "|---"):
			cells := strings.Split(line, "|")
			if len(cells) != 6 {
				t.Fatalf("README configuration row %q: want 4 cells", line)
			}
			flags, envs, def := names(cells[1]), names(cells[2]), plain(cells[3])
			for i, env := range envs {
				r := readmeRow{env: env, def: def}
				if len(flags) > 0 {
					if len(flags) != len(envs) {
						t.Fatalf("README configuration row %q: %d flags, %d variables", line, len(flags), len(envs))
					}
					r.flag = flags[i]
				}
				rows = append(rows, r)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatal("README has no configuration table under ## Configuration")
	return nil
}

// names returns the `--flags` or `VARIABLES` of a cell, without "--".
func names(cell string) []string {
	var out []string
	for _, n := range strings.Split(cell, ",") {
		if n = strings.TrimPrefix(plain(n), "--"); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// plain is a cell's text without code marks and without the parentheses
// that set off words from values ("(local disk)").
func plain(cell string) string {
	s := strings.TrimSpace(strings.ReplaceAll(cell, "`", ""))
	if strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")") {
		s = s[1 : len(s)-1]
	}
	return s
}

// The README's configuration table is written by hand (its cells say more
// than the flags' help), so this test holds it to the flags: every
// setting is in it with its variable and default, and it has nothing else.
func TestTheReadmeTableListsEverySettingAsTheFlagsDo(t *testing.T) {
	want := map[string]setting{}
	for _, s := range append((&config{}).settings(), envOnly...) {
		want[s.env] = s
	}
	seen := map[string]bool{}
	for _, r := range readmeSettings(t) {
		s, ok := want[r.env]
		switch {
		case !ok:
			t.Errorf("README lists %s (--%s), which is no setting", r.env, r.flag)
			continue
		case seen[r.env]:
			t.Errorf("README lists %s twice", r.env)
		case r.flag != s.flag:
			t.Errorf("README gives %s the flag %q; it is %q", r.env, r.flag, s.flag)
		case r.def != s.defaultText():
			t.Errorf("README gives %s the default %q; it is %q", r.env, r.def, s.defaultText())
		}
		seen[r.env] = true
	}
	for env, s := range want {
		if !seen[env] {
			t.Errorf("README does not list %s (--%s)", env, s.flag)
		}
	}
}

func TestHelpPrintsNoEmptyDefault(t *testing.T) {
	var b strings.Builder
	(&config{}).usage(&b)
	out := b.String()
	for _, bad := range []string{`(default "")`, "(default )"} {
		if strings.Contains(out, bad) {
			t.Errorf("help prints %s:\n%s", bad, out)
		}
	}
	for _, s := range append((&config{}).settings(), envOnly...) {
		if !strings.Contains(out, s.env) {
			t.Errorf("help does not list %s", s.env)
		}
	}
}

// Every CASEDROP_* variable the program reads is somewhere in the README's
// configuration section: the settings through the table above, the
// command-line clients' and build-tagged ones through the text under it.
func TestTheReadmeConfigurationNamesEveryEnvironmentVariableTheCodeReads(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	if i := strings.Index(section, "\n## Configuration\n"); i >= 0 {
		section = section[i+1:]
		if j := strings.Index(section[3:], "\n## "); j >= 0 {
			section = section[:j+3]
		}
	}
	read := envReadBySources(t, "../..")
	if len(read) < 5 {
		t.Fatalf("found only %v in the sources: the scan is broken", read)
	}
	for _, name := range read {
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("the code reads %s; README's Configuration does not name it", name)
		}
	}
}

// envReadBySources is every "CASEDROP_..." string in the non-test Go
// files under root, but for internal/, the tests' helpers, which set them.
func envReadBySources(t *testing.T, root string) []string {
	t.Helper()
	name := regexp.MustCompile(`"(CASEDROP_[A-Z0-9_]+)"`)
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "internal" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range name.FindAllStringSubmatch(string(src), -1) {
			seen[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
