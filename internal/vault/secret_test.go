package vault_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store/sqlite"
	"github.com/mcpgate/mcpgate/internal/vault"
)

// TestSecretSurvivesAndRotates: a secret is generated once, read back the
// same by a second vault over the same store, never stored in the clear,
// and re-sealed with the new key after a key rotation.
func TestSecretSurvivesAndRotates(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k1, _ := vault.GenerateKey()
	v1, _ := vault.New(k1)
	a, err := v1.Secret(ctx, st, "session", 32)
	if err != nil || len(a) != 32 {
		t.Fatalf("Secret: %d bytes, %v", len(a), err)
	}
	again, _ := vault.New(k1)
	b, err := again.Secret(ctx, st, "session", 32)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("second read differs (%v)", err)
	}
	row, _ := st.GetSealedSecret(ctx, "session")
	if bytes.Contains(row.Value, a) || row.KeyID != k1.ID {
		t.Fatalf("stored row holds the secret in the clear or names key %q", row.KeyID)
	}
	k2, _ := vault.GenerateKey()
	v2, _ := vault.New(k2, k1)
	c, err := v2.Secret(ctx, st, "session", 32)
	if err != nil || !bytes.Equal(a, c) {
		t.Fatalf("after rotation: %v", err)
	}
	row, _ = st.GetSealedSecret(ctx, "session")
	if row.KeyID != k2.ID || !v2.SealedWithCurrent(row.Value) {
		t.Errorf("not re-sealed with the new key: %q", row.KeyID)
	}
	only2, _ := vault.New(k2)
	if _, err := only2.Secret(ctx, st, "session", 32); err != nil {
		t.Errorf("the old key is no longer needed: %v", err)
	}
	wrong, _ := vault.GenerateKey()
	vw, _ := vault.New(wrong)
	if _, err := vw.Secret(ctx, st, "session", 32); err == nil {
		t.Error("a wrong key opened the secret")
	}
}
