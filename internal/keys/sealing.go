package keys

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mcpgate/mcpgate/internal/store"
)

// Private keys at rest (audit finding 11). A stored key's Private is
// either a sealed value (the vault's format, which starts with its
// version byte) or, from versions before sealing, a private JWK in clear
// JSON (which starts with "{"). Keys are read in either form; with a
// Sealer, Init seals every clear one and re-seals those an older vault key
// sealed, so a database copy alone no longer yields a signing key.

const aadSigningKey = "mcpgate signing key v1"

// signingKeyAAD binds a sealed private key to its kid, so a value copied
// to another row does not open.
func signingKeyAAD(kid string) []byte {
	b := binary.AppendUvarint([]byte(aadSigningKey), uint64(len(kid)))
	return append(b, kid...)
}

// isClear tells a private key stored as clear JSON.
func isClear(private []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(private, " \t\r\n"), []byte("{"))
}

// sealRecord seals r's private key (unchanged without a sealer).
func sealRecord(s Sealer, r store.SigningKey) (store.SigningKey, error) {
	if s == nil || !isClear(r.Private) {
		return r, nil
	}
	sealed, _, err := s.Seal(r.Private, signingKeyAAD(r.ID))
	if err != nil {
		return r, fmt.Errorf("keys: seal private key %s: %w", r.ID, err)
	}
	r.Private = sealed
	return r, nil
}

// openRecord returns r with its private key in clear JSON.
func openRecord(s Sealer, r store.SigningKey) (store.SigningKey, error) {
	if isClear(r.Private) {
		return r, nil
	}
	if s == nil {
		return r, errors.New("the private key is sealed and no vault key was given")
	}
	plain, err := s.Open(r.Private, signingKeyAAD(r.ID))
	if err != nil {
		return r, fmt.Errorf("open sealed private key: %w", err)
	}
	r.Private = plain
	return r, nil
}

// parse opens and decodes a stored key.
func (m *Manager) parse(r store.SigningKey) (SigningKey, error) {
	r, err := openRecord(m.opts.Sealer, r)
	if err != nil {
		return SigningKey{}, err
	}
	return parseRecord(r)
}

// sealStored seals every key stored in the clear and re-seals every key
// an older vault key sealed (a no-op without a Sealer).
func (m *Manager) sealStored(ctx context.Context) error {
	s := m.opts.Sealer
	if s == nil {
		return nil
	}
	recs, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	n := 0
	for _, r := range recs {
		if !isClear(r.Private) && s.SealedWithCurrent(r.Private) {
			continue
		}
		err := m.store.UpdateSigningKey(ctx, r.ID, func(cur store.SigningKey) (store.SigningKey, error) {
			open, err := openRecord(s, cur)
			if err != nil {
				return cur, err
			}
			return sealRecord(s, open)
		})
		if err != nil {
			// Unreadable with the vault's keys: Reload skips it as
			// unusable, and Init makes a new key if none is left.
			if !errors.Is(err, store.ErrNotFound) {
				m.opts.Logger.Error("cannot seal stored signing key", "kid", r.ID, "err", err)
			}
			continue
		}
		n++
	}
	if n > 0 {
		m.opts.Logger.Info("sealed stored signing keys with the vault key", "count", n)
		return m.Reload(ctx)
	}
	return nil
}
