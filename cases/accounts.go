package cases

import (
	"context"

	"github.com/casedrop/casedrop/auth"
)

// Accounts returns the records of caseID's credentials whose id begins
// with idPrefix, as a login by user name needs them (auth.AccountLookup):
// a user name carries its case and the first characters of its
// credential's id, so one short listing finds them, without an index.
// Anything that is not a case id or the start of a credential id finds
// nothing, without a look at the store.
func (c *Catalog) Accounts(ctx context.Context, caseID, idPrefix string) ([]auth.Account, error) {
	if ValidCaseID(caseID) != nil || ValidCaseID(idPrefix) != nil {
		return nil, nil
	}
	recs, err := c.credentialRecords(ctx, Prefix(caseID)+"credentials/"+idPrefix)
	if err != nil {
		return nil, err
	}
	var accounts []auth.Account
	for _, rec := range recs {
		role, err := auth.ParseRole(string(rec.Role))
		if err != nil || rec.Case != caseID {
			continue // not a record this code wrote
		}
		accounts = append(accounts, auth.Account{
			Claims: auth.Claims{
				Case: rec.Case, CredentialID: rec.ID, Username: rec.Username, Role: role,
				IssuedAt: rec.IssuedAt, ExpiresAt: rec.ExpiresAt,
			},
			PasswordHash: rec.PasswordHash,
			SSHKey:       rec.SSHPublicKey,
		})
	}
	return accounts, nil
}
