package sqlstore

import (
	"context"
	"fmt"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Consents
// ---------------------------------------------------------------------------

const selectConsent = "SELECT user_id, client_id, scopes, resources, created_at, updated_at FROM consents"

func scanConsent(sc scanner) (store.Consent, error) {
	var c store.Consent
	err := sc.Scan(&c.UserID, &c.ClientID, listCol{&c.Scopes}, listCol{&c.Resources}, tsCol{&c.CreatedAt}, tsCol{&c.UpdatedAt})
	return c, err
}

func consentWhat(userID, clientID string) string {
	return fmt.Sprintf("consent of user %q for client %q", userID, clientID)
}

// GetConsent returns what a user allowed a client.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (store.Consent, error) {
	return getOne(ctx, s.read(), scanConsent, consentWhat(userID, clientID),
		selectConsent+" WHERE user_id = ? AND client_id = ?", userID, clientID)
}

// PutConsent creates or replaces a consent; a replaced one keeps its
// CreatedAt.
func (s *Store) PutConsent(ctx context.Context, c store.Consent) error {
	created, updated, replaced := putTimes(c.CreatedAt, c.UpdatedAt)
	_, err := exec(ctx, s.write(), consentWhat(c.UserID, c.ClientID),
		`INSERT INTO consents (user_id, client_id, scopes, resources, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		 ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, resources = excluded.resources, updated_at = ?`,
		c.UserID, c.ClientID, list(c.Scopes), list(c.Resources), ts(created), ts(updated), ts(replaced))
	return err
}

// DeleteConsent forgets a consent.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return execOne(ctx, s.write(), consentWhat(userID, clientID),
		"DELETE FROM consents WHERE user_id = ? AND client_id = ?", userID, clientID)
}

// ListConsents returns a user's consents, by client ID.
func (s *Store) ListConsents(ctx context.Context, userID string) ([]store.Consent, error) {
	return getAll(ctx, s.read(), scanConsent, "list consents", selectConsent+" WHERE user_id = ? ORDER BY client_id", userID)
}
