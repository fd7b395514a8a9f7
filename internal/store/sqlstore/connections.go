package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Connections (the vault's sealed downstream credentials)
// ---------------------------------------------------------------------------

const (
	selectConnection = "SELECT user_id, tenant, name, kind, secret, key_id, scopes, expires_at, created_at, updated_at FROM connections"
	connectionKey    = " WHERE user_id = ? AND tenant = ? AND name = ?"
)

func scanConnection(sc scanner) (store.Connection, error) {
	var c store.Connection
	err := sc.Scan(&c.UserID, &c.Tenant, &c.Name, &c.Kind, &c.Secret, &c.KeyID, listCol{&c.Scopes},
		tsCol{&c.ExpiresAt}, tsCol{&c.CreatedAt}, tsCol{&c.UpdatedAt})
	return c, err
}

func connectionWhat(userID, tenant, name string) string {
	return fmt.Sprintf("connection %q of user %q in tenant %q", name, userID, tenant)
}

// PutConnection creates or replaces a connection; a replaced one keeps its
// CreatedAt.
func (s *Store) PutConnection(ctx context.Context, c store.Connection) error {
	what := connectionWhat(c.UserID, c.Tenant, c.Name)
	if c.Name == "" {
		return s.d.errorf("%s: empty name", what)
	}
	created, updated, replaced := putTimes(c.CreatedAt, c.UpdatedAt)
	_, err := exec(ctx, s.write(), what,
		`INSERT INTO connections (user_id, tenant, name, kind, secret, key_id, scopes, expires_at, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (user_id, tenant, name) DO UPDATE SET kind = excluded.kind, secret = excluded.secret,
		 key_id = excluded.key_id, scopes = excluded.scopes, expires_at = excluded.expires_at, updated_at = ?`,
		c.UserID, c.Tenant, c.Name, c.Kind, secret(c.Secret), c.KeyID, list(c.Scopes), ts(c.ExpiresAt),
		ts(created), ts(updated), ts(replaced))
	return err
}

// GetConnection returns one connection.
func (s *Store) GetConnection(ctx context.Context, userID, tenant, name string) (store.Connection, error) {
	return getOne(ctx, s.read(), scanConnection, connectionWhat(userID, tenant, name),
		selectConnection+connectionKey, userID, tenant, name)
}

// UpdateConnection changes a connection atomically: the row stays locked
// from the read to the commit (SELECT … FOR UPDATE on PostgreSQL, the
// database's write lock on SQLite), so concurrent updates of one
// connection, from any replica, run one after the other.
func (s *Store) UpdateConnection(ctx context.Context, userID, tenant, name string, update func(store.Connection) (store.Connection, error)) error {
	what := connectionWhat(userID, tenant, name)
	return s.tx(ctx, func(tx db) error {
		old, err := getOne(ctx, tx, scanConnection, what, selectConnection+connectionKey+s.d.LockRow, userID, tenant, name)
		if err != nil {
			return err
		}
		c, err := update(old)
		if err != nil {
			return err
		}
		if c.UserID != userID || c.Tenant != tenant || c.Name != name {
			return s.d.errorf("update of %s changed its key to (%q, %q, %q)", what, c.UserID, c.Tenant, c.Name)
		}
		touch(&c.UpdatedAt, old.UpdatedAt)
		_, err = exec(ctx, tx, what,
			"UPDATE connections SET (kind, secret, key_id, scopes, expires_at, created_at, updated_at) = (?, ?, ?, ?, ?, ?, ?)"+connectionKey,
			c.Kind, secret(c.Secret), c.KeyID, list(c.Scopes), ts(c.ExpiresAt), ts(c.CreatedAt), ts(c.UpdatedAt),
			userID, tenant, name)
		return err
	})
}

// DeleteConnection deletes one connection.
func (s *Store) DeleteConnection(ctx context.Context, userID, tenant, name string) error {
	return execOne(ctx, s.write(), connectionWhat(userID, tenant, name), "DELETE FROM connections"+connectionKey, userID, tenant, name)
}

// ListConnections returns a user's connections ("": the tenant-wide
// ones), by tenant then name.
func (s *Store) ListConnections(ctx context.Context, userID string) ([]store.Connection, error) {
	return getAll(ctx, s.read(), scanConnection, "list connections",
		selectConnection+" WHERE user_id = ? ORDER BY tenant, name", userID)
}

// ListAllConnections returns every connection, by user, tenant, name.
func (s *Store) ListAllConnections(ctx context.Context) ([]store.Connection, error) {
	return getAll(ctx, s.read(), scanConnection, "list all connections",
		selectConnection+" ORDER BY user_id, tenant, name")
}

// DeleteUserConnections deletes a user's connections and counts them.
func (s *Store) DeleteUserConnections(ctx context.Context, userID string) (int, error) {
	if userID == "" {
		return 0, s.d.errorf("delete user connections: empty user ID (tenant-wide credentials belong to no user)")
	}
	return count(ctx, s.write(), "delete user connections", "DELETE FROM connections WHERE user_id = ?", userID)
}

// ---------------------------------------------------------------------------
// Vault check value
// ---------------------------------------------------------------------------

// GetVaultCheck returns the vault's check value; ErrNotFound before the
// first PutVaultCheck.
func (s *Store) GetVaultCheck(ctx context.Context) (keyID string, check []byte, err error) {
	type row struct {
		keyID string
		check []byte
	}
	r, err := getOne(ctx, s.read(), func(sc scanner) (row, error) {
		var r row
		err := sc.Scan(&r.keyID, &r.check)
		return r, err
	}, "vault check", "SELECT key_id, check_value FROM vault_check WHERE id = 1")
	if err != nil {
		return "", nil, err
	}
	return r.keyID, r.check, nil
}

// PutVaultCheck creates or replaces the vault's check value.
func (s *Store) PutVaultCheck(ctx context.Context, keyID string, check []byte) error {
	_, err := exec(ctx, s.write(), "vault check",
		`INSERT INTO vault_check (id, key_id, check_value, updated_at) VALUES (1, ?, ?, ?)
		 ON CONFLICT (id) DO UPDATE SET key_id = excluded.key_id, check_value = excluded.check_value, updated_at = excluded.updated_at`,
		keyID, secret(check), ts(now(time.Time{})))
	return err
}
