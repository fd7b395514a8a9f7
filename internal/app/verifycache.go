package app

import (
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/tokens"
)

// verifyCache remembers tokens that verified, until they expire, so a
// client's second and later calls skip the signature check (~100 µs for
// ES256 on a small machine). A hit still honours expiry; revocation is
// checked by the gateway on every call.
type verifyCache struct {
	mu      sync.RWMutex
	entries map[string]*tokens.Claims // key: the token (its audience is checked on a hit)
	max     int
}

func newVerifyCache(max int) *verifyCache {
	return &verifyCache{entries: map[string]*tokens.Claims{}, max: max}
}

func (c *verifyCache) get(token, audience string, now time.Time) *tokens.Claims {
	c.mu.RLock()
	cl := c.entries[token]
	c.mu.RUnlock()
	if cl == nil || cl.Audience != audience || !now.Before(cl.ExpiresAt) {
		return nil
	}
	return cl
}

func (c *verifyCache) put(token, audience string, cl *tokens.Claims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Drop what expired; if that frees nothing, start over. Bounded
		// memory matters more than a perfect hit rate.
		now := time.Now()
		for k, v := range c.entries {
			if !now.Before(v.ExpiresAt) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			c.entries = map[string]*tokens.Claims{}
		}
	}
	c.entries[token] = cl
}
