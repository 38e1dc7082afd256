package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// adminToken runs `casedrop admin-token`: it prints the admin token the
// server uses, CASEDROP_ADMIN_TOKEN if set, else <data-dir>/admin-token.
// It is how an operator reads the token out of a distroless container,
// which has no cat: `docker compose exec casedrop casedrop admin-token`.
func adminToken(args []string) error {
	return runAdminToken(args, os.Getenv, os.Stdout)
}

func runAdminToken(args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, rest, err := parseCommand("admin-token", args, getenv, func(s setting) bool { return s.flag == "data-dir" }, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("usage: casedrop admin-token [--data-dir D]")
	}
	token := strings.TrimSpace(getenv(envAdminToken))
	if token == "" {
		data, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin-token"))
		if err != nil {
			return fmt.Errorf("no CASEDROP_ADMIN_TOKEN and no token file (serve writes one on its first start): %w", err)
		}
		token = strings.TrimSpace(string(data))
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}
