// Package seal turns small values into opaque, tamper-proof strings and
// back (AES-256-GCM, key derived once with HKDF-SHA256). mcpgate uses it
// for state it hands to clients instead of keeping it in memory: session
// ids, pending authorization requests, sign-in cookies. Any replica with
// the same secret can open what another sealed.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// ErrInvalid is the one error for anything that does not open: forged,
// truncated, sealed for another purpose or context, or expired.
var ErrInvalid = errors.New("invalid or expired")

// Box seals values for one purpose.
type Box struct {
	aead cipher.AEAD
	now  func() time.Time
}

// New derives a box for purpose from secret. An empty secret gives a
// random key: what it seals opens only in this process.
func New(secret []byte, purpose string) (*Box, error) {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "mcpgate seal v1: "+purpose, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead, now: time.Now}, nil
}

// WithClock returns a box that reads time from now (tests).
func (b *Box) WithClock(now func() time.Time) *Box {
	c := *b
	c.now = now
	return &c
}

var strictEncoding = base64.RawURLEncoding.Strict()

type envelope struct {
	Exp int64           `json:"e,omitempty"`
	V   json.RawMessage `json:"v"`
}

// Seal encodes v, valid for ttl (0: no expiry), bound to context (which
// must be given again to Open; it is authenticated, not stored).
func (b *Box) Seal(v any, ttl time.Duration, context string) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	env := envelope{V: raw}
	if ttl > 0 {
		env.Exp = b.now().Add(ttl).Unix()
	}
	plain, err := json.Marshal(env)
	if err != nil {
		return "", err
	}
	ns := b.aead.NonceSize()
	out := make([]byte, ns, ns+len(plain)+b.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return "", err
	}
	out = b.aead.Seal(out, out[:ns], plain, []byte(context))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decodes a sealed string into v.
func (b *Box) Open(s, context string, v any) error {
	// Strict: one encoding per sealed value (no ignored trailing bits),
	// so any change to the string is a change to the ciphertext.
	raw, err := strictEncoding.DecodeString(s)
	ns := b.aead.NonceSize()
	if err != nil || len(raw) < ns+b.aead.Overhead() {
		return ErrInvalid
	}
	plain, err := b.aead.Open(nil, raw[:ns], raw[ns:], []byte(context))
	if err != nil {
		return ErrInvalid
	}
	var env envelope
	if json.Unmarshal(plain, &env) != nil {
		return ErrInvalid
	}
	if env.Exp != 0 && b.now().Unix() > env.Exp {
		return ErrInvalid
	}
	if json.Unmarshal(env.V, v) != nil {
		return ErrInvalid
	}
	return nil
}
