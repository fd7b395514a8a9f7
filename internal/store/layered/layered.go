// Package layered serves the config's users and clients read-only over
// the store, the way Dex serves static clients: the config is the desired
// state, so its entries are never copied into the store, and an entry
// removed from the config is gone at the next start. Lookups answer from
// the config first, writes to a declared entry are refused (ErrReadOnly),
// and lists hold both. Whether a user is disabled is asked of the access
// state (internal/access), for declared and stored users alike.
package layered

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ErrReadOnly: the entry is declared in the config; change the config.
var ErrReadOnly = errors.New("declared in the config file (read-only here; edit the config)")

// Store is a store.Store with the config's users and clients on top.
type Store struct {
	store.Store
	set      atomic.Pointer[declared]
	disabled func(userID string) bool
}

// declared is one config's entries, immutable once built.
type declared struct {
	users   map[string]store.User   // by ID
	byName  map[string]string       // username -> ID
	clients map[string]store.Client // by ID
}

var _ store.Store = (*Store)(nil)

// New layers users and clients over base. disabled (nil: none) reports
// users an admin disabled; they come back with Disabled set.
func New(base store.Store, users []store.User, clients []store.Client, disabled func(string) bool) *Store {
	s := &Store{Store: base, disabled: disabled}
	s.Set(users, clients)
	return s
}

// Set swaps in another config's entries atomically (a reload); removed
// entries must also be cut off through the access state
// (access.Checker.SyncDeclared).
func (s *Store) Set(users []store.User, clients []store.Client) {
	d := &declared{users: map[string]store.User{}, byName: map[string]string{}, clients: map[string]store.Client{}}
	for _, u := range users {
		d.users[u.ID] = u
		if u.Username != "" {
			d.byName[u.Username] = u.ID
		}
	}
	for _, c := range clients {
		d.clients[c.ID] = c
	}
	s.set.Store(d)
}

func (s *Store) d() *declared { return s.set.Load() }

// Declared reports whether the config declares the user.
func (s *Store) Declared(userID string) bool { _, ok := s.d().users[userID]; return ok }

// DeclaredClient reports whether the config declares the client.
func (s *Store) DeclaredClient(id string) bool { _, ok := s.d().clients[id]; return ok }

func (s *Store) withAccess(u store.User) store.User {
	if s.disabled != nil && s.disabled(u.ID) {
		u.Disabled = true
	}
	return u
}

func readOnly(what, id string) error { return fmt.Errorf("%s %q: %w", what, id, ErrReadOnly) }

// CreateClient refuses an ID the config declares.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	d := s.d()
	if _, ok := d.clients[c.ID]; ok {
		return fmt.Errorf("client %q: %w", c.ID, store.ErrAlreadyExists)
	}
	return s.Store.CreateClient(ctx, c)
}

// GetClient answers from the config first.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	d := s.d()
	if c, ok := d.clients[id]; ok {
		return c, nil
	}
	return s.Store.GetClient(ctx, id)
}

// UpdateClient refuses declared clients.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(store.Client) (store.Client, error)) error {
	d := s.d()
	if _, ok := d.clients[id]; ok {
		return readOnly("client", id)
	}
	return s.Store.UpdateClient(ctx, id, update)
}

// DeleteClient refuses declared clients.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	d := s.d()
	if _, ok := d.clients[id]; ok {
		return readOnly("client", id)
	}
	return s.Store.DeleteClient(ctx, id)
}

// ListClients lists declared and stored clients, by ID (a declared one
// hides a stored one of the same ID).
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	d := s.d()
	stored, err := s.Store.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]store.Client, 0, len(stored)+len(d.clients))
	for _, c := range d.clients {
		out = append(out, c)
	}
	for _, c := range stored {
		if _, ok := d.clients[c.ID]; !ok {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b store.Client) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// CreateUser refuses an ID or username the config declares.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	d := s.d()
	if _, ok := d.users[u.ID]; ok {
		return fmt.Errorf("user %q: %w", u.ID, store.ErrAlreadyExists)
	}
	if _, ok := d.byName[u.Username]; ok && u.Username != "" {
		return fmt.Errorf("username %q: %w", u.Username, store.ErrAlreadyExists)
	}
	return s.Store.CreateUser(ctx, u)
}

// GetUser answers from the config first.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	d := s.d()
	if u, ok := d.users[id]; ok {
		return s.withAccess(u), nil
	}
	u, err := s.Store.GetUser(ctx, id)
	if err != nil {
		return u, err
	}
	return s.withAccess(u), nil
}

// GetUserByUsername answers from the config first.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (store.User, error) {
	d := s.d()
	if id, ok := d.byName[username]; ok {
		return s.withAccess(d.users[id]), nil
	}
	u, err := s.Store.GetUserByUsername(ctx, username)
	if err != nil {
		return u, err
	}
	if _, ok := d.users[u.ID]; ok {
		// A stored row hidden by a declared user of the same ID.
		return store.User{}, fmt.Errorf("username %q: %w", username, store.ErrNotFound)
	}
	return s.withAccess(u), nil
}

// UpdateUser refuses declared users; a stored user may not take a
// declared username.
func (s *Store) UpdateUser(ctx context.Context, id string, update func(store.User) (store.User, error)) error {
	d := s.d()
	if _, ok := d.users[id]; ok {
		return readOnly("user", id)
	}
	return s.Store.UpdateUser(ctx, id, func(old store.User) (store.User, error) {
		u, err := update(old)
		if err != nil {
			return u, err
		}
		if _, ok := d.byName[u.Username]; ok && u.Username != "" && u.Username != old.Username {
			return u, fmt.Errorf("username %q: %w", u.Username, store.ErrAlreadyExists)
		}
		return u, nil
	})
}

// DeleteUser refuses declared users.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	d := s.d()
	if _, ok := d.users[id]; ok {
		return readOnly("user", id)
	}
	return s.Store.DeleteUser(ctx, id)
}

// ListUsers lists declared and stored users, by ID.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	d := s.d()
	stored, err := s.Store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]store.User, 0, len(stored)+len(d.users))
	for _, u := range d.users {
		out = append(out, s.withAccess(u))
	}
	for _, u := range stored {
		if _, ok := d.users[u.ID]; !ok {
			out = append(out, s.withAccess(u))
		}
	}
	slices.SortFunc(out, func(a, b store.User) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Copies lists the rows an older mcpgate copied from the config into the
// store (users with Source "config", clients of Kind static).
func Copies(ctx context.Context, base store.Store) (users, clients []string, err error) {
	us, err := base.ListUsers(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, u := range us {
		if u.Source == "config" {
			users = append(users, u.ID)
		}
	}
	cs, err := base.ListClients(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range cs {
		if c.Kind == store.ClientStatic {
			clients = append(clients, c.ID)
		}
	}
	return users, clients, nil
}

// DropCopies deletes those copied rows: the config layer serves what is
// still declared, and what is not must not linger (their refresh tokens,
// consents and connections stay, keyed by ID, for an entry declared
// again).
func DropCopies(ctx context.Context, base store.Store, users, clients []string) error {
	for _, id := range users {
		if err := base.DeleteUser(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("drop copied user %q: %w", id, err)
		}
	}
	for _, id := range clients {
		if err := base.DeleteClient(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("drop copied client %q: %w", id, err)
		}
	}
	return nil
}

// errNoActivity: the base store cannot record client activity.
var errNoActivity = errors.New("the store does not record client activity")

var _ store.ClientActivity = (*Store)(nil)

// TouchClient passes through to the base store (store.ClientActivity):
// only stored, self-registered clients have activity; declared ones never
// expire. Embedding the store.Store interface would hide this optional
// capability, so it is forwarded by hand.
func (s *Store) TouchClient(ctx context.Context, id string, at time.Time) error {
	if ca, ok := s.Store.(store.ClientActivity); ok {
		return ca.TouchClient(ctx, id, at)
	}
	return errNoActivity
}

// DeleteStaleClients passes through to the base store (store.ClientActivity).
func (s *Store) DeleteStaleClients(ctx context.Context, unusedBefore, idleBefore time.Time) (int, error) {
	if ca, ok := s.Store.(store.ClientActivity); ok {
		return ca.DeleteStaleClients(ctx, unusedBefore, idleBefore)
	}
	return 0, errNoActivity
}
