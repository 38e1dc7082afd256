package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// No Docker engine runs here: Debian's docker-compose (v1, make test-deps)
// validates the compose file without one, and the image's files are
// checked for what running it needs.

const (
	dockerfilePath   = "../../Dockerfile"
	dockerignorePath = "../../.dockerignore"
)

func TestDockerComposeAcceptsTheComposeFile(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatalf("docker-compose is needed: run `make test-deps` (%v)", err)
	}
	for _, profile := range [][]string{nil, {"--profile", "cluster"}} {
		args := append([]string{"-f", composePath}, profile...)
		cmd := exec.Command(bin, append(args, "config", "--quiet")...)
		// The compose file's ${...} take their defaults, not the
		// test runner's settings.
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker-compose %s config: %v\n%s", strings.Join(profile, " "), err, out)
		}
	}
}

func TestComposePinsItsImagesAndChecksHealthWithoutCurl(t *testing.T) {
	for name, s := range readCompose(t).Services {
		if s.Build != nil {
			if !isCasedropHealthcheck(s.Healthcheck.Test) {
				t.Errorf("service %s: healthcheck %v, want casedrop healthcheck (the image has no curl)", name, s.Healthcheck.Test)
			}
			continue
		}
		repo, tag, ok := strings.Cut(s.Image, ":")
		if !ok || tag == "" || tag == "latest" || strings.Contains(tag, "/") {
			t.Errorf("service %s: image %q, want one pinned to a version tag", name, s.Image)
		}
		if strings.HasSuffix(repo, "minio/minio") && !slices.Equal(s.Healthcheck.Test, []string{"CMD", "mc", "ready", "local"}) {
			t.Errorf("service %s: healthcheck %v, want mc ready local (MinIO's images have no curl)", name, s.Healthcheck.Test)
		}
	}
}

func isCasedropHealthcheck(test []string) bool {
	return len(test) == 3 && test[0] == "CMD" && filepath.Base(test[1]) == "casedrop" && test[2] == "healthcheck"
}

// finalStage is the instructions of the Dockerfile's last stage, each
// with its continuation lines joined.
func finalStage(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stage []string
	var cont string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cont += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line, cont = cont+line, ""
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			stage = nil
		}
		stage = append(stage, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stage
}

func TestImageRunsAsNonRootWithAHealthcheckOfItsOwn(t *testing.T) {
	var user, health string
	for _, in := range finalStage(t) {
		word, rest, _ := strings.Cut(in, " ")
		switch strings.ToUpper(word) {
		case "USER":
			user = strings.TrimSpace(rest)
		case "HEALTHCHECK":
			health = rest
		}
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
		t.Errorf("the final stage runs as %q, want a user other than root", user)
	}
	if !strings.Contains(health, `"healthcheck"]`) || !strings.Contains(health, `casedrop"`) {
		t.Errorf("the final stage's HEALTHCHECK is %q, want casedrop healthcheck", health)
	}
}

func TestDockerignoreKeepsDataAndRepositoryOutOfTheBuild(t *testing.T) {
	data, err := os.ReadFile(dockerignorePath)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	ignored := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		ignored[strings.TrimSuffix(strings.TrimSpace(l), "/")] = true
	}
	for _, p := range []string{"casedrop-data", ".git", "node_modules"} {
		if !ignored[p] {
			t.Errorf(".dockerignore does not exclude %s", p)
		}
	}
}
