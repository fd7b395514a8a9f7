package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Sealed secrets (keys generated once and kept, sealed by the vault)
// ---------------------------------------------------------------------------

const selectSealedSecret = "SELECT name, key_id, value, created_at, updated_at FROM sealed_secrets"

func scanSealedSecret(sc scanner) (store.SealedSecret, error) {
	var x store.SealedSecret
	err := sc.Scan(&x.Name, &x.KeyID, &x.Value, tsCol{&x.CreatedAt}, tsCol{&x.UpdatedAt})
	return x, err
}

func sealedSecretWhat(name string) string { return fmt.Sprintf("sealed secret %q", name) }

// CreateSealedSecret stores a new sealed secret; ErrAlreadyExists when the
// name is taken.
func (s *Store) CreateSealedSecret(ctx context.Context, x store.SealedSecret) error {
	what := sealedSecretWhat(x.Name)
	if x.Name == "" || len(x.Value) == 0 {
		return s.d.errorf("%s: empty name or value", what)
	}
	created := now(x.CreatedAt)
	updated := x.UpdatedAt
	if updated.IsZero() {
		updated = created
	}
	_, err := exec(ctx, s.write(), what,
		"INSERT INTO sealed_secrets (name, key_id, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
		x.Name, x.KeyID, x.Value, ts(created), ts(updated))
	return err
}

// GetSealedSecret reads a sealed secret.
func (s *Store) GetSealedSecret(ctx context.Context, name string) (store.SealedSecret, error) {
	return getOne(ctx, s.read(), scanSealedSecret, sealedSecretWhat(name), selectSealedSecret+" WHERE name = ?", name)
}

// UpdateSealedSecret changes a sealed secret atomically (UpdatedAt: now
// unless the update sets it).
func (s *Store) UpdateSealedSecret(ctx context.Context, name string, update func(store.SealedSecret) (store.SealedSecret, error)) error {
	what := sealedSecretWhat(name)
	return s.tx(ctx, func(tx db) error {
		old, err := getOne(ctx, tx, scanSealedSecret, what, selectSealedSecret+" WHERE name = ?"+s.d.LockRow, name)
		if err != nil {
			return err
		}
		x, err := update(old)
		if err != nil {
			return err
		}
		if x.Name != name {
			return s.d.errorf("update of %s changed its name to %q", what, x.Name)
		}
		if len(x.Value) == 0 {
			return s.d.errorf("update of %s: empty value", what)
		}
		if x.UpdatedAt.Equal(old.UpdatedAt) {
			x.UpdatedAt = now(time.Time{})
		}
		_, err = exec(ctx, tx, what, "UPDATE sealed_secrets SET key_id = ?, value = ?, updated_at = ? WHERE name = ?",
			x.KeyID, x.Value, ts(x.UpdatedAt), name)
		return err
	})
}
