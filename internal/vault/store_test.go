package vault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
	"github.com/mcpgate/mcpgate/internal/vault"
)

func openStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// put seals plaintext for a connection and stores it.
func put(t *testing.T, st store.Store, v *vault.Vault, userID, tenant, name, plaintext string) store.Connection {
	t.Helper()
	c := store.Connection{UserID: userID, Tenant: tenant, Name: name, Kind: store.ConnectionOAuth2, Scopes: []string{"s"}}
	if err := v.SealConnection(&c, []byte(plaintext)); err != nil {
		t.Fatalf("SealConnection: %v", err)
	}
	if err := st.PutConnection(t.Context(), c); err != nil {
		t.Fatalf("PutConnection: %v", err)
	}
	return c
}

func TestCheck(t *testing.T) {
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	type step struct {
		v         *vault.Vault
		wantErr   error
		wantKeyID string // the check value's key after the step
	}
	v1, v2, v2old, v3 := newVault(t, k1), newVault(t, k2), newVault(t, k2, k1), newVault(t, k3, k2)
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first start writes, then passes", []step{
			{v1, nil, k1.ID},
			{v1, nil, k1.ID},
		}},
		{"wrong key fails", []step{
			{v1, nil, k1.ID},
			{v2, vault.ErrKeyMismatch, k1.ID},
			{v3, vault.ErrKeyMismatch, k1.ID},
		}},
		{"older key upgrades the check value", []step{
			{v1, nil, k1.ID},
			{v2old, nil, k2.ID},
			{v2, nil, k2.ID},
			{v1, vault.ErrKeyMismatch, k2.ID},
			{v3, nil, k3.ID},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := openStore(t)
			for i, s := range tc.steps {
				err := s.v.Check(t.Context(), st)
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: Check with %v: %v, want %v", i, s.v, err, s.wantErr)
				}
				if err != nil && !strings.Contains(err.Error(), "vault key does not match the data: refusing to start") {
					t.Errorf("step %d: error %q does not say so clearly", i, err)
				}
				keyID, _, err := st.GetVaultCheck(t.Context())
				if err != nil || keyID != s.wantKeyID {
					t.Errorf("step %d: check value key %q, %v; want %q", i, keyID, err, s.wantKeyID)
				}
			}
		})
	}
}

// With no check value but stored connections, Check trusts the key only if
// a connection opens with it.
func TestCheckWithoutCheckValue(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	st, _ := openStore(t)
	put(t, st, newVault(t, k1), "alice", "acme", "calendar-api", "tok")
	err := newVault(t, k2).Check(t.Context(), st)
	if !errors.Is(err, vault.ErrKeyMismatch) {
		t.Fatalf("Check with another key over k1's connections: %v, want ErrKeyMismatch", err)
	}
	if _, _, err := st.GetVaultCheck(t.Context()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused Check wrote a check value: %v", err)
	}
	if err := newVault(t, k1).Check(t.Context(), st); err != nil {
		t.Fatalf("Check with the connections' key: %v", err)
	}
}

// racingStore lets another instance run its Check right after our write.
type racingStore struct {
	vault.CheckStore
	other    *vault.Vault
	real     store.Store
	otherErr *error
}

func (r racingStore) PutVaultCheck(ctx context.Context, keyID string, check []byte) error {
	if err := r.CheckStore.PutVaultCheck(ctx, keyID, check); err != nil {
		return err
	}
	*r.otherErr = r.other.Check(ctx, r.real)
	return nil
}

func TestCheckFirstStartRace(t *testing.T) {
	st, _ := openStore(t)
	v1, v2 := newVault(t, newKey(t)), newVault(t, newKey(t))
	// v2 starts at the same moment, after v1's write: it finds v1's value
	// and refuses; v1 reads back its own value and passes. One key wins.
	var otherErr error
	if err := v1.Check(t.Context(), racingStore{CheckStore: st, other: v2, real: st, otherErr: &otherErr}); err != nil {
		t.Fatalf("v1.Check: %v", err)
	}
	if !errors.Is(otherErr, vault.ErrKeyMismatch) {
		t.Fatalf("v2.Check right after v1's write: %v, want ErrKeyMismatch", otherErr)
	}
	if err := v2.Check(t.Context(), st); !errors.Is(err, vault.ErrKeyMismatch) {
		t.Fatalf("v2.Check after v1 won: %v, want ErrKeyMismatch", err)
	}
	// And the reverse: another instance replaces the value between our
	// write and our read-back.
	st2, _ := openStore(t)
	overwrite := overwritingStore{CheckStore: st2, other: v2}
	if err := v1.Check(t.Context(), overwrite); !errors.Is(err, vault.ErrKeyMismatch) {
		t.Fatalf("Check whose value was replaced by another key: %v, want ErrKeyMismatch", err)
	}
}

type overwritingStore struct {
	vault.CheckStore
	other *vault.Vault
}

func (o overwritingStore) PutVaultCheck(ctx context.Context, _ string, _ []byte) error {
	sealed, keyID, err := o.other.Seal([]byte("mcpgate vault check value v1"), []byte("mcpgate vault v1: check"))
	if err != nil {
		return err
	}
	return o.CheckStore.PutVaultCheck(ctx, keyID, sealed)
}

func TestRotate(t *testing.T) {
	ctx := t.Context()
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	v1, v2 := newVault(t, k1), newVault(t, k2)
	st, _ := openStore(t)
	if err := v1.Check(ctx, st); err != nil {
		t.Fatal(err)
	}
	want := map[[3]string]string{}
	for i, row := range [][3]string{
		{"alice", "acme", "calendar-api"},
		{"alice", "acme", "crm"},
		{"alice", "beta", "calendar-api"},
		{"bob", "acme", "calendar-api"},
		{"", "acme", "calendar-api"},
	} {
		plain := fmt.Sprintf("secret-%d", i)
		put(t, st, v1, row[0], row[1], row[2], plain)
		want[row] = plain
	}
	// One row is already sealed with the new key (a replica that had it).
	put(t, st, v2, "carol", "acme", "calendar-api", "secret-new")
	want[[3]string{"carol", "acme", "calendar-api"}] = "secret-new"

	// The wrong old key: refused before anything is written.
	if n, err := vault.Rotate(ctx, st, newVault(t, k3), v2); !errors.Is(err, vault.ErrKeyMismatch) || n != 0 {
		t.Fatalf("Rotate from the wrong key = %d, %v; want 0, ErrKeyMismatch", n, err)
	}
	if keyID, _, _ := st.GetVaultCheck(ctx); keyID != k1.ID {
		t.Fatalf("a refused rotation changed the check value to key %q", keyID)
	}

	n, err := vault.Rotate(ctx, st, v1, v2)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if n != 5 {
		t.Errorf("Rotate re-sealed %d connections, want 5", n)
	}
	conns, err := st.ListAllConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != len(want) {
		t.Fatalf("%d connections after rotation, want %d", len(conns), len(want))
	}
	for _, c := range conns {
		if c.KeyID != k2.ID {
			t.Errorf("%s/%s/%s: KeyID %q, want the new key %q", c.UserID, c.Tenant, c.Name, c.KeyID, k2.ID)
		}
		got, err := v2.OpenConnection(c) // the new key alone
		if err != nil || string(got) != want[[3]string{c.UserID, c.Tenant, c.Name}] {
			t.Errorf("%s/%s/%s with the new key alone: %q, %v", c.UserID, c.Tenant, c.Name, got, err)
		}
		if _, err := v1.OpenConnection(c); err == nil {
			t.Errorf("%s/%s/%s still opens with the old key", c.UserID, c.Tenant, c.Name)
		}
		if len(c.Scopes) != 1 || c.Kind != store.ConnectionOAuth2 {
			t.Errorf("%s/%s/%s: rotation changed other fields: %+v", c.UserID, c.Tenant, c.Name, c)
		}
	}
	// The new key alone now starts; the old one does not.
	if err := v2.Check(ctx, st); err != nil {
		t.Errorf("Check with the new key after rotation: %v", err)
	}
	if err := v1.Check(ctx, st); !errors.Is(err, vault.ErrKeyMismatch) {
		t.Errorf("Check with the old key after rotation: %v, want ErrKeyMismatch", err)
	}
	// Running it again finds nothing to do.
	if n, err := vault.Rotate(ctx, st, v1, v2); err != nil || n != 0 {
		t.Errorf("Rotate again = %d, %v; want 0, nil", n, err)
	}
	// A row that opens with no key given stops the rotation, naming the row.
	put(t, st, newVault(t, k3), "dave", "acme", "crm", "x")
	v4 := newVault(t, newKey(t))
	n, err = vault.Rotate(ctx, st, v2, v4)
	if !errors.Is(err, vault.ErrUnknownKey) || !strings.Contains(err.Error(), `"dave"`) {
		t.Errorf("Rotate over a row of an unknown key = %d, %v; want ErrUnknownKey naming the row", n, err)
	}
}

// What reaches the database is sealed: neither the store's bytes nor the
// database files hold the plaintext.
func TestNoPlaintextStored(t *testing.T) {
	ctx := t.Context()
	st, path := openStore(t)
	v := newVault(t, newKey(t))
	if err := v.Check(ctx, st); err != nil {
		t.Fatal(err)
	}
	secrets := []string{
		`{"access_token":"ya29.PLAINTEXT-ACCESS-TOKEN","refresh_token":"1//PLAINTEXT-REFRESH"}`,
		"sk_live_PLAINTEXT_API_KEY_0123456789",
	}
	for i, s := range secrets {
		c := put(t, st, v, "alice", "acme", fmt.Sprint("conn-", i), s)
		got, err := st.GetConnection(ctx, c.UserID, c.Tenant, c.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range []string{s, "PLAINTEXT"} {
			if bytes.Contains(got.Secret, []byte(part)) {
				t.Errorf("stored secret %d contains %q", i, part)
			}
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(path + "*") // the database, its WAL and shm
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("PLAINTEXT")) || bytes.Contains(b, []byte("mcpgate vault check value")) {
			t.Errorf("%s holds plaintext", filepath.Base(f))
		}
	}
}
