package gateway

import (
	"crypto/rand"
	"errors"
	"sync"

	"github.com/mcpgate/mcpgate/internal/seal"
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

// sealer turns session state into opaque session ids (package seal:
// AES-256-GCM, key derived once at start-up, bound to the server name).
// Opened ids are remembered (bounded), so a session's later requests skip
// the decryption.
type sealer struct {
	box *seal.Box

	mu     sync.RWMutex
	opened map[string]sessionState // key: server + " " + id
}

// maxOpened bounds the cache of opened session ids.
const maxOpened = 50000

var errBadSession = errors.New("unknown session")

// newSealer derives the session key from secret; an empty secret gives a
// random key, valid for this process only.
func newSealer(secret []byte) (*sealer, error) {
	box, err := seal.New(secret, "session id")
	if err != nil {
		return nil, err
	}
	return &sealer{box: box, opened: map[string]sessionState{}}, nil
}

func (s *sealer) seal(st sessionState) (string, error) {
	if st.Nonce == "" {
		st.Nonce = rand.Text()[:16]
	}
	return s.box.Seal(st, 0, st.Server)
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
	if s.box.Open(id, server, &st) != nil || st.Server != server {
		return sessionState{}, errBadSession
	}
	s.mu.Lock()
	if len(s.opened) >= maxOpened {
		s.opened = map[string]sessionState{} // bounded memory beats a perfect hit rate
	}
	s.opened[key] = st
	s.mu.Unlock()
	return st, nil
}
