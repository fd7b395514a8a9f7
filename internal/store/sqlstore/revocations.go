package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Grant revocations (read by every replica to refuse revoked access tokens)
// ---------------------------------------------------------------------------

const selectGrantRevocation = "SELECT user_id, client_id, revoked_at FROM grant_revocations"

func scanGrantRevocation(sc scanner) (store.GrantRevocation, error) {
	var r store.GrantRevocation
	err := sc.Scan(&r.UserID, &r.ClientID, tsCol{&r.RevokedAt})
	return r, err
}

func grantRevocationWhat(userID, clientID string) string {
	return fmt.Sprintf("grant revocation of user %q for client %q", userID, clientID)
}

// PutGrantRevocation records a revocation (zero RevokedAt: now); an
// existing one for the same user and client keeps the later RevokedAt.
func (s *Store) PutGrantRevocation(ctx context.Context, r store.GrantRevocation) error {
	what := grantRevocationWhat(r.UserID, r.ClientID)
	if r.UserID == "" {
		return s.d.errorf("%s: empty user ID", what)
	}
	_, err := exec(ctx, s.write(), what,
		`INSERT INTO grant_revocations (user_id, client_id, revoked_at) VALUES (?, ?, ?)
		 ON CONFLICT (user_id, client_id) DO UPDATE SET revoked_at = excluded.revoked_at
		 WHERE excluded.revoked_at > grant_revocations.revoked_at`,
		r.UserID, r.ClientID, ts(now(r.RevokedAt)))
	return err
}

// ListGrantRevocations returns the revocations with RevokedAt >= since
// (zero: all), by RevokedAt, then user and client.
func (s *Store) ListGrantRevocations(ctx context.Context, since time.Time) ([]store.GrantRevocation, error) {
	const order = " ORDER BY revoked_at, user_id, client_id"
	if since.IsZero() {
		return getAll(ctx, s.read(), scanGrantRevocation, "list grant revocations", selectGrantRevocation+order)
	}
	return getAll(ctx, s.read(), scanGrantRevocation, "list grant revocations",
		selectGrantRevocation+" WHERE revoked_at >= ?"+order, ts(since))
}

// DeleteGrantRevocationsBefore deletes the revocations with RevokedAt <
// before (zero: none) and counts them.
func (s *Store) DeleteGrantRevocationsBefore(ctx context.Context, before time.Time) (int, error) {
	if before.IsZero() {
		return 0, nil
	}
	return count(ctx, s.write(), "delete grant revocations", "DELETE FROM grant_revocations WHERE revoked_at < ?", ts(before))
}
