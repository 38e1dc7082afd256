package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// adminTokenBytes is the entropy of a generated admin token.
const adminTokenBytes = 32

// MinAdminTokenLen is the shortest admin token accepted: the admin token
// opens every case, and the limiter only slows guessing down.
const MinAdminTokenLen = 32

// CheckAdminToken says what is wrong with a configured admin token: too
// short, or holding whitespace or control characters (a token has one
// spelling; a line break inside is a paste gone wrong). It never quotes
// the token.
func CheckAdminToken(token string) error {
	if n := len(token); n < MinAdminTokenLen {
		return fmt.Errorf("auth: the admin token has %d characters; at least %d are needed (e.g. openssl rand -base64 32)", n, MinAdminTokenLen)
	}
	for _, r := range token {
		if r <= ' ' || r == 0x7f {
			return errors.New("auth: the admin token holds whitespace or control characters")
		}
	}
	return nil
}

// LoadAdminToken returns the admin token: envValue if it is not empty, else
// the content of the file at path, else a new random token that it writes
// to path (mode 0600, parent directory created 0700) and reports with
// created. A token shorter than MinAdminTokenLen is refused (see
// CheckAdminToken). Neither the token nor any part of it appears in its errors.
func LoadAdminToken(envValue, path string) (token string, created bool, err error) {
	if t := strings.TrimSpace(envValue); t != "" {
		if err := CheckAdminToken(t); err != nil {
			return "", false, fmt.Errorf("CASEDROP_ADMIN_TOKEN: %w", err)
		}
		return t, false, nil
	}
	if path == "" {
		return "", false, errors.New("auth: no admin token given and no file to keep one")
	}
	token, err = readAdminToken(path)
	if err == nil {
		return token, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	token, err = newAdminToken()
	if err != nil {
		return "", false, err
	}
	created, err = writeNewFile(path, []byte(token+"\n"))
	if err != nil {
		return "", false, err
	}
	if !created {
		// Another process created the file first; use its token.
		token, err = readAdminToken(path)
		return token, false, err
	}
	return token, true, nil
}

// AdminTokenMatches reports whether presented is the configured admin token,
// in time that does not depend on where they differ or on their lengths. An
// empty configured token matches nothing.
func AdminTokenMatches(configured, presented string) bool {
	if configured == "" {
		return false
	}
	// Comparing digests keeps the lengths out of the timing too.
	a, b := sha256.Sum256([]byte(configured)), sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func readAdminToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("auth: reading admin token file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("auth: admin token file %s is empty", path)
	}
	if err := CheckAdminToken(token); err != nil {
		return "", fmt.Errorf("admin token file %s: %w", path, err)
	}
	return token, nil
}

func newAdminToken() (string, error) {
	b := make([]byte, adminTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: generating admin token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// writeNewFile writes data to path, mode 0600, unless path already exists
// (then it reports false). Readers never see the file half written: the data
// goes to a temporary file that is then hard-linked into place, which fails
// rather than replaces when another process got there first.
func writeNewFile(path string, data []byte) (created bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("auth: creating admin token directory: %w", err)
	}
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return false, fmt.Errorf("auth: writing admin token file: %w", err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("auth: writing admin token file: %w", err)
	}
	return true, nil
}

// writeTemp writes data to a new file in dir, which os.CreateTemp makes
// with mode 0600, and returns its name.
func writeTemp(dir string, data []byte) (name string, err error) {
	f, err := os.CreateTemp(dir, ".admin-token-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
