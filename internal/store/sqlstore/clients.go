package sqlstore

import (
	"context"
	"fmt"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

var clientCols = []string{"id", "secret_hash", "secret_expires_at", "name", "kind",
	"redirect_uris", "grant_types", "response_types", "token_endpoint_auth_method", "scope",
	"jwks", "jwks_uri", "client_group", "metadata", "created_at", "updated_at"}

var (
	selectClient = selectSQL("clients", clientCols)
	insertClient = insertSQL("clients", clientCols)
	updateClient = updateSQL("clients", clientCols)
)

func clientArgs(c store.Client) []any {
	return []any{c.ID, c.SecretHash, ts(c.SecretExpiresAt), c.Name, c.Kind,
		list(c.RedirectURIs), list(c.GrantTypes), list(c.ResponseTypes), c.TokenEndpointAuthMethod, c.Scope,
		raw(c.JWKS), c.JWKSURI, c.Group, raw(c.Metadata), ts(c.CreatedAt), ts(c.UpdatedAt)}
}

func scanClient(sc scanner) (store.Client, error) {
	var c store.Client
	err := sc.Scan(&c.ID, &c.SecretHash, tsCol{&c.SecretExpiresAt}, &c.Name, &c.Kind,
		listCol{&c.RedirectURIs}, listCol{&c.GrantTypes}, listCol{&c.ResponseTypes}, &c.TokenEndpointAuthMethod, &c.Scope,
		rawCol{&c.JWKS}, &c.JWKSURI, &c.Group, rawCol{&c.Metadata}, tsCol{&c.CreatedAt}, tsCol{&c.UpdatedAt})
	return c, err
}

func clientWhat(id string) string { return fmt.Sprintf("client %q", id) }

// CreateClient stores a new client.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	stamp(&c.CreatedAt, &c.UpdatedAt)
	_, err := exec(ctx, s.write(), clientWhat(c.ID), insertClient, clientArgs(c)...)
	return err
}

// GetClient returns the client with the given ID.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	return getOne(ctx, s.read(), scanClient, clientWhat(id), selectClient+" WHERE id = ?", id)
}

// UpdateClient changes a client atomically.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(store.Client) (store.Client, error)) error {
	return s.tx(ctx, func(tx db) error {
		old, err := getOne(ctx, tx, scanClient, clientWhat(id), selectClient+" WHERE id = ?"+s.d.LockRow, id)
		if err != nil {
			return err
		}
		c, err := update(old)
		if err != nil {
			return err
		}
		if c.ID != id {
			return s.d.errorf("update of client %q changed its ID to %q", id, c.ID)
		}
		touch(&c.UpdatedAt, old.UpdatedAt)
		_, err = exec(ctx, tx, clientWhat(id), updateClient, append(clientArgs(c)[1:], id)...)
		return err
	})
}

// DeleteClient deletes a client (only that row).
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return execOne(ctx, s.write(), clientWhat(id), "DELETE FROM clients WHERE id = ?", id)
}

// ListClients returns every client, by ID.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	return getAll(ctx, s.read(), scanClient, "list clients", selectClient+" ORDER BY id")
}
