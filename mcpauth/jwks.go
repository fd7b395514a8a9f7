package mcpauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	// maxDocument bounds the discovery document and the JWKS.
	maxDocument = 1 << 20
	// fetchTimeout bounds one refresh (discovery + JWKS), whatever the
	// HTTPClient's own timeout.
	fetchTimeout = 15 * time.Second
	// minRSABits refuses keys too weak to trust.
	minRSABits = 2048
)

// keyCache holds the issuer's public keys by kid. Lookups of known keys
// are a lock-free map read; a missing kid or a stale set starts one fetch
// (callers arriving meanwhile wait for the same one), at most one per
// minRefresh.
type keyCache struct {
	hc                 *http.Client
	issuer, jwksURL    string
	minRefresh, maxAge time.Duration
	now                func() time.Time

	set atomic.Pointer[keySet]

	mu          sync.Mutex
	inflight    *fetchCall // the fetch under way, if any
	lastAttempt time.Time  // when the last fetch started
	discovered  string     // jwks_uri from the discovery document
}

type keySet struct {
	keys    map[string]*jose.JSONWebKey
	fetched time.Time
}

type fetchCall struct {
	done chan struct{}
	set  *keySet // on success
	err  error
}

// key returns the public key named kid.
func (c *keyCache) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	now := c.now()
	if ks := c.set.Load(); ks != nil {
		if k, ok := ks.keys[kid]; ok {
			if now.Sub(ks.fetched) >= c.maxAge {
				c.start(ctx, now) // revalidate in the background
			}
			return k, nil
		}
	}
	call := c.start(ctx, now)
	if call == nil {
		// Rate-limited: answer from what we have (another caller may
		// just have fetched the key).
		ks := c.set.Load()
		if ks == nil {
			return nil, fmt.Errorf("%w: last fetch failed less than %s ago", ErrKeysUnavailable, c.minRefresh)
		}
		if k, ok := ks.keys[kid]; ok {
			return k, nil
		}
		return nil, reject(ErrUnknownKey, "kid %q (JWKS fetched %s ago)", kid, now.Sub(ks.fetched).Round(time.Second))
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if call.err != nil {
		// Keep serving from the last good set (stale-if-error).
		if ks := c.set.Load(); ks != nil {
			if k, ok := ks.keys[kid]; ok {
				return k, nil
			}
		}
		return nil, fmt.Errorf("%w: %w", ErrKeysUnavailable, call.err)
	}
	if k, ok := call.set.keys[kid]; ok {
		return k, nil
	}
	return nil, reject(ErrUnknownKey, "kid %q not in the issuer's JWKS", kid)
}

// start returns the fetch under way, starting one unless the last one
// started less than minRefresh ago; then it returns nil.
func (c *keyCache) start(ctx context.Context, now time.Time) *fetchCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight != nil {
		return c.inflight
	}
	if !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < c.minRefresh {
		return nil
	}
	c.lastAttempt = now
	call := &fetchCall{done: make(chan struct{})}
	c.inflight = call
	// Detached from ctx: waiters share this fetch, and the caller that
	// started it giving up must not fail it for the others.
	go c.refresh(context.WithoutCancel(ctx), call)
	return call
}

// refresh fetches the key set and publishes the result to call's waiters.
func (c *keyCache) refresh(ctx context.Context, call *fetchCall) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	ks, err := c.fetch(ctx)
	if err == nil {
		c.set.Store(ks)
	}
	c.mu.Lock()
	call.set, call.err = ks, err
	c.inflight = nil
	c.mu.Unlock()
	close(call.done)
}

func (c *keyCache) fetch(ctx context.Context) (*keySet, error) {
	u, err := c.jwksLocation(ctx)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := c.getJSON(ctx, u, &doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	ks := &keySet{keys: make(map[string]*jose.JSONWebKey, len(doc.Keys)), fetched: c.now()}
	for _, raw := range doc.Keys {
		if k := parseKey(raw); k != nil {
			ks.keys[k.KeyID] = k
		}
	}
	return ks, nil
}

// jwksLocation is Options.JWKSURL, else the jwks_uri of the issuer's
// RFC 8414 metadata, else mcpgate's fixed path. A discovered location is
// remembered; a failed discovery is retried on the next refresh.
func (c *keyCache) jwksLocation(ctx context.Context) (string, error) {
	if c.jwksURL != "" {
		return c.jwksURL, nil
	}
	c.mu.Lock()
	u := c.discovered
	c.mu.Unlock()
	if u != "" {
		return u, nil
	}
	base := strings.TrimRight(c.issuer, "/")
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := c.getJSON(ctx, metadataURL(c.issuer), &meta); err != nil {
		if _, ok := errors.AsType[*statusError](err); ok {
			return base + "/oauth/jwks", nil // not served: mcpgate's own path
		}
		return "", fmt.Errorf("discovery: %w", err)
	}
	// RFC 8414 §3.3: the document must name the issuer we trust, or it
	// is not that issuer's.
	if meta.Issuer != c.issuer {
		return "", fmt.Errorf("discovery: metadata names issuer %q, want %q", meta.Issuer, c.issuer)
	}
	if meta.JWKSURI == "" {
		return "", errors.New("discovery: metadata has no jwks_uri")
	}
	c.mu.Lock()
	c.discovered = meta.JWKSURI
	c.mu.Unlock()
	return meta.JWKSURI, nil
}

// metadataURL is where RFC 8414 §3.1 puts an issuer's metadata: the
// well-known segment between host and path (for an issuer without a path,
// as mcpgate's, that is ISSUER/.well-known/oauth-authorization-server).
func metadataURL(issuer string) string {
	const wk = "/.well-known/oauth-authorization-server"
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return strings.TrimRight(issuer, "/") + wk
	}
	u.Path = wk + strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String()
}

func (c *keyCache) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return &statusError{url: u, status: resp.Status}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxDocument {
		return fmt.Errorf("GET %s: larger than %d bytes", u, maxDocument)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// parseKey returns the verification key in raw, or nil when it is not one
// this package trusts: no kid, use other than "sig", private or symmetric
// material (a JWKS must never carry it; an HMAC "key" would also open the
// door to algorithm confusion), or an unsupported or weak key.
func parseKey(raw json.RawMessage) *jose.JSONWebKey {
	var probe map[string]json.RawMessage
	if json.Unmarshal(raw, &probe) != nil {
		return nil
	}
	for _, p := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		if _, ok := probe[p]; ok {
			return nil
		}
	}
	var k jose.JSONWebKey
	if k.UnmarshalJSON(raw) != nil || k.KeyID == "" || (k.Use != "" && k.Use != "sig") {
		return nil
	}
	switch pub := k.Key.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return nil
		}
	default:
		return nil
	}
	return &k
}

// statusError is a non-200 answer.
type statusError struct{ url, status string }

func (e *statusError) Error() string { return "GET " + e.url + ": " + e.status }
