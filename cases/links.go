package cases

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/casedrop/casedrop/auth"
	"github.com/casedrop/casedrop/storage"
)

// An upload link opens the case page once: the case system asks for one
// (server to server) and hands its URL to a page it shows the customer,
// such as a frame in its portal; the page itself trades the link's code
// for a new customer credential (RedeemLink), so the credential never
// passes through the portal's own page. Only the code's hash is stored.

// Errors an upload link is refused with. Like a refused credential's, they
// say nothing about the code.
var (
	// ErrLinkNotFound: no link of the case has that code.
	ErrLinkNotFound = errors.New("upload link not found")
	// ErrLinkUsed: the link has already been traded for a credential.
	ErrLinkUsed = errors.New("upload link already used")
	// ErrLinkExpired: the link's time is over, or its case was closed
	// after it was issued.
	ErrLinkExpired = errors.New("upload link expired")
)

// LinkTTL is how long an upload link lives unless asked otherwise;
// MaxLinkTTL the longest it may.
const (
	LinkTTL    = 10 * time.Minute
	MaxLinkTTL = time.Hour
)

// Link is the record of an upload link.
type Link struct {
	// ID names the link in the trail and the log: the start of its code's
	// hash, which tells nothing of the code.
	ID        string     `json:"id"`
	Case      string     `json:"case"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	// CredentialID is the credential the link was traded for.
	CredentialID string `json:"credential_id,omitempty"`
}

// IssuedLink is a link just issued, with its code, which is shown this
// once and never stored.
type IssuedLink struct {
	Link
	Code string
}

// linkKey is where the link whose code hashes to hash is kept.
func linkKey(caseID, hash string) string { return Prefix(caseID) + "links/" + hash + ".json" }

// IssueLink issues an upload link to the open case caseID that lives ttl
// (LinkTTL when 0, at most MaxLinkTTL), and records link.issued by actor.
func (c *Catalog) IssueLink(ctx context.Context, caseID string, ttl time.Duration, by Actor) (IssuedLink, error) {
	if ttl == 0 {
		ttl = LinkTTL
	}
	if ttl < 0 || ttl > MaxLinkTTL {
		return IssuedLink{}, fmt.Errorf("cases: an upload link lives up to %v, not %v", MaxLinkTTL, ttl)
	}
	if _, err := c.RequireOpen(ctx, caseID); err != nil {
		return IssuedLink{}, err
	}
	code, hash := auth.NewLinkCode()
	now := c.now().UTC()
	link := Link{ID: hash[:12], Case: caseID, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := putJSONIfAbsent(ctx, c.store, linkKey(caseID, hash), link); err != nil {
		return IssuedLink{}, err
	}
	return IssuedLink{Link: link, Code: code}, c.audited(ctx, Event{Type: EventLinkIssued, Case: caseID, Actor: by,
		Detail: fmt.Sprintf("upload link %s expires %s", link.ID, link.ExpiresAt.Format(time.RFC3339))})
}

// RedeemLink trades the code of an upload link of case caseID for a new
// customer credential, signed by signer, once: the link is marked used by
// a conditional write before the credential is issued, so of two redeems
// at once one gets ErrLinkUsed. The credential.issued and link.redeemed
// records name the new credential, come in through by's door and address.
// A refusal is ErrLinkNotFound, ErrLinkUsed, ErrLinkExpired or
// ErrCaseClosed, in that order: nothing about the case is told for a code
// that is not its link's.
func (c *Catalog) RedeemLink(ctx context.Context, signer Signer, caseID, code string, by Actor) (IssuedCredential, error) {
	hash := auth.LinkCodeHash(code)
	if hash == "" || ValidCaseID(caseID) != nil {
		return IssuedCredential{}, ErrLinkNotFound
	}
	key := linkKey(caseID, hash)
	var link Link
	info, err := readJSON(ctx, c.store, key, &link)
	if errors.Is(err, ErrNotFound) {
		return IssuedCredential{}, ErrLinkNotFound
	}
	if err != nil {
		return IssuedCredential{}, err
	}
	now := c.now().UTC()
	switch {
	case link.UsedAt != nil:
		return IssuedCredential{}, ErrLinkUsed
	case !now.Before(link.ExpiresAt):
		return IssuedCredential{}, ErrLinkExpired
	}
	cs, err := c.Get(ctx, caseID)
	if err != nil {
		return IssuedCredential{}, err
	}
	if err := MayIssue(cs, auth.RoleCustomer); err != nil {
		return IssuedCredential{}, err
	}
	// Closing a case withdraws its links as it revokes its credentials.
	if cs.RevokedBefore != nil && link.CreatedAt.Before(*cs.RevokedBefore) {
		return IssuedCredential{}, ErrLinkExpired
	}

	claims := auth.NewCredential(caseID, auth.RoleCustomer)
	link.UsedAt, link.CredentialID = &now, claims.CredentialID
	if err := putJSONIfMatch(ctx, c.store, key, info.ETag, link); err != nil {
		if errors.Is(err, storage.ErrChanged) {
			return IssuedCredential{}, ErrLinkUsed
		}
		return IssuedCredential{}, err
	}
	holder := ActorOf(claims, by.Door, by.Remote)
	issued, err := c.issue(ctx, signer, CredentialRequest{Case: caseID, Role: auth.RoleCustomer}, claims, holder, "from upload link "+link.ID)
	if err != nil && !errors.Is(err, ErrNotAudited) {
		return IssuedCredential{}, err
	}
	return issued, errors.Join(err, c.audited(ctx, Event{Type: EventLinkRedeemed, Case: caseID, Actor: holder,
		Detail: fmt.Sprintf("upload link %s for credential %s", link.ID, issued.ID)}))
}
