package layered

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
)

func open(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestLayer: declared entries answer first and are read-only; stored ones
// stay writable; lists hold both; disabled comes from the access state.
func TestLayer(t *testing.T) {
	ctx := context.Background()
	base := open(t)
	for _, u := range []store.User{{ID: "sso-1", Email: "sam@example.com"}, {ID: "alice", Username: "alice-old", Email: "stale@example.com"}} {
		if err := base.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := base.CreateClient(ctx, store.Client{ID: "dcr-1", Kind: store.ClientDynamic}); err != nil {
		t.Fatal(err)
	}
	disabled := map[string]bool{"sso-1": true}
	s := New(base, []store.User{{ID: "alice", Username: "alice", Email: "alice@example.com"}},
		[]store.Client{{ID: "agent", Kind: store.ClientStatic}}, func(id string) bool { return disabled[id] })

	if u, err := s.GetUser(ctx, "alice"); err != nil || u.Email != "alice@example.com" {
		t.Errorf("declared user: %+v %v (the config must win over a stored row)", u, err)
	}
	if _, err := s.GetUserByUsername(ctx, "alice-old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a stored row hidden by a declared user is found by its username: %v", err)
	}
	if u, err := s.GetUser(ctx, "sso-1"); err != nil || !u.Disabled {
		t.Errorf("stored user disabled by the access state: %+v %v", u, err)
	}
	for name, err := range map[string]error{
		"update declared user":   s.UpdateUser(ctx, "alice", func(u store.User) (store.User, error) { return u, nil }),
		"delete declared user":   s.DeleteUser(ctx, "alice"),
		"update declared client": s.UpdateClient(ctx, "agent", func(c store.Client) (store.Client, error) { return c, nil }),
		"delete declared client": s.DeleteClient(ctx, "agent"),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s: %v, want ErrReadOnly", name, err)
		}
	}
	for name, err := range map[string]error{
		"create a declared user id":       s.CreateUser(ctx, store.User{ID: "alice"}),
		"create a declared username":      s.CreateUser(ctx, store.User{ID: "x", Username: "alice"}),
		"create a declared client id":     s.CreateClient(ctx, store.Client{ID: "agent"}),
		"rename a stored user onto alice": s.UpdateUser(ctx, "sso-1", func(u store.User) (store.User, error) { u.Username = "alice"; return u, nil }),
	} {
		if !errors.Is(err, store.ErrAlreadyExists) {
			t.Errorf("%s: %v, want ErrAlreadyExists", name, err)
		}
	}
	if err := s.UpdateUser(ctx, "sso-1", func(u store.User) (store.User, error) { u.Email = "new@example.com"; return u, nil }); err != nil {
		t.Errorf("a stored user stays writable: %v", err)
	}
	users, err := s.ListUsers(ctx)
	if err != nil || len(users) != 2 || users[0].ID != "alice" || users[0].Email != "alice@example.com" || users[1].ID != "sso-1" || !users[1].Disabled {
		t.Errorf("ListUsers = %+v %v", users, err)
	}
	clients, err := s.ListClients(ctx)
	if err != nil || len(clients) != 2 || clients[0].ID != "agent" || clients[1].ID != "dcr-1" {
		t.Errorf("ListClients = %+v %v", clients, err)
	}
}

// TestDropCopies: rows an older version copied from the config are found
// and deleted; others stay.
func TestDropCopies(t *testing.T) {
	ctx := context.Background()
	base := open(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(base.CreateUser(ctx, store.User{ID: "carol", Username: "carol", Source: "config"}))
	must(base.CreateUser(ctx, store.User{ID: "sso-1", Source: "acme"}))
	must(base.CreateClient(ctx, store.Client{ID: "old-agent", Kind: store.ClientStatic}))
	must(base.CreateClient(ctx, store.Client{ID: "dcr-1", Kind: store.ClientDynamic}))
	users, clients, err := Copies(ctx, base)
	must(err)
	if len(users) != 1 || users[0] != "carol" || len(clients) != 1 || clients[0] != "old-agent" {
		t.Fatalf("Copies = %v %v", users, clients)
	}
	must(DropCopies(ctx, base, users, clients))
	must(DropCopies(ctx, base, users, clients)) // again: nothing left, no error
	if _, err := base.GetUser(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("copied user left: %v", err)
	}
	if _, err := base.GetClient(ctx, "old-agent"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("copied client left: %v", err)
	}
	if _, err := base.GetUser(ctx, "sso-1"); err != nil {
		t.Errorf("a stored user went: %v", err)
	}
	if _, err := base.GetClient(ctx, "dcr-1"); err != nil {
		t.Errorf("a registered client went: %v", err)
	}
}

// TestSetSwaps: a reload swaps the declared entries at once.
func TestSetSwaps(t *testing.T) {
	ctx := context.Background()
	s := New(open(t), []store.User{{ID: "alice", Username: "alice"}}, []store.Client{{ID: "agent"}}, nil)
	s.Set([]store.User{{ID: "bob", Username: "bob"}}, nil)
	if _, err := s.GetUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice after the swap: %v", err)
	}
	if _, err := s.GetClient(ctx, "agent"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("agent after the swap: %v", err)
	}
	if u, err := s.GetUserByUsername(ctx, "bob"); err != nil || u.ID != "bob" || !s.Declared("bob") {
		t.Errorf("bob after the swap: %+v %v", u, err)
	}
}
