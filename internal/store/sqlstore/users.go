package sqlstore

import (
	"context"
	"fmt"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

var userCols = []string{"id", "username", "email", "password_hash", "tenant",
	"user_groups", "roles", "permissions", "disabled", "source", "upstream_token", "created_at", "updated_at"}

var (
	selectUser = selectSQL("users", userCols)
	insertUser = insertSQL("users", userCols)
	updateUser = updateSQL("users", userCols)
)

func userArgs(u store.User) []any {
	return []any{u.ID, optional(u.Username), u.Email, u.PasswordHash, u.Tenant,
		list(u.Groups), list(u.Roles), list(u.Permissions), u.Disabled, u.Source, u.UpstreamToken, ts(u.CreatedAt), ts(u.UpdatedAt)}
}

func scanUser(sc scanner) (store.User, error) {
	var u store.User
	err := sc.Scan(&u.ID, strCol{&u.Username}, &u.Email, &u.PasswordHash, &u.Tenant,
		listCol{&u.Groups}, listCol{&u.Roles}, listCol{&u.Permissions}, &u.Disabled, &u.Source, &u.UpstreamToken, tsCol{&u.CreatedAt}, tsCol{&u.UpdatedAt})
	return u, err
}

func userWhat(id string) string { return fmt.Sprintf("user %q", id) }

// CreateUser stores a new user; its ID and (non-empty) username must be
// free.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	stamp(&u.CreatedAt, &u.UpdatedAt)
	_, err := exec(ctx, s.write(), userWhat(u.ID), insertUser, userArgs(u)...)
	return err
}

// GetUser returns the user with the given ID.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	return getOne(ctx, s.read(), scanUser, userWhat(id), selectUser+" WHERE id = ?", id)
}

// GetUserByUsername returns the user with the given username (exact
// match); "" matches nobody.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (store.User, error) {
	return getOne(ctx, s.read(), scanUser, fmt.Sprintf("username %q", username), selectUser+" WHERE username = ?", username)
}

// UpdateUser changes a user atomically.
func (s *Store) UpdateUser(ctx context.Context, id string, update func(store.User) (store.User, error)) error {
	return s.tx(ctx, func(tx db) error {
		old, err := getOne(ctx, tx, scanUser, userWhat(id), selectUser+" WHERE id = ?"+s.d.LockRow, id)
		if err != nil {
			return err
		}
		u, err := update(old)
		if err != nil {
			return err
		}
		if u.ID != id {
			return s.d.errorf("update of user %q changed its ID to %q", id, u.ID)
		}
		touch(&u.UpdatedAt, old.UpdatedAt)
		_, err = exec(ctx, tx, userWhat(id), updateUser, append(userArgs(u)[1:], id)...)
		return err
	})
}

// DeleteUser deletes a user (only that row).
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return execOne(ctx, s.write(), userWhat(id), "DELETE FROM users WHERE id = ?", id)
}

// ListUsers returns every user, by ID.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return getAll(ctx, s.read(), scanUser, "list users", selectUser+" ORDER BY id")
}
