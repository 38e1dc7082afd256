package auth

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// NewCredential returns the claims of a new credential of role for
// caseID: a random id (16 lowercase base32 characters) and the SFTP user
// name derived from it, "<case>-<first six of the id>". Issue signs them.
func NewCredential(caseID string, role Role) Claims {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	id := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	return Claims{Case: caseID, CredentialID: id, Username: Username(caseID, id), Role: role}
}
