package auth

import (
	"context"
	"strings"
	"testing"
)

// FuzzVerify: no string makes Verify panic, and the only one it accepts is
// the token the test issued, byte for byte.
func FuzzVerify(f *testing.F) {
	env := newTestEnv(f)
	good := env.issue(f, Claims{Case: "case-1", CredentialID: "cred-1", Username: "u"}, 0)
	p := strings.Split(good, ".")
	for _, seed := range []string{
		good, good + "\n", " " + good, good[:len(good)-1] + "B", good[:len(good)-1] + "A",
		p[0] + "." + p[1] + ".", p[0] + ".." + p[2], "a.b.c", "", "...", good + "." + p[2],
		strings.ReplaceAll(good, "-", "+"), good[:100] + "\r\n" + good[100:],
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := env.verifier.Verify(context.Background(), token)
		if err == nil && token != good {
			t.Fatalf("Verify accepted %q, which is not the issued token", token)
		}
		if err == nil && c.Case != "case-1" {
			t.Fatalf("the issued token verifies as %+v", c)
		}
		if err != nil && token == good {
			t.Fatalf("the issued token is refused: %v", err)
		}
	})
}
