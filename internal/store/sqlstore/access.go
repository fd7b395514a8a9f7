package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Access state (internal/access: who is cut off, read by every replica)
// ---------------------------------------------------------------------------

const selectAccessEntry = "SELECT kind, id, at, expires_at FROM access_entries"

func scanAccessEntry(sc scanner) (store.AccessEntry, error) {
	var e store.AccessEntry
	err := sc.Scan(&e.Kind, &e.ID, tsCol{&e.At}, tsCol{&e.ExpiresAt})
	return e, err
}

func accessWhat(kind, id string) string { return fmt.Sprintf("access entry %s %q", kind, id) }

func (s *Store) checkAccessKey(e store.AccessEntry) error {
	if e.Kind == "" || e.ID == "" {
		return s.d.errorf("%s: empty kind or ID", accessWhat(e.Kind, e.ID))
	}
	return nil
}

// PutAccessEntry upserts an entry, keeping the later At and ExpiresAt (a
// NULL expiry, never, is the latest).
func (s *Store) PutAccessEntry(ctx context.Context, e store.AccessEntry) error {
	if err := s.checkAccessKey(e); err != nil {
		return err
	}
	_, err := exec(ctx, s.write(), accessWhat(e.Kind, e.ID),
		`INSERT INTO access_entries (kind, id, at, expires_at) VALUES (?, ?, ?, ?)
		 ON CONFLICT (kind, id) DO UPDATE SET
		   at = CASE WHEN excluded.at > access_entries.at THEN excluded.at ELSE access_entries.at END,
		   expires_at = CASE WHEN access_entries.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
		                     WHEN excluded.expires_at > access_entries.expires_at THEN excluded.expires_at
		                     ELSE access_entries.expires_at END`,
		e.Kind, e.ID, ts(now(e.At)), ts(e.ExpiresAt))
	return err
}

// AddAccessEntry inserts an entry unless a live one holds its key
// (ErrAlreadyExists); an expired one is replaced.
func (s *Store) AddAccessEntry(ctx context.Context, e store.AccessEntry, at time.Time) error {
	if err := s.checkAccessKey(e); err != nil {
		return err
	}
	what := accessWhat(e.Kind, e.ID)
	n, err := count(ctx, s.write(), what,
		`INSERT INTO access_entries (kind, id, at, expires_at) VALUES (?, ?, ?, ?)
		 ON CONFLICT (kind, id) DO UPDATE SET at = excluded.at, expires_at = excluded.expires_at
		 WHERE access_entries.expires_at IS NOT NULL AND access_entries.expires_at <= ?`,
		e.Kind, e.ID, ts(now(e.At)), ts(e.ExpiresAt), ts(now(at)))
	if err != nil {
		return err
	}
	if n == 0 {
		return s.d.wrap(what, store.ErrAlreadyExists)
	}
	return nil
}

// DeleteAccessEntry removes an entry (ErrNotFound: none).
func (s *Store) DeleteAccessEntry(ctx context.Context, kind, id string) error {
	return execOne(ctx, s.write(), accessWhat(kind, id), "DELETE FROM access_entries WHERE kind = ? AND id = ?", kind, id)
}

// ListAccessEntries returns the entries of kind live at now (zero: all),
// by ID.
func (s *Store) ListAccessEntries(ctx context.Context, kind string, at time.Time) ([]store.AccessEntry, error) {
	const order = " ORDER BY id"
	if at.IsZero() {
		return getAll(ctx, s.read(), scanAccessEntry, "list access entries", selectAccessEntry+" WHERE kind = ?"+order, kind)
	}
	return getAll(ctx, s.read(), scanAccessEntry, "list access entries",
		selectAccessEntry+" WHERE kind = ? AND (expires_at IS NULL OR expires_at > ?)"+order, kind, ts(norm(at)))
}

// DeleteExpiredAccessEntries removes the entries expired at now.
func (s *Store) DeleteExpiredAccessEntries(ctx context.Context, at time.Time) (int, error) {
	return count(ctx, s.write(), "delete expired access entries",
		"DELETE FROM access_entries WHERE expires_at IS NOT NULL AND expires_at <= ?", ts(now(at)))
}
