package gateway

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// sessionState is what a client-facing Mcp-Session-Id carries for a
// passthrough server: enough for any replica to continue the session
// without shared memory (DESIGN.md, "Sessions across replicas").
type sessionState struct {
	Server   string `json:"s"`           // the server the session belongs to
	Upstream string `json:"u,omitempty"` // the upstream's own session id
	Version  string `json:"v,omitempty"` // negotiated protocol revision
	Subject  string `json:"p,omitempty"` // the user the session is bound to
	Nonce    string `json:"n"`           // makes ids unique even for stateless upstreams
}

// sealer encrypts session state into opaque session ids with AES-256-GCM.
// The key is derived once at start-up: a KDF per session costs milliseconds.
// Opened ids are remembered (bounded), so a session's later requests skip
// the decryption.
type sealer struct {
	aead cipher.AEAD

	mu     sync.RWMutex
	opened map[string]sessionState // key: server + " " + id
}

// maxOpened bounds the cache of opened session ids.
const maxOpened = 50000

var errBadSession = errors.New("unknown session")

// newSealer derives the session key from secret with HKDF-SHA256; an empty
// secret gives a random key, valid for this process only.
func newSealer(secret []byte) (*sealer, error) {
	var key []byte
	if len(secret) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	} else {
		var err error
		key, err = hkdf.Key(sha256.New, secret, nil, "mcpgate session id v1", 32)
		if err != nil {
			return nil, err
		}
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead, opened: map[string]sessionState{}}, nil
}

func (s *sealer) seal(st sessionState) (string, error) {
	if st.Nonce == "" {
		st.Nonce = rand.Text()[:16]
	}
	plain, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := s.aead.Seal(nonce, nonce, plain, []byte(st.Server))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// open decrypts a session id issued for server. Ids issued for another
// server, forged or truncated ids all fail the same way.
func (s *sealer) open(server, id string) (sessionState, error) {
	key := server + " " + id
	s.mu.RLock()
	st, ok := s.opened[key]
	s.mu.RUnlock()
	if ok {
		return st, nil
	}
	st, err := s.decrypt(server, id)
	if err != nil {
		return st, err
	}
	s.mu.Lock()
	if len(s.opened) >= maxOpened {
		s.opened = map[string]sessionState{} // bounded memory beats a perfect hit rate
	}
	s.opened[key] = st
	s.mu.Unlock()
	return st, nil
}

func (s *sealer) decrypt(server, id string) (sessionState, error) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return sessionState{}, errBadSession
	}
	ns := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:ns], raw[ns:], []byte(server))
	if err != nil {
		return sessionState{}, errBadSession
	}
	var st sessionState
	if err := json.Unmarshal(plain, &st); err != nil || st.Server != server {
		return sessionState{}, fmt.Errorf("%w: bad payload", errBadSession)
	}
	return st, nil
}
