package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helpRequests is every way to ask for help, for every command and verb
// in commands, the one list main dispatches through.
func helpRequests() [][]string {
	reqs := [][]string{{"help"}, {"-h"}, {"--help"}}
	for _, c := range commands {
		reqs = append(reqs, []string{c.name, "-h"}, []string{c.name, "--help"}, []string{"help", c.name})
		if len(c.verbs) > 0 {
			reqs = append(reqs, []string{c.name, "help"})
		}
		for _, v := range c.verbs {
			reqs = append(reqs, []string{c.name, v.name, "-h"}, []string{c.name, v.name, "--help"}, []string{"help", c.name, v.name})
		}
	}
	return reqs
}

func buildCasedrop(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "casedrop")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// refusedAddr is a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestEveryCommandAndVerbAnswersHelpWithoutTouchingTheData(t *testing.T) {
	bin := buildCasedrop(t)
	places := map[string][]string{
		"a data dir that does not exist": {"CASEDROP_DATA_DIR=absent"},
		"an S3 endpoint that refuses": {"CASEDROP_DATA_DIR=absent", "CASEDROP_S3_ENDPOINT=" + refusedAddr(t),
			"CASEDROP_S3_ACCESS_KEY=k", "CASEDROP_S3_SECRET_KEY=s", "CASEDROP_S3_INSECURE=true"},
	}
	for place, env := range places {
		for _, args := range helpRequests() {
			t.Run(place+"/"+strings.Join(args, " "), func(t *testing.T) {
				dir := t.TempDir()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, args...)
				cmd.Dir, cmd.Env = dir, append([]string{"PATH=" + os.Getenv("PATH")}, env...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				if ctx.Err() != nil {
					t.Fatalf("still running after 10s: it is waiting for the store")
				}
				if err != nil {
					t.Fatalf("exit: %v, want 0\nstdout: %s\nstderr: %s", err, &stdout, &stderr)
				}
				if !strings.Contains(stdout.String(), "usage") {
					t.Errorf("no usage on stdout:\n%s", &stdout)
				}
				if name := strings.Join(withoutHelp(args), " "); !strings.Contains(stdout.String(), name) {
					t.Errorf("help does not name %q:\n%s", name, &stdout)
				}
				if entries, _ := os.ReadDir(dir); len(entries) > 0 {
					t.Errorf("help made %s in the working directory", entries[0].Name())
				}
			})
		}
	}
}

// withoutHelp is args without the words that ask for help.
func withoutHelp(args []string) []string {
	var out []string
	for _, a := range args {
		if !isHelp(a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return []string{"casedrop"}
	}
	return out
}

func TestAdminCommandsSayTheyActOnTheDataWithoutServer(t *testing.T) {
	var out bytes.Buffer
	err := runCommand([]string{"case", "list", "-h"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("case list -h: %v, want help", err)
	}
	if strings.Contains(out.String(), "(default https://localhost:8443)") || !strings.Contains(out.String(), "act on the data directly") {
		t.Errorf("--server's help claims a default the command does not use:\n%s", &out)
	}
	for _, bad := range []string{`(default "")`, ") (default"} {
		if strings.Contains(out.String(), bad) {
			t.Errorf("help doubles or empties a default (%s):\n%s", bad, &out)
		}
	}
}

func TestAnUnknownVerbIsAUsageErrorBeforeAnyStoreIsOpened(t *testing.T) {
	for _, c := range commands {
		if len(c.verbs) == 0 {
			continue
		}
		dir := filepath.Join(t.TempDir(), "absent")
		t.Setenv("CASEDROP_DATA_DIR", dir)
		err := runCommand([]string{c.name, "frobnicate"}, io.Discard)
		if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), c.verbs[0].name) {
			t.Errorf("%s frobnicate: %v, want a usage error naming the verbs", c.name, err)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s frobnicate made %s", c.name, dir)
		}
	}
}
