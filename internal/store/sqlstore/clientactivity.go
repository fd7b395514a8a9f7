package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Client activity (expiry of unused self-registered clients)
// ---------------------------------------------------------------------------

var _ store.ClientActivity = (*Store)(nil)

// TouchClient records that client id completed a grant at at (zero: now),
// keeping the later of the recorded and the new time.
func (s *Store) TouchClient(ctx context.Context, id string, at time.Time) error {
	what := fmt.Sprintf("activity of client %q", id)
	if id == "" {
		return s.d.errorf("%s: empty client ID", what)
	}
	_, err := exec(ctx, s.write(), what,
		`INSERT INTO client_activity (client_id, last_used_at) VALUES (?, ?)
		 ON CONFLICT (client_id) DO UPDATE SET last_used_at = excluded.last_used_at
		 WHERE excluded.last_used_at > client_activity.last_used_at`,
		id, ts(now(at)))
	return err
}

// DeleteStaleClients deletes dynamic clients never used and created before
// unusedBefore, and those last used before idleBefore (zero: that rule is
// off), then the activity rows left without a client.
func (s *Store) DeleteStaleClients(ctx context.Context, unusedBefore, idleBefore time.Time) (int, error) {
	const what = "delete stale clients"
	n := 0
	if !unusedBefore.IsZero() {
		res, err := exec(ctx, s.write(), what,
			`DELETE FROM clients WHERE kind = '`+store.ClientDynamic+`' AND created_at < ?
			 AND id NOT IN (SELECT client_id FROM client_activity)`, ts(unusedBefore))
		if err != nil {
			return n, err
		}
		n += affected(res)
	}
	if !idleBefore.IsZero() {
		res, err := exec(ctx, s.write(), what,
			`DELETE FROM clients WHERE kind = '`+store.ClientDynamic+`'
			 AND id IN (SELECT client_id FROM client_activity WHERE last_used_at < ?)`, ts(idleBefore))
		if err != nil {
			return n, err
		}
		n += affected(res)
	}
	_, err := exec(ctx, s.write(), what, "DELETE FROM client_activity WHERE client_id NOT IN (SELECT id FROM clients)")
	return n, err
}

// affected counts the rows a statement changed (0 if the driver cannot).
func affected(res interface{ RowsAffected() (int64, error) }) int {
	n, err := res.RowsAffected()
	if err != nil {
		return 0
	}
	return int(n)
}
