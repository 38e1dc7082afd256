package testserver

import (
	"context"
	"os/exec"
)

// CLI returns a command that runs the binary the server runs, with args,
// in the test's environment without CASEDROP_* settings: the caller adds
// its own to cmd.Env.
func (s *Server) CLI(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = inheritedEnv()
	return cmd
}
