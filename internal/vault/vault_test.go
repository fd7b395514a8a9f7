package vault_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/vault"
)

func newKey(t *testing.T) vault.Key {
	t.Helper()
	k, err := vault.GenerateKey()
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	return k
}

func newVault(t *testing.T, key vault.Key, older ...vault.Key) *vault.Vault {
	t.Helper()
	v, err := vault.New(key, older...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

func TestSealOpen(t *testing.T) {
	k := newKey(t)
	v := newVault(t, k)
	large := make([]byte, 1<<20)
	_, _ = rand.Read(large)
	for _, tc := range []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"token", []byte(`{"access_token":"at-123","refresh_token":"rt-456"}`), vault.AAD("alice", "acme", "calendar-api")},
		{"empty plaintext", []byte{}, vault.AAD("alice", "acme", "calendar-api")},
		{"nil plaintext", nil, []byte("x")},
		{"no aad", []byte("api-key-789"), nil},
		{"binary", []byte{0, 1, 2, 0xff, 0xfe}, []byte{0}},
		{"large", large, vault.AAD("", "acme", "shared")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, keyID, err := v.Seal(tc.plaintext, tc.aad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if keyID != k.ID || keyID != v.KeyID() {
				t.Errorf("Seal key ID = %q, want %q (and KeyID() %q)", keyID, k.ID, v.KeyID())
			}
			if want := len(tc.plaintext) + vault.Overhead; len(sealed) != want {
				t.Errorf("len(sealed) = %d, want %d", len(sealed), want)
			}
			if len(tc.plaintext) >= 4 && bytes.Contains(sealed, tc.plaintext) {
				t.Error("the sealed value contains the plaintext")
			}
			got, err := v.Open(sealed, tc.aad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Errorf("Open = %d bytes, want the %d sealed", len(got), len(tc.plaintext))
			}
			again, _, err := v.Seal(tc.plaintext, tc.aad)
			if err != nil {
				t.Fatalf("Seal again: %v", err)
			}
			if bytes.Equal(again, sealed) {
				t.Error("sealing twice gave the same bytes (no fresh data key / nonce)")
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	v1 := newVault(t, k1)
	plain := []byte("refresh-token-secret-value")
	aad := vault.AAD("alice", "acme", "calendar-api")
	sealed, _, err := v1.Seal(plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	n := len(sealed)
	for _, tc := range []struct {
		name   string
		v      *vault.Vault
		sealed []byte
		aad    []byte
		want   error
	}{
		{"wrong aad: other user", v1, sealed, vault.AAD("bob", "acme", "calendar-api"), vault.ErrDecrypt},
		{"wrong aad: other tenant", v1, sealed, vault.AAD("alice", "beta", "calendar-api"), vault.ErrDecrypt},
		{"wrong aad: other name", v1, sealed, vault.AAD("alice", "acme", "crm"), vault.ErrDecrypt},
		{"wrong aad: tenant-wide", v1, sealed, vault.AAD("", "acme", "calendar-api"), vault.ErrDecrypt},
		{"wrong aad: shifted fields", v1, sealed, vault.AAD("alic", "eacme", "calendar-api"), vault.ErrDecrypt},
		{"wrong aad: none", v1, sealed, nil, vault.ErrDecrypt},
		{"wrong key", newVault(t, k2), sealed, aad, vault.ErrUnknownKey},
		{"tampered version", v1, flip(0), aad, vault.ErrDecrypt},
		{"tampered key ID", v1, flip(3), aad, vault.ErrUnknownKey},
		{"tampered wrap nonce", v1, flip(9), aad, vault.ErrDecrypt},
		{"tampered wrapped key", v1, flip(30), aad, vault.ErrDecrypt},
		{"tampered wrap tag", v1, flip(9 + 12 + 32 + 3), aad, vault.ErrDecrypt},
		{"tampered data nonce", v1, flip(9 + 60 + 1), aad, vault.ErrDecrypt},
		{"tampered ciphertext", v1, flip(9 + 60 + 12 + 2), aad, vault.ErrDecrypt},
		{"tampered tag", v1, flip(n - 1), aad, vault.ErrDecrypt},
		{"truncated", v1, sealed[:n-1], aad, vault.ErrDecrypt},
		{"truncated to the envelope", v1, sealed[:vault.Overhead-1], aad, vault.ErrDecrypt},
		{"extended", v1, append(bytes.Clone(sealed), 0), aad, vault.ErrDecrypt},
		{"empty", v1, nil, aad, vault.ErrDecrypt},
		{"plaintext stored as is", v1, plain, aad, vault.ErrDecrypt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.v.Open(tc.sealed, tc.aad)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %q, %v; want %v", got, err, tc.want)
			}
			if got != nil {
				t.Errorf("Open returned %d bytes with its error", len(got))
			}
			if strings.Contains(err.Error(), string(plain)) || strings.Contains(err.Error(), "alice") {
				t.Errorf("error %q shows the plaintext or the aad", err)
			}
		})
	}
}

// Rotation window: a vault with the new key and the old one as older opens
// both and seals with the new one; without the old key, old records do not
// open.
func TestOlderKeys(t *testing.T) {
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	aad := []byte("row")
	old, _, err := newVault(t, k1).Seal([]byte("old secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	v := newVault(t, k2, k1, k3, k1, k2) // duplicates are harmless
	got, err := v.Open(old, aad)
	if err != nil || string(got) != "old secret" {
		t.Fatalf("Open(old record) with the old key as older = %q, %v", got, err)
	}
	sealed, keyID, err := v.Seal([]byte("new secret"), aad)
	if err != nil || keyID != k2.ID {
		t.Fatalf("Seal = key %q, %v; want the current key %q", keyID, err, k2.ID)
	}
	if got, err := newVault(t, k2).Open(sealed, aad); err != nil || string(got) != "new secret" {
		t.Errorf("Open(new record) with the new key only = %q, %v", got, err)
	}
	if _, err := newVault(t, k2).Open(old, aad); !errors.Is(err, vault.ErrUnknownKey) {
		t.Errorf("Open(old record) with the new key only: %v, want ErrUnknownKey", err)
	}
	if _, err := newVault(t, k1).Open(sealed, aad); !errors.Is(err, vault.ErrUnknownKey) {
		t.Errorf("Open(new record) with the old key only: %v, want ErrUnknownKey", err)
	}
}

func TestNewRefusesZeroKey(t *testing.T) {
	if _, err := vault.New(vault.Key{}); err == nil {
		t.Error("New(zero Key): no error")
	}
	if _, err := vault.New(newKey(t), vault.Key{ID: "0011223344556677"}); err == nil {
		t.Error("New with a zero older Key: no error")
	}
}

func TestConnection(t *testing.T) {
	v := newVault(t, newKey(t))
	c := store.Connection{UserID: "alice", Tenant: "acme", Name: "calendar-api", Kind: store.ConnectionOAuth2}
	if err := v.SealConnection(&c, []byte("tok")); err != nil {
		t.Fatal(err)
	}
	if c.KeyID != v.KeyID() || len(c.Secret) == 0 {
		t.Fatalf("SealConnection left KeyID %q, %d secret bytes", c.KeyID, len(c.Secret))
	}
	if got, err := v.OpenConnection(c); err != nil || string(got) != "tok" {
		t.Fatalf("OpenConnection = %q, %v", got, err)
	}
	// The secret is bound to its row: copied to another, it does not open.
	moved := c
	moved.UserID = "mallory"
	if _, err := v.OpenConnection(moved); !errors.Is(err, vault.ErrDecrypt) {
		t.Errorf("OpenConnection of a secret moved to another user: %v, want ErrDecrypt", err)
	}
	// AAD is unambiguous.
	if bytes.Equal(vault.AAD("a", "bc", "d"), vault.AAD("ab", "c", "d")) || bytes.Equal(vault.AAD("", "a", "b"), vault.AAD("a", "", "b")) {
		t.Error("AAD of different rows is equal")
	}
}
