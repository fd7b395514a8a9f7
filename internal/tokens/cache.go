package tokens

import (
	"sync"
	"time"
)

// CachedVerifier remembers tokens that verified, until they expire, so a
// client's second and later calls skip the signature check (~100 µs for
// ES256 on a small machine). A hit still honours expiry and audience;
// revocation is not its business (internal/access is asked on every call).
type CachedVerifier struct {
	v   *Verifier
	now func() time.Time
	max int

	mu      sync.RWMutex
	entries map[string]*Claims // key: the token (its audience is checked on a hit)
}

// NewCachedVerifier caches v's successes, at most max tokens (default
// 50000); now is the clock (nil: time.Now).
func NewCachedVerifier(v *Verifier, max int, now func() time.Time) *CachedVerifier {
	if max <= 0 {
		max = 50000
	}
	if now == nil {
		now = time.Now
	}
	return &CachedVerifier{v: v, now: now, max: max, entries: map[string]*Claims{}}
}

// Verify is Verifier.Verify, answered from the cache when it can.
func (c *CachedVerifier) Verify(token, audience string) (*Claims, error) {
	now := c.now()
	c.mu.RLock()
	cl := c.entries[token]
	c.mu.RUnlock()
	if cl != nil && cl.Audience == audience && now.Before(cl.ExpiresAt) {
		return cl, nil
	}
	cl, err := c.v.Verify(token, audience)
	if err == nil {
		c.put(token, cl, now)
	}
	return cl, err
}

func (c *CachedVerifier) put(token string, cl *Claims, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Drop what expired; if that frees nothing, start over. Bounded
		// memory matters more than a perfect hit rate.
		for k, v := range c.entries {
			if !now.Before(v.ExpiresAt) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			c.entries = map[string]*Claims{}
		}
	}
	c.entries[token] = cl
}
