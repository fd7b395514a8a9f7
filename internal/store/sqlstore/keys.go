package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Signing keys
// ---------------------------------------------------------------------------

var keyCols = []string{"id", "algorithm", "private", "created_at", "active_from", "retired_at", "expires_at"}

var (
	selectKey = selectSQL("signing_keys", keyCols)
	insertKey = insertSQL("signing_keys", keyCols)
	updateKey = updateSQL("signing_keys", keyCols)
)

func keyArgs(k store.SigningKey) []any {
	return []any{k.ID, k.Algorithm, k.Private, ts(k.CreatedAt), ts(k.ActiveFrom), ts(k.RetiredAt), ts(k.ExpiresAt)}
}

func scanKey(sc scanner) (store.SigningKey, error) {
	var k store.SigningKey
	err := sc.Scan(&k.ID, &k.Algorithm, &k.Private, tsCol{&k.CreatedAt}, tsCol{&k.ActiveFrom}, tsCol{&k.RetiredAt}, tsCol{&k.ExpiresAt})
	return k, err
}

func keyWhat(id string) string { return fmt.Sprintf("signing key %q", id) }

// CreateSigningKey stores a new signing key.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	_, err := exec(ctx, s.write(), keyWhat(k.ID), insertKey, keyArgs(k)...)
	return err
}

// ListSigningKeys returns every signing key, by ActiveFrom (zero first),
// then ID.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	return getAll(ctx, s.read(), scanKey, "list signing keys", selectKey+" ORDER BY active_from NULLS FIRST, id")
}

// UpdateSigningKey changes a signing key atomically.
func (s *Store) UpdateSigningKey(ctx context.Context, id string, update func(store.SigningKey) (store.SigningKey, error)) error {
	return s.tx(ctx, func(tx db) error {
		old, err := getOne(ctx, tx, scanKey, keyWhat(id), selectKey+" WHERE id = ?"+s.d.LockRow, id)
		if err != nil {
			return err
		}
		k, err := update(old)
		if err != nil {
			return err
		}
		if k.ID != id {
			return s.d.errorf("update of signing key %q changed its ID to %q", id, k.ID)
		}
		_, err = exec(ctx, tx, keyWhat(id), updateKey, append(keyArgs(k)[1:], id)...)
		return err
	})
}

// DeleteSigningKey deletes a signing key.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	return execOne(ctx, s.write(), keyWhat(id), "DELETE FROM signing_keys WHERE id = ?", id)
}
