// Package vault keeps downstream credentials (the gateway's connections:
// OAuth tokens, API keys) encrypted at rest, with envelope encryption.
//
// A master key (Key: 32 bytes from a file with mode 0600 or an environment
// variable, see LoadKey) never encrypts data itself. Each record gets a fresh
// random 256-bit data key that seals the plaintext with AES-256-GCM; the data
// key is wrapped with AES-256-GCM under the key-encryption key derived from
// the master key (HKDF-SHA256), and both travel in the record:
//
//	version (1 byte, 1) | key ID (8) | wrapped data key (12 nonce + 32 + 16 tag) | nonce (12) | ciphertext | tag (16)
//
// Every record is bound to caller data (aad, for a connection its user,
// tenant and name: AAD), so a sealed value copied to another row does not
// open. The key ID (derived from the key, not the key) lets Open pick the
// key; a Vault opens with its current key and any older keys it was given,
// which is the rotation window: start every replica with the new key and the
// old one as older, run Rotate (mcpgate keys rotate-vault), then drop the old
// key.
//
// Check runs at start-up against a check value kept in the store, so a
// wrong key refuses to start instead of failing on every credential later.
// Plaintext and keys never appear in errors; Key formats as its ID.
//
// The store (internal/store) keeps connections as opaque bytes; refreshing
// and handing out credentials builds on this package.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/mcpgate/mcpgate/internal/store"
)

// Errors of Open, Check and Rotate; test with errors.Is.
var (
	// ErrDecrypt: the record does not open: another record's aad, a
	// tampered or truncated value, or a key with the right ID that is not
	// the right key.
	ErrDecrypt = errors.New("vault: cannot decrypt (wrong key, wrong record, or damaged data)")
	// ErrUnknownKey: the record was sealed with a key this Vault does not
	// hold (neither the current key nor an older one).
	ErrUnknownKey = errors.New("vault: sealed with a key this vault does not have")
	// ErrKeyMismatch: Check found data sealed with another key.
	ErrKeyMismatch = errors.New("vault key does not match the data: refusing to start")
)

const (
	version1    = 1
	gcmNonce    = 12
	gcmTag      = 16
	wrappedSize = gcmNonce + KeySize + gcmTag
	headerSize  = 1 + idSize               // version, key ID
	envelopeEnd = headerSize + wrappedSize // where the sealed plaintext starts
	// Overhead is how many bytes Seal adds to the plaintext.
	Overhead = envelopeEnd + gcmNonce + gcmTag
)

// Vault seals and opens records. It is safe for concurrent use.
type Vault struct {
	current *kek
	keks    map[[idSize]byte]*kek // current and older keys, by ID
}

// kek is one master key, ready to wrap and unwrap data keys.
type kek struct {
	id   [idSize]byte
	aead cipher.AEAD // AES-256-GCM with a random nonce, under the derived key-encryption key
}

// New returns a vault that seals with key and opens with key or any of
// older (the keys of a rotation window).
func New(key Key, older ...Key) (*Vault, error) {
	cur, err := newKEK(key)
	if err != nil {
		return nil, err
	}
	v := &Vault{current: cur, keks: map[[idSize]byte]*kek{cur.id: cur}}
	for _, k := range older {
		o, err := newKEK(k)
		if err != nil {
			return nil, fmt.Errorf("%w (an older key)", err)
		}
		if _, dup := v.keks[o.id]; !dup {
			v.keks[o.id] = o
		}
	}
	return v, nil
}

func newKEK(k Key) (*kek, error) {
	if len(k.secret) != KeySize {
		return nil, errors.New("vault: no key (use LoadKey, ParseKey or GenerateKey)")
	}
	var id [idSize]byte
	if n, err := hex.Decode(id[:], []byte(k.ID)); err != nil || n != idSize {
		return nil, errors.New("vault: malformed key ID")
	}
	kk, err := hkdf.Key(sha256.New, k.secret, nil, infoKEK, KeySize)
	if err != nil {
		return nil, fmt.Errorf("vault: derive key: %w", err)
	}
	defer clear(kk)
	aead, err := randomNonceGCM(kk)
	if err != nil {
		return nil, err
	}
	return &kek{id: id, aead: aead}, nil
}

// randomNonceGCM is AES-256-GCM that draws a random 96-bit nonce per
// message and puts it in front of the ciphertext.
func randomNonceGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return aead, nil
}

// KeyID returns the ID of the current key (the one Seal uses).
func (v *Vault) KeyID() string { return hex.EncodeToString(v.current.id[:]) }

// String names the current key, never a key itself.
func (v *Vault) String() string { return "vault(" + v.KeyID() + ")" }

// Seal encrypts plaintext under a new data key, bound to aad (which Open
// must be given again; it is authenticated, not stored), and returns the
// sealed record and the ID of the key that wrapped the data key.
func (v *Vault) Seal(plaintext, aad []byte) (ciphertext []byte, keyID string, err error) {
	dek := make([]byte, KeySize)
	defer clear(dek)
	if _, err := rand.Read(dek); err != nil {
		return nil, "", fmt.Errorf("vault: data key: %w", err)
	}
	data, err := randomNonceGCM(dek)
	if err != nil {
		return nil, "", err
	}
	out := make([]byte, 0, Overhead+len(plaintext))
	out = append(out, version1)
	out = append(out, v.current.id[:]...)
	out = v.current.aead.Seal(out, nil, dek, concat(out[:headerSize], aad))
	if len(out) != envelopeEnd { // cannot happen
		return nil, "", errors.New("vault: internal error: wrapped data key has the wrong size")
	}
	out = data.Seal(out, nil, plaintext, concat(out[:envelopeEnd], aad))
	return out, v.KeyID(), nil
}

// Open decrypts what Seal sealed with the same aad, with the current key or
// an older one.
func (v *Vault) Open(ciphertext, aad []byte) ([]byte, error) {
	k, err := v.kekOf(ciphertext)
	if err != nil {
		return nil, err
	}
	dek, err := k.aead.Open(nil, nil, ciphertext[headerSize:envelopeEnd], concat(ciphertext[:headerSize], aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	defer clear(dek)
	data, err := randomNonceGCM(dek)
	if err != nil {
		return nil, err
	}
	plain, err := data.Open(nil, nil, ciphertext[envelopeEnd:], concat(ciphertext[:envelopeEnd], aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}

// kekOf checks a record's header and returns the key that wrapped it.
func (v *Vault) kekOf(ciphertext []byte) (*kek, error) {
	id, err := keyIDOf(ciphertext)
	if err != nil {
		return nil, err
	}
	k, ok := v.keks[id]
	if !ok {
		return nil, fmt.Errorf("%w (key %x)", ErrUnknownKey, id)
	}
	return k, nil
}

// keyIDOf reads the key ID of a sealed record.
func keyIDOf(ciphertext []byte) ([idSize]byte, error) {
	var id [idSize]byte
	if len(ciphertext) == 0 {
		return id, fmt.Errorf("%w: empty", ErrDecrypt)
	}
	if ciphertext[0] != version1 {
		return id, fmt.Errorf("%w: unknown format version %d", ErrDecrypt, ciphertext[0])
	}
	if len(ciphertext) < Overhead {
		return id, fmt.Errorf("%w: truncated", ErrDecrypt)
	}
	copy(id[:], ciphertext[1:headerSize])
	return id, nil
}

// sealedWithCurrent tells whether a record's data key is wrapped by the
// current key (so rotating it would change nothing).
func (v *Vault) sealedWithCurrent(ciphertext []byte) bool {
	id, err := keyIDOf(ciphertext)
	return err == nil && id == v.current.id
}

// concat returns a new slice holding a then b (never aliasing a's array,
// which Seal is still appending to).
func concat(a, b []byte) []byte {
	out := make([]byte, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

// ---------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------

const aadConnection = "mcpgate vault v1: connection"

// AAD is the additional data that binds a connection's secret to its row
// (user, tenant, name), encoded without ambiguity (length-prefixed), so a
// secret moved to another row does not open.
func AAD(userID, tenant, name string) []byte {
	b := make([]byte, 0, len(aadConnection)+len(userID)+len(tenant)+len(name)+3*binary.MaxVarintLen64)
	b = append(b, aadConnection...)
	for _, f := range []string{userID, tenant, name} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// SealConnection seals plaintext for c: it sets c.Secret and c.KeyID,
// bound to c's UserID, Tenant and Name.
func (v *Vault) SealConnection(c *store.Connection, plaintext []byte) error {
	sealed, keyID, err := v.Seal(plaintext, AAD(c.UserID, c.Tenant, c.Name))
	if err != nil {
		return err
	}
	c.Secret, c.KeyID = sealed, keyID
	return nil
}

// OpenConnection opens c.Secret.
func (v *Vault) OpenConnection(c store.Connection) ([]byte, error) {
	plain, err := v.Open(c.Secret, AAD(c.UserID, c.Tenant, c.Name))
	if err != nil {
		return nil, fmt.Errorf("%w (connection %q of user %q in tenant %q)", err, c.Name, c.UserID, c.Tenant)
	}
	return plain, nil
}

// union returns a vault that seals with v's current key and opens with
// every key of v and of others.
func (v *Vault) union(others ...*Vault) *Vault {
	u := &Vault{current: v.current, keks: make(map[[idSize]byte]*kek, len(v.keks))}
	for _, w := range append([]*Vault{v}, others...) {
		if w == nil {
			continue
		}
		for id, k := range w.keks {
			if _, dup := u.keks[id]; !dup {
				u.keks[id] = k
			}
		}
	}
	return u
}
