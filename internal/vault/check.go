package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/internal/store"
)

// CheckStore is what Check needs of the store (store.Store has it).
type CheckStore interface {
	GetVaultCheck(ctx context.Context) (keyID string, check []byte, err error)
	PutVaultCheck(ctx context.Context, keyID string, check []byte) error
	// ListAllConnections lets Check refuse a key when the check value is
	// missing but sealed connections exist.
	ListAllConnections(ctx context.Context) ([]store.Connection, error)
}

// The check value: a known plaintext under its own aad (which no
// connection's AAD can equal).
var (
	checkPlain = []byte("mcpgate vault check value v1")
	checkAAD   = []byte("mcpgate vault v1: check")
)

// Check makes sure the vault's keys fit the data in st; run it at start-up
// and refuse to start on an error. On the first start (no check value yet)
// it writes one sealed with the current key; later the value must open with
// the current key, or an older one, in which case it is sealed again with
// the current key. A wrong key is ErrKeyMismatch ("vault key does not match
// the data: refusing to start"), with the key IDs involved.
func (v *Vault) Check(ctx context.Context, st CheckStore) error {
	keyID, check, err := st.GetVaultCheck(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return v.firstCheck(ctx, st)
	}
	if err != nil {
		return fmt.Errorf("vault: read the check value: %w", err)
	}
	if err := v.verify(check); err != nil {
		return v.mismatch(keyID, reason(err))
	}
	if v.sealedWithCurrent(check) {
		return nil
	}
	return v.writeCheck(ctx, st)
}

// firstCheck writes the first check value, after making sure no existing
// connection says the key is wrong, and reads it back (another replica
// starting at the same moment with another key may have written its own).
func (v *Vault) firstCheck(ctx context.Context, st CheckStore) error {
	conns, err := st.ListAllConnections(ctx)
	if err != nil {
		return fmt.Errorf("vault: list connections: %w", err)
	}
	if len(conns) > 0 && !slices.ContainsFunc(conns, func(c store.Connection) bool {
		_, err := v.OpenConnection(c)
		return err == nil
	}) {
		return v.mismatch(conns[0].KeyID, fmt.Sprintf("no check value, and none of the %d stored connections opens", len(conns)))
	}
	if err := v.writeCheck(ctx, st); err != nil {
		return err
	}
	keyID, check, err := st.GetVaultCheck(ctx)
	if err != nil {
		return fmt.Errorf("vault: read the check value back: %w", err)
	}
	if err := v.verify(check); err != nil {
		return v.mismatch(keyID, "another instance wrote its check value at the same time")
	}
	return nil
}

// verify opens a check value.
func (v *Vault) verify(check []byte) error {
	plain, err := v.Open(check, checkAAD)
	if err != nil {
		return err
	}
	if !bytes.Equal(plain, checkPlain) {
		return ErrDecrypt
	}
	return nil
}

func (v *Vault) writeCheck(ctx context.Context, st CheckStore) error {
	sealed, keyID, err := v.Seal(checkPlain, checkAAD)
	if err != nil {
		return err
	}
	if err := st.PutVaultCheck(ctx, keyID, sealed); err != nil {
		return fmt.Errorf("vault: write the check value: %w", err)
	}
	return nil
}

// reason explains why a check value did not open, unless it is only that
// its key is not configured (which mismatch says already).
func reason(err error) string {
	if errors.Is(err, ErrUnknownKey) {
		return ""
	}
	return "the check value does not open: " + err.Error()
}

// mismatch is ErrKeyMismatch naming the keys (by ID).
func (v *Vault) mismatch(storedID, why string) error {
	var ids []string
	for id := range v.keks {
		if id != v.current.id {
			ids = append(ids, fmt.Sprintf("%x", id))
		}
	}
	slices.Sort(ids)
	msg := fmt.Sprintf("the data was sealed with vault key %q; configured: key %s", storedID, v.KeyID())
	if len(ids) > 0 {
		msg += ", older keys " + strings.Join(ids, ", ")
	}
	if why != "" {
		msg += "; " + why
	}
	return fmt.Errorf("%w (%s)", ErrKeyMismatch, msg)
}
