package testserver

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// TokenKID is the kid in a JWT's header: which signing key signed it.
func TokenKID(t testing.TB, token string) string {
	t.Helper()
	header, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}
