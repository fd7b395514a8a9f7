package keys

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/vault"
)

func testVault(t *testing.T, older ...vault.Key) (*vault.Vault, vault.Key) {
	t.Helper()
	k, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(k, older...)
	if err != nil {
		t.Fatal(err)
	}
	return v, k
}

// TestPrivateKeysSealedAtRest: a key created with a sealer is stored
// sealed, never as a clear JWK, and a second manager over the same store
// (a restart) signs with it (audit finding 11).
func TestPrivateKeysSealedAtRest(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	v, _ := testVault(t)
	m := New(st, &Options{Sealer: v})
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ := st.ListSigningKeys(ctx)
	if len(recs) != 1 || isClear(recs[0].Private) || bytes.Contains(recs[0].Private, []byte(`"d"`)) {
		t.Fatalf("stored private key is not sealed: %q", recs[0].Private)
	}
	first, _ := m.Signing()
	again := New(st, &Options{Sealer: v})
	if err := again.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if k, err := again.Signing(); err != nil || k.ID != first.ID {
		t.Fatalf("after restart signs with %q (%v), want %q", k.ID, err, first.ID)
	}
	if len(mustList(t, st)) != 1 {
		t.Error("a restart created another key instead of opening the sealed one")
	}
	// Rotation seals too.
	if _, err := Rotate(ctx, st, time.Now(), &Options{Sealer: v}); err != nil {
		t.Fatal(err)
	}
	for _, r := range mustList(t, st) {
		if isClear(r.Private) {
			t.Errorf("rotated key %s stored in the clear", r.ID)
		}
	}
}

// TestClearKeysSealedOnStart is the migration path: keys an older version
// stored as clear JSON are read, then sealed in place on start; keys an
// older vault key sealed are re-sealed with the current one.
func TestClearKeysSealedOnStart(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	old := New(st, nil) // before sealing
	if err := old.Init(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := old.Signing()
	if !isClear(mustList(t, st)[0].Private) {
		t.Fatal("setup: the old manager sealed its key")
	}
	v1, k1 := testVault(t)
	m := New(st, &Options{Sealer: v1, Logger: slog.New(slog.DiscardHandler)})
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	recs := mustList(t, st)
	if len(recs) != 1 || isClear(recs[0].Private) {
		t.Fatalf("clear key not sealed on start (%d keys)", len(recs))
	}
	if k, _ := m.Signing(); k.ID != before.ID {
		t.Errorf("signs with %q, want the migrated %q", k.ID, before.ID)
	}
	v2, _ := testVault(t, k1)
	m2 := New(st, &Options{Sealer: v2})
	if err := m2.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if r := mustList(t, st)[0]; !v2.SealedWithCurrent(r.Private) {
		t.Error("key sealed with the older vault key was not re-sealed")
	}
	if k, _ := m2.Signing(); k.ID != before.ID {
		t.Errorf("after vault rotation signs with %q, want %q", k.ID, before.ID)
	}
}

func mustList(t *testing.T, st *memStore) []store.SigningKey {
	t.Helper()
	recs, err := st.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
