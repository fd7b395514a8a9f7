package vault

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mcpgate/mcpgate/internal/store"
)

// SecretStore is what Secret needs of the store (store.Store has it).
type SecretStore interface {
	CreateSealedSecret(ctx context.Context, s store.SealedSecret) error
	GetSealedSecret(ctx context.Context, name string) (store.SealedSecret, error)
	UpdateSealedSecret(ctx context.Context, name string, update func(store.SealedSecret) (store.SealedSecret, error)) error
}

const aadSecret = "mcpgate vault v1: secret"

// SecretAAD binds a sealed secret to its name, so a value copied to
// another name does not open.
func SecretAAD(name string) []byte {
	b := binary.AppendUvarint([]byte(aadSecret), uint64(len(name)))
	return append(b, name...)
}

// Secret returns the secret called name: size random bytes generated on
// first use and kept in st sealed with the vault key, so every restart and
// every replica sharing the store (and the vault key) gets the same one.
// Replicas starting together race to create it; the losers read the
// winner's. A value sealed with an older key of the rotation window is
// sealed again with the current key.
func (v *Vault) Secret(ctx context.Context, st SecretStore, name string, size int) ([]byte, error) {
	x, err := st.GetSealedSecret(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		if err := v.createSecret(ctx, st, name, size); err != nil {
			return nil, err
		}
		x, err = st.GetSealedSecret(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("vault: read secret %q: %w", name, err)
	}
	plain, err := v.Open(x.Value, SecretAAD(name))
	if err != nil {
		return nil, fmt.Errorf("vault: secret %q: %w", name, err)
	}
	if !v.sealedWithCurrent(x.Value) {
		if err := v.resealSecret(ctx, st, name); err != nil {
			return nil, err
		}
	}
	return plain, nil
}

func (v *Vault) createSecret(ctx context.Context, st SecretStore, name string, size int) error {
	plain := make([]byte, size)
	defer clear(plain)
	if _, err := rand.Read(plain); err != nil {
		return fmt.Errorf("vault: generate secret %q: %w", name, err)
	}
	sealed, keyID, err := v.Seal(plain, SecretAAD(name))
	if err != nil {
		return err
	}
	err = st.CreateSealedSecret(ctx, store.SealedSecret{Name: name, KeyID: keyID, Value: sealed})
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("vault: store secret %q: %w", name, err)
	}
	return nil
}

func (v *Vault) resealSecret(ctx context.Context, st SecretStore, name string) error {
	err := st.UpdateSealedSecret(ctx, name, func(x store.SealedSecret) (store.SealedSecret, error) {
		plain, err := v.Open(x.Value, SecretAAD(name))
		if err != nil {
			return x, err
		}
		defer clear(plain)
		x.Value, x.KeyID, err = v.Seal(plain, SecretAAD(name))
		return x, err
	})
	if err != nil {
		return fmt.Errorf("vault: re-seal secret %q: %w", name, err)
	}
	return nil
}

// SealedWithCurrent reports whether a sealed value's data key is wrapped
// by the current key (false: an older key of the rotation window sealed
// it, or it is not a sealed value at all).
func (v *Vault) SealedWithCurrent(ciphertext []byte) bool { return v.sealedWithCurrent(ciphertext) }

// Union returns a vault that seals with v's current key and opens with
// every key of v and of others (a rotation: the new vault, then the old).
func (v *Vault) Union(others ...*Vault) *Vault { return v.union(others...) }
