package storetest

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Connections and the vault check value
// ---------------------------------------------------------------------------

func connection(userID, tenant, name string) store.Connection {
	return store.Connection{
		UserID:    userID,
		Tenant:    tenant,
		Name:      name,
		Kind:      store.ConnectionOAuth2,
		Secret:    []byte("\x01sealed:" + userID + "/" + tenant + "/" + name + "\x00\xff"),
		KeyID:     "k1",
		Scopes:    []string{"calendar.read", "calendar.write"},
		ExpiresAt: at(time.Hour),
		CreatedAt: at(0),
		UpdatedAt: at(time.Second),
	}
}

func testConnectionCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, l := range []func() ([]store.Connection, error){
		func() ([]store.Connection, error) { return s.ListConnections(ctx, "alice") },
		func() ([]store.Connection, error) { return s.ListConnections(ctx, "") },
		func() ([]store.Connection, error) { return s.ListAllConnections(ctx) },
	} {
		list, err := l()
		must(t, err, "list connections on an empty store")
		if list == nil || len(list) != 0 {
			t.Fatalf("list connections on an empty store = %#v, want empty non-nil", list)
		}
	}
	_, err := s.GetConnection(ctx, "alice", "acme", "nope")
	wantErr(t, err, store.ErrNotFound, "GetConnection(unknown)")

	cal := connection("alice", "acme", "calendar-api")
	crm := connection("alice", "acme", "crm")
	crm.Kind = store.ConnectionAPIKey
	crm.ExpiresAt = time.Time{}
	other := connection("alice", "beta", "calendar-api")
	bob := connection("bob", "acme", "calendar-api")
	shared := connection("", "acme", "calendar-api") // tenant-wide
	shared.Kind = store.ConnectionStatic
	for _, c := range []store.Connection{other, crm, bob, shared, cal} {
		must(t, s.PutConnection(ctx, c), "PutConnection "+c.UserID+"/"+c.Tenant+"/"+c.Name)
	}
	if err := s.PutConnection(ctx, store.Connection{UserID: "alice", Tenant: "acme"}); err == nil {
		t.Error("PutConnection without a name: no error")
	}

	for _, want := range []store.Connection{cal, crm, other, bob, shared} {
		got, err := s.GetConnection(ctx, want.UserID, want.Tenant, want.Name)
		must(t, err, "GetConnection")
		equal(t, "connection", got, want)
	}
	// The key is all three fields.
	_, err = s.GetConnection(ctx, "alice", "acme", "Calendar-api")
	wantErr(t, err, store.ErrNotFound, "GetConnection is exact (case)")
	_, err = s.GetConnection(ctx, "carol", "acme", "calendar-api")
	wantErr(t, err, store.ErrNotFound, "GetConnection(other user)")

	list, err := s.ListConnections(ctx, "alice")
	must(t, err, "ListConnections(alice)")
	equal(t, "alice's connections", list, []store.Connection{cal, crm, other})
	list, err = s.ListConnections(ctx, "")
	must(t, err, "ListConnections(tenant-wide)")
	equal(t, "tenant-wide connections", list, []store.Connection{shared})
	list, err = s.ListAllConnections(ctx)
	must(t, err, "ListAllConnections")
	equal(t, "all connections", list, []store.Connection{shared, cal, crm, other, bob})

	// Put replaces everything but CreatedAt.
	repl := cal
	repl.Kind = store.ConnectionAPIKey
	repl.Secret = []byte("resealed")
	repl.KeyID = "k2"
	repl.Scopes = nil
	repl.ExpiresAt = time.Time{}
	repl.CreatedAt = at(time.Hour)
	repl.UpdatedAt = at(2 * time.Hour)
	must(t, s.PutConnection(ctx, repl), "PutConnection(replace)")
	want := repl
	want.CreatedAt = cal.CreatedAt
	got, err := s.GetConnection(ctx, "alice", "acme", "calendar-api")
	must(t, err, "GetConnection after replace")
	equal(t, "replaced connection", got, want)
	if got.Scopes == nil {
		t.Error("Scopes after replace with nil = nil, want an empty non-nil slice")
	}

	must(t, s.DeleteConnection(ctx, "alice", "acme", "calendar-api"), "DeleteConnection")
	wantErr(t, s.DeleteConnection(ctx, "alice", "acme", "calendar-api"), store.ErrNotFound, "DeleteConnection again")
	_, err = s.GetConnection(ctx, "alice", "acme", "calendar-api")
	wantErr(t, err, store.ErrNotFound, "GetConnection after delete")
	list, err = s.ListAllConnections(ctx)
	must(t, err, "ListAllConnections after delete")
	equal(t, "all connections after delete", list, []store.Connection{shared, crm, other, bob})
}

func testConnectionDefaults(t *testing.T, s store.Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Millisecond)
	must(t, s.PutConnection(ctx, store.Connection{UserID: "u", Tenant: "t", Name: "n", Kind: store.ConnectionAPIKey}), "PutConnection")
	got, err := s.GetConnection(ctx, "u", "t", "n")
	must(t, err, "GetConnection")
	after := time.Now().Add(time.Millisecond)
	if got.CreatedAt.Before(before) || got.CreatedAt.After(after) {
		t.Errorf("CreatedAt = %s, want the time of PutConnection (%s..%s)", fmtTime(got.CreatedAt), fmtTime(before), fmtTime(after))
	}
	if !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("UpdatedAt = %s, want CreatedAt %s", fmtTime(got.UpdatedAt), fmtTime(got.CreatedAt))
	}
	if !got.ExpiresAt.IsZero() || got.Scopes == nil || len(got.Scopes) != 0 || len(got.Secret) != 0 {
		t.Errorf("zero fields came back as ExpiresAt %s, Scopes %#v, Secret %q", fmtTime(got.ExpiresAt), got.Scopes, got.Secret)
	}

	// A replacement without UpdatedAt gets the current time.
	c := connection("u", "t", "m")
	must(t, s.PutConnection(ctx, c), "PutConnection m")
	c.UpdatedAt = time.Time{}
	before = time.Now().Add(-time.Millisecond)
	must(t, s.PutConnection(ctx, c), "PutConnection m again")
	got, err = s.GetConnection(ctx, "u", "t", "m")
	must(t, err, "GetConnection m")
	if got.UpdatedAt.Before(before) {
		t.Errorf("UpdatedAt after replace = %s, want >= %s", fmtTime(got.UpdatedAt), fmtTime(before))
	}
	if !got.CreatedAt.Equal(at(0)) {
		t.Errorf("CreatedAt after replace = %s, want %s", fmtTime(got.CreatedAt), fmtTime(at(0)))
	}

	// An update that leaves UpdatedAt alone gets the current time.
	before = time.Now().Add(-time.Millisecond)
	must(t, s.UpdateConnection(ctx, "u", "t", "m", func(c store.Connection) (store.Connection, error) {
		c.KeyID = "k2"
		return c, nil
	}), "UpdateConnection")
	got, err = s.GetConnection(ctx, "u", "t", "m")
	must(t, err, "GetConnection after update")
	if got.UpdatedAt.Before(before) {
		t.Errorf("UpdatedAt after update = %s, want >= %s", fmtTime(got.UpdatedAt), fmtTime(before))
	}
}

func testConnectionUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := connection("alice", "acme", "calendar-api")
	must(t, s.PutConnection(ctx, c), "PutConnection")

	must(t, s.UpdateConnection(ctx, "alice", "acme", "calendar-api", func(c store.Connection) (store.Connection, error) {
		c.Secret = []byte("refreshed")
		c.KeyID = "k2"
		c.Scopes = append(c.Scopes, "calendar.admin")
		c.ExpiresAt = at(2 * time.Hour)
		c.UpdatedAt = at(time.Hour)
		return c, nil
	}), "UpdateConnection")
	want := c
	want.Secret = []byte("refreshed")
	want.KeyID = "k2"
	want.Scopes = []string{"calendar.read", "calendar.write", "calendar.admin"}
	want.ExpiresAt = at(2 * time.Hour)
	want.UpdatedAt = at(time.Hour)
	got, err := s.GetConnection(ctx, "alice", "acme", "calendar-api")
	must(t, err, "GetConnection after update")
	equal(t, "updated connection", got, want)

	called := false
	err = s.UpdateConnection(ctx, "alice", "acme", "nope", func(c store.Connection) (store.Connection, error) { called = true; return c, nil })
	wantErr(t, err, store.ErrNotFound, "UpdateConnection(unknown)")
	if called {
		t.Error("UpdateConnection(unknown) called the update function")
	}

	// An error leaves the row as it was, even if the function mutated the
	// value it was given.
	err = s.UpdateConnection(ctx, "alice", "acme", "calendar-api", func(c store.Connection) (store.Connection, error) {
		c.Secret[0] = 'X'
		c.Scopes[0] = "everything"
		c.KeyID = "k3"
		return c, errBoom
	})
	wantErr(t, err, errBoom, "UpdateConnection returning an error")
	got, err = s.GetConnection(ctx, "alice", "acme", "calendar-api")
	must(t, err, "GetConnection after a failed update")
	equal(t, "connection after a failed update", got, want)

	// The key fields cannot change.
	for i, change := range []func(*store.Connection){
		func(c *store.Connection) { c.UserID = "bob" },
		func(c *store.Connection) { c.UserID = "" },
		func(c *store.Connection) { c.Tenant = "beta" },
		func(c *store.Connection) { c.Name = "crm" },
	} {
		err := s.UpdateConnection(ctx, "alice", "acme", "calendar-api", func(c store.Connection) (store.Connection, error) {
			change(&c)
			c.KeyID = "moved"
			return c, nil
		})
		if err == nil {
			t.Errorf("UpdateConnection changing key field %d: no error", i)
		}
	}
	list, err := s.ListAllConnections(ctx)
	must(t, err, "ListAllConnections")
	equal(t, "connections after key changes", list, []store.Connection{want})
}

// Concurrent updates of one connection queue behind each other: none is
// lost (this is what serialises downstream token refreshes).
func testConnectionUpdateAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := connection("alice", "acme", "calendar-api")
	c.Secret = []byte("0")
	c.Scopes = nil
	must(t, s.PutConnection(ctx, c), "PutConnection")
	// A neighbour that must not be touched.
	n := connection("", "acme", "calendar-api")
	must(t, s.PutConnection(ctx, n), "PutConnection tenant-wide")

	const workers = 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			errs <- s.UpdateConnection(ctx, "alice", "acme", "calendar-api", func(c store.Connection) (store.Connection, error) {
				v, err := strconv.Atoi(string(c.Secret))
				if err != nil {
					return c, err
				}
				c.Secret = []byte(strconv.Itoa(v + 1))
				c.Scopes = append(c.Scopes, "s"+strconv.Itoa(v))
				return c, nil
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err, "concurrent UpdateConnection")
	}
	got, err := s.GetConnection(ctx, "alice", "acme", "calendar-api")
	must(t, err, "GetConnection")
	if string(got.Secret) != strconv.Itoa(workers) {
		t.Errorf("after %d concurrent increments Secret = %q, want %q (lost updates)", workers, got.Secret, strconv.Itoa(workers))
	}
	if len(got.Scopes) != workers {
		t.Errorf("len(Scopes) = %d, want %d", len(got.Scopes), workers)
	}
	for i, sc := range got.Scopes {
		if sc != "s"+strconv.Itoa(i) {
			t.Errorf("Scopes[%d] = %q, want %q (an update saw a stale row)", i, sc, "s"+strconv.Itoa(i))
			break
		}
	}
	gn, err := s.GetConnection(ctx, "", "acme", "calendar-api")
	must(t, err, "GetConnection tenant-wide")
	equal(t, "tenant-wide neighbour", gn, n)
}

func testDeleteUserConnections(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice := []store.Connection{
		connection("alice", "acme", "calendar-api"),
		connection("alice", "acme", "crm"),
		connection("alice", "beta", "calendar-api"),
	}
	keep := []store.Connection{
		connection("", "acme", "calendar-api"),
		connection("alice2", "acme", "calendar-api"),
		connection("bob", "acme", "calendar-api"),
	}
	for _, c := range append(append([]store.Connection{}, alice...), keep...) {
		must(t, s.PutConnection(ctx, c), "PutConnection")
	}
	n, err := s.DeleteUserConnections(ctx, "alice")
	must(t, err, "DeleteUserConnections")
	if n != len(alice) {
		t.Errorf("DeleteUserConnections(alice) = %d, want %d", n, len(alice))
	}
	n, err = s.DeleteUserConnections(ctx, "alice")
	must(t, err, "DeleteUserConnections again")
	if n != 0 {
		t.Errorf("DeleteUserConnections(alice) again = %d, want 0", n)
	}
	n, err = s.DeleteUserConnections(ctx, "nobody")
	must(t, err, "DeleteUserConnections(unknown user)")
	if n != 0 {
		t.Errorf("DeleteUserConnections(unknown user) = %d, want 0", n)
	}
	if _, err := s.DeleteUserConnections(ctx, ""); err == nil {
		t.Error("DeleteUserConnections(\"\"): no error, want a refusal (tenant-wide credentials belong to no user)")
	}
	list, err := s.ListAllConnections(ctx)
	must(t, err, "ListAllConnections")
	equal(t, "connections left", list, keep)
	list, err = s.ListConnections(ctx, "alice")
	must(t, err, "ListConnections(alice)")
	if len(list) != 0 {
		t.Errorf("ListConnections(alice) after delete = %d rows, want 0", len(list))
	}
}

// Secrets are opaque bytes: every byte value, empty, and large ones come
// back exactly.
func testConnectionSecretBytes(t *testing.T, s store.Store) {
	ctx := t.Context()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	large := bytes.Repeat([]byte{0x00, 0xff, 0x7f, 0x80, '\'', '"', '\\'}, 10_000)
	for i, secret := range [][]byte{
		all,
		{0},
		{0xff, 0xfe, 0xfd}, // not UTF-8
		[]byte("\\x00 looks like bytea hex"),
		large,
		{},
		nil,
	} {
		name := fmt.Sprintf("c%d", i)
		c := connection("u", "t", name)
		c.Secret = secret
		must(t, s.PutConnection(ctx, c), "PutConnection "+name)
		got, err := s.GetConnection(ctx, "u", "t", name)
		must(t, err, "GetConnection "+name)
		if !bytes.Equal(got.Secret, secret) {
			t.Errorf("secret %d: got %d bytes, want %d (%.40q…)", i, len(got.Secret), len(secret), got.Secret)
		}
		// The same through an update.
		rev := bytes.Clone(secret)
		for j, k := 0, len(rev)-1; j < k; j, k = j+1, k-1 {
			rev[j], rev[k] = rev[k], rev[j]
		}
		must(t, s.UpdateConnection(ctx, "u", "t", name, func(c store.Connection) (store.Connection, error) {
			c.Secret = rev
			return c, nil
		}), "UpdateConnection "+name)
		got, err = s.GetConnection(ctx, "u", "t", name)
		must(t, err, "GetConnection after update "+name)
		if !bytes.Equal(got.Secret, rev) {
			t.Errorf("secret %d after update: got %d bytes, want %d", i, len(got.Secret), len(rev))
		}
	}
	// Key fields with odd characters are data like any other.
	odd := connection("it's", "ünïcødé ✓", "a|b")
	must(t, s.PutConnection(ctx, odd), "PutConnection(odd key)")
	got, err := s.GetConnection(ctx, "it's", "ünïcødé ✓", "a|b")
	must(t, err, "GetConnection(odd key)")
	equal(t, "odd connection", got, odd)
}

func testVaultCheck(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, _, err := s.GetVaultCheck(ctx)
	wantErr(t, err, store.ErrNotFound, "GetVaultCheck before the first Put")

	check := []byte{0x01, 0x00, 0xff, 's', 'e', 'a', 'l', 'e', 'd'}
	must(t, s.PutVaultCheck(ctx, "k1", check), "PutVaultCheck")
	id, got, err := s.GetVaultCheck(ctx)
	must(t, err, "GetVaultCheck")
	if id != "k1" || !bytes.Equal(got, check) {
		t.Errorf("GetVaultCheck = %q, %q; want k1, %q", id, got, check)
	}

	// Put replaces the one row.
	check2 := bytes.Repeat([]byte{0xab}, 200)
	must(t, s.PutVaultCheck(ctx, "k2", check2), "PutVaultCheck again")
	id, got, err = s.GetVaultCheck(ctx)
	must(t, err, "GetVaultCheck after replace")
	if id != "k2" || !bytes.Equal(got, check2) {
		t.Errorf("GetVaultCheck after replace = %q, %q; want k2, %q", id, got, check2)
	}

	// Concurrent Puts (replicas starting together) leave one whole value.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() { errs <- s.PutVaultCheck(ctx, fmt.Sprint("k", i), []byte{byte(i)}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err, "concurrent PutVaultCheck")
	}
	id, got, err = s.GetVaultCheck(ctx)
	must(t, err, "GetVaultCheck after concurrent puts")
	if len(got) != 1 || id != fmt.Sprint("k", got[0]) {
		t.Errorf("GetVaultCheck after concurrent puts = %q, %q: a torn value", id, got)
	}
}
