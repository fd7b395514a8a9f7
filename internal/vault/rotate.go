package vault

import (
	"context"
	"errors"
	"fmt"

	"github.com/mcpgate/mcpgate/internal/store"
)

// RotateStore is what Rotate needs of the store (store.Store has it).
type RotateStore interface {
	CheckStore
	UpdateConnection(ctx context.Context, userID, tenant, name string, update func(store.Connection) (store.Connection, error)) error
}

// errUnchanged ends an update that has nothing to do.
var errUnchanged = errors.New("unchanged")

// Rotate seals every connection secret again with to's current key, each
// in its own atomic UpdateConnection, opening it with any key of from (the
// old keys; may be nil) or of to; then it re-seals the check value, so that
// a vault with only the new key passes Check. It returns how many
// connections it re-sealed; those already sealed with the new key are left
// alone, so an interrupted rotation can simply run again. It first checks
// that the keys fit the data (ErrKeyMismatch otherwise) and writes nothing
// then. Running replicas should already hold the new key (as current, the
// old one as older) so they do not seal new secrets with the old key.
func Rotate(ctx context.Context, st RotateStore, from, to *Vault) (int, error) {
	if to == nil {
		return 0, errors.New("vault: rotate: no new key")
	}
	all := to.union(from)
	checkID, check, err := st.GetVaultCheck(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return 0, fmt.Errorf("vault: rotate: read the check value: %w", err)
	default:
		if err := all.verify(check); err != nil {
			return 0, fmt.Errorf("vault: rotate: %w", all.mismatch(checkID, reason(err)))
		}
	}

	conns, err := st.ListAllConnections(ctx)
	if err != nil {
		return 0, fmt.Errorf("vault: rotate: list connections: %w", err)
	}
	n := 0
	for _, c := range conns {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("vault: rotate: %w", err)
		}
		if all.sealedWithCurrent(c.Secret) {
			continue
		}
		err := st.UpdateConnection(ctx, c.UserID, c.Tenant, c.Name, func(c store.Connection) (store.Connection, error) {
			if all.sealedWithCurrent(c.Secret) { // rotated meanwhile
				return c, errUnchanged
			}
			plain, err := all.OpenConnection(c)
			if err != nil {
				return c, err
			}
			defer clear(plain)
			err = all.SealConnection(&c, plain)
			return c, err
		})
		switch {
		case err == nil:
			n++
		case errors.Is(err, errUnchanged), errors.Is(err, store.ErrNotFound): // deleted meanwhile
		default:
			return n, fmt.Errorf("vault: rotate: %w", err)
		}
	}
	if err := to.writeCheck(ctx, st); err != nil {
		return n, fmt.Errorf("vault: rotate: %w", err)
	}
	return n, nil
}
