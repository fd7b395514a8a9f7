package connections

import (
	"context"
	"crypto/rand"
	"errors"
	"hash/fnv"
	"net/url"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpoauth"
	"github.com/mcpgate/mcpgate/internal/store"
)

// refreshLease bounds how long one refresh may hold a connection: longer
// than any token request takes (the clients time out after 10 s), so a
// replica that died mid-refresh frees it soon.
const refreshLease = 30 * time.Second

// errLeaseLost: the lease ran out while the token request was in flight,
// and another refresh took the connection over.
var errLeaseLost = errors.New("the connection was renewed elsewhere meanwhile")

// refresh renews a connection's token. Two refreshes of one connection
// must never redeem one refresh token (a provider that rotates them
// revokes the whole family), yet the token request, to a provider an
// upstream may name (mcp-oauth), must not run inside a store transaction:
// on SQLite that holds the only writer, so one slow or hostile token
// endpoint would stall every sign-in, grant and consent of the gateway.
// So a short transaction takes a lease on the row (a replica that finds a
// live lease uses the current token while it lasts), the request runs
// outside any transaction, and a second short transaction stores its
// answer if the lease is still ours. Within a replica, a mutex per
// connection makes concurrent callers wait for the one refresh.
func (m *Manager) refresh(ctx context.Context, p Provider, userID, rt string) (store.Connection, error) {
	key := connKey(userID, rt, p.Name)
	mu := m.refreshLock(key)
	mu.Lock()
	defer mu.Unlock()

	lease := rand.Text()
	var out store.Connection
	var held secret
	fresh, busy := false, false
	err := m.store.UpdateConnection(ctx, userID, rt, p.Name, func(rec store.Connection) (store.Connection, error) {
		now := m.now()
		if rec.ExpiresAt.IsZero() || now.Add(time.Minute).Before(rec.ExpiresAt) {
			out, fresh = rec, true
			return rec, nil // refreshed meanwhile
		}
		sec, err := m.open(rec)
		if err != nil {
			return rec, err
		}
		if sec.Lease != "" && now.Before(sec.LeaseUntil) {
			out, busy = rec, true
			return rec, nil // another replica is renewing it
		}
		sec.Lease, sec.LeaseUntil = lease, now.Add(refreshLease)
		held = sec
		return rec, m.reseal(&rec, sec)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return out, &ErrNotConnected{Name: p.Name, ConnectURL: m.ConnectURL(p.Name)}
	case err != nil || fresh:
		return out, err
	case busy:
		if m.now().Before(out.ExpiresAt) {
			return out, nil // still good for a little while
		}
		return out, &ErrRetry{Name: p.Name, Renewing: true}
	}

	apply, rerr := m.redeem(ctx, p, userID, rt, held)
	err = m.store.UpdateConnection(ctx, userID, rt, p.Name, func(rec store.Connection) (store.Connection, error) {
		sec, err := m.open(rec)
		if err != nil {
			return rec, err
		}
		if sec.Lease != lease {
			return rec, errLeaseLost
		}
		sec.Lease, sec.LeaseUntil = "", time.Time{}
		if rerr != nil {
			return rec, m.reseal(&rec, sec) // free it for the next try
		}
		if err := apply(&rec, sec); err != nil {
			return rec, err
		}
		out = rec
		return rec, nil
	})
	switch {
	case rerr != nil:
		return out, rerr
	case errors.Is(err, store.ErrNotFound):
		return out, &ErrNotConnected{Name: p.Name, ConnectURL: m.ConnectURL(p.Name)}
	case errors.Is(err, errLeaseLost):
		return out, &ErrRetry{Name: p.Name, Renewing: true}
	case err != nil:
		return out, err
	}
	m.log.Info("connection refreshed", "user", userID, "connection", p.Name)
	return out, nil
}

// refreshLock is the mutex of key's stripe.
func (m *Manager) refreshLock(key string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return &m.refreshing[h.Sum32()%uint32(len(m.refreshing))]
}

// redeem makes the token request for the connection whose secret is sec
// (no transaction open) and returns what stores its answer into the row
// as it is then (sec: the row's secret, lease cleared).
func (m *Manager) redeem(ctx context.Context, p Provider, userID, rt string, held secret) (func(*store.Connection, secret) error, error) {
	if held.Binding != nil && p.MCP != nil && m.mcp != nil {
		return m.redeemMCP(ctx, p, userID, rt, held)
	}
	if held.RefreshToken == "" {
		return nil, &ErrNotConnected{Name: p.Name, ConnectURL: m.ConnectURL(p.Name)}
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {held.RefreshToken}}
	// RFC 8707: the refresh must name the resource too, which
	// x/oauth2's TokenSource cannot do; hence this explicit request.
	if res := p.ExtraParams["resource"]; res != "" {
		form.Set("resource", res)
	}
	tok, err := m.tokenRequest(ctx, p, form)
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = held.RefreshToken
	}
	return func(rec *store.Connection, _ secret) error { return m.seal(rec, tok) }, nil
}

// redeemMCP is redeem for an mcp-oauth connection: the client's secret is
// looked up again (never kept in the row), and a client the server
// refused is forgotten.
func (m *Manager) redeemMCP(ctx context.Context, p Provider, userID, rt string, held secret) (func(*store.Connection, secret) error, error) {
	notConnected := &ErrNotConnected{Name: p.Name, ConnectURL: m.ConnectURL(p.Name)}
	if held.RefreshToken == "" {
		return nil, notConnected
	}
	clientSecret, err := m.clientSecret(ctx, p, *held.Binding)
	if err != nil {
		return nil, notConnected // the client changed under us: connect again
	}
	tok, err := mcpoauth.Refresh(ctx, m.mcp.opts.Guard, *held.Binding, clientSecret, held.RefreshToken, m.now())
	if errors.Is(err, mcpoauth.ErrClient) {
		m.forgetClient(ctx, *held.Binding)
	}
	if errors.Is(err, mcpoauth.ErrGrant) || errors.Is(err, mcpoauth.ErrClient) {
		return nil, notConnected
	}
	if err != nil {
		return nil, err
	}
	binding := held.Binding
	return func(rec *store.Connection, sec secret) error {
		if sec.Binding == nil || sec.Binding.Issuer != binding.Issuer || sec.Binding.ClientID != binding.ClientID {
			return errLeaseLost // reconnected meanwhile: keep the new connection
		}
		sec.AccessToken, sec.RefreshToken, sec.TokenType = tok.AccessToken, tok.RefreshToken, tok.TokenType
		if err := m.reseal(rec, sec); err != nil {
			return err
		}
		rec.ExpiresAt = tok.ExpiresAt
		rec.Scopes = tok.Scopes
		return nil
	}, nil
}
