package connections

// Connections to upstream MCP servers that run their own authorization
// (credentials mode mcp-oauth): the endpoints and mcpgate's client there
// are discovered (package mcpoauth) instead of configured; the connect
// flow, its state binding, the vault and the row-locked refresh are the
// same as for configured providers.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpoauth"
	"github.com/mcpgate/mcpgate/internal/store"
)

// MCPUpstream makes a Provider an upstream MCP server's own
// authorization server, found from the upstream's 401.
type MCPUpstream struct {
	URL string // the upstream MCP endpoint (the resource)
	// Pre is a client the operator registered at the upstream's
	// authorization server; nil: metadata document or dynamic
	// registration.
	Pre *mcpoauth.PreRegistered
}

// holds reports whether tokens bound by b are for this upstream: the
// resource discovery accepted for it, its URL or (metadata at the root,
// RFC 9728 §3.1) its origin.
func (u *MCPUpstream) holds(b *mcpoauth.Binding) bool {
	if b == nil {
		return false
	}
	if b.Resource == u.URL {
		return true
	}
	o, err := url.Parse(u.URL)
	return err == nil && o.Host != "" && b.Resource == (&url.URL{Scheme: o.Scheme, Host: o.Host}).String()
}

// MCPOptions configures how mcpgate acts as an MCP OAuth client.
type MCPOptions struct {
	// Guard is the client for everything an authorization server names
	// (mcpoauth.NewHTTPClient); Upstream is for the operator-configured
	// upstream's own origin (its 401 and its resource metadata).
	Guard, Upstream *http.Client
	AllowHTTP       bool   // authorization servers on plain http (development)
	MetadataURL     string // mcpgate's client ID metadata document; "" = none
	ClientName      string
}

// mcpClient is the Manager's MCP OAuth client state.
type mcpClient struct {
	opts      MCPOptions
	registrar *mcpoauth.Registrar

	mu         sync.Mutex
	challenges map[string]challengeSeen // the last 401/403 per user connection
}

type challengeSeen struct {
	ch   mcpoauth.Challenge
	seen time.Time
}

// challengeTTL bounds how long a seen challenge guides the next connect.
const challengeTTL = 15 * time.Minute

// maxStepUps bounds step-up re-authorizations of one connection within
// stepUpWindow: a server that keeps inventing scopes must not keep the
// user in a loop. The count survives the reconnect a step-up leads to.
const (
	maxStepUps   = 3
	stepUpWindow = 24 * time.Hour
)

// KindMCPClient marks the vault rows holding mcpgate's own dynamic
// registrations (user "", tenant "", name registrationName(issuer)):
// sealed like any credential, re-encrypted by a vault key rotation.
const KindMCPClient = "mcp_oauth_client"

// EnableMCP turns on mcp-oauth providers. Call once, before serving.
func (m *Manager) EnableMCP(o MCPOptions) {
	if o.Guard == nil {
		o.Guard = mcpoauth.NewHTTPClient(mcpoauth.GuardOptions{})
	}
	if o.Upstream == nil {
		o.Upstream = &http.Client{Timeout: 10 * time.Second}
	}
	if o.ClientName == "" {
		o.ClientName = "mcpgate"
	}
	m.mcp = &mcpClient{opts: o, challenges: map[string]challengeSeen{},
		registrar: &mcpoauth.Registrar{MetadataURL: o.MetadataURL, RedirectURI: m.base + "/connections/callback",
			ClientName: o.ClientName, Store: &vaultRegistrations{m: m}, HTTP: o.Guard}}
}

// MetadataDocument serves mcpgate's client ID metadata document; nil
// when none is configured.
func (m *Manager) MetadataDocument() http.Handler {
	if m.mcp == nil || m.mcp.opts.MetadataURL == "" {
		return nil
	}
	return mcpoauth.MetadataHandler(m.mcp.opts.MetadataURL, m.base+"/connections/callback", m.mcp.opts.ClientName)
}

// rowTenant is the tenant a user's connection row is kept under: the
// provider's own, or the caller's for a per-tenant provider.
func (p Provider) rowTenant(tenant string) string {
	if p.PerTenant {
		return tenant
	}
	return p.Tenant
}

func connKey(userID, tenant, name string) string { return userID + "\x00" + tenant + "\x00" + name }

// Refused is what the gateway calls when an upstream of an mcp-oauth
// provider refused a call made with the user's token: status 401 or 403
// and the response's headers. It returns the error the call should
// answer with (a ToolError naming what the user can do), or nil when the
// refusal is nothing authorization can fix.
//
//   - 401: the token is no good (revoked, expired early, or the upstream
//     moved to another authorization server, SEP-2352). The first time,
//     the next call refreshes; a second 401 soon after, or no refresh
//     token, forgets the tokens: the user connects again, which discovers
//     afresh (and registers at a new authorization server if there is one).
//   - 403 insufficient_scope: step-up (MCP "Step-Up Authorization Flow"),
//     only when the challenge asks for a scope not asked for before and at
//     most maxStepUps times; otherwise the answer says which permission is
//     missing and that reconnecting will not help, so nobody loops.
func (m *Manager) Refused(ctx context.Context, userID, tenant, name string, status int, h http.Header) error {
	p, ok := m.Provider(name, tenant)
	if !ok || p.MCP == nil || m.mcp == nil {
		return nil
	}
	ch := mcpoauth.ParseChallenge(h)
	rt := p.rowTenant(tenant)
	key := connKey(userID, rt, name)
	m.forget(key)
	switch {
	case status == http.StatusUnauthorized:
		m.mcp.remember(key, ch, m.now())
		return m.rejected(ctx, p, userID, rt)
	case status == http.StatusForbidden && ch.Error == "insufficient_scope":
		m.mcp.remember(key, ch, m.now())
		return m.stepUp(ctx, p, userID, rt, ch)
	}
	return nil
}

// rejectedWindow: a 401 within this long after the previous one means the
// refresh did not help.
const rejectedWindow = 5 * time.Minute

func (m *Manager) rejected(ctx context.Context, p Provider, userID, rt string) error {
	notConnected := &ErrNotConnected{Name: p.Name, ConnectURL: m.ConnectURL(p.Name)}
	forget := false
	err := m.store.UpdateConnection(ctx, userID, rt, p.Name, func(rec store.Connection) (store.Connection, error) {
		sec, err := m.open(rec)
		if err != nil {
			return rec, err
		}
		now := m.now()
		if sec.RefreshToken == "" || sec.Binding == nil || now.Sub(sec.RejectedAt) < rejectedWindow {
			forget = true
			return rec, nil
		}
		sec.RejectedAt = now
		rec.ExpiresAt = now.Add(-time.Second) // the next call refreshes first
		return rec, m.reseal(&rec, sec)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notConnected
	case err != nil:
		return err
	case forget:
		if err := m.store.DeleteConnection(ctx, userID, rt, p.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		m.log.Info("upstream refused the connection's token; the user must connect again", "user", userID, "connection", p.Name)
		return notConnected
	}
	return &ErrRetry{Name: p.Name}
}

func (m *Manager) stepUp(ctx context.Context, p Provider, userID, rt string, ch mcpoauth.Challenge) error {
	var out error
	err := m.store.UpdateConnection(ctx, userID, rt, p.Name, func(rec store.Connection) (store.Connection, error) {
		sec, err := m.open(rec)
		if err != nil {
			return rec, err
		}
		var asked []string
		if sec.Binding != nil {
			asked = sec.Binding.Scopes
		}
		asked = append(append([]string(nil), asked...), sec.Want...)
		want, ok := mcpoauth.StepUp(ch, asked)
		if m.now().Sub(sec.StepUpAt) > stepUpWindow {
			sec.StepUps = 0
		}
		if !ok || sec.StepUps >= maxStepUps {
			out = &ErrInsufficientScope{Name: p.Name, Scopes: ch.Scope}
			return rec, nil
		}
		sec.Want, sec.StepUps, sec.StepUpAt = want, sec.StepUps+1, m.now()
		out = &ErrNotConnected{Name: p.Name, ConnectURL: m.ConnectURL(p.Name), MorePermission: strings.Join(ch.Scope, " ")}
		return rec, m.reseal(&rec, sec)
	})
	if errors.Is(err, store.ErrNotFound) {
		return &ErrNotConnected{Name: p.Name, ConnectURL: m.ConnectURL(p.Name)}
	}
	if err != nil {
		return err
	}
	return out
}

// ErrRetry: the upstream refused the token once; the next call uses a
// refreshed one.
type ErrRetry struct {
	Name     string
	Renewing bool // the credential is being renewed right now (refresh)
}

func (e *ErrRetry) Error() string {
	if e.Renewing {
		return fmt.Sprintf("the credential for %s is being renewed; try again in a moment", e.Name)
	}
	return fmt.Sprintf("%s refused the stored credential; try again (it is renewed first)", e.Name)
}

// ToolError is the text shown to the user.
func (e *ErrRetry) ToolError() string { return e.Error() }

// ErrInsufficientScope: the upstream wants a permission that asking
// again will not obtain.
type ErrInsufficientScope struct {
	Name   string
	Scopes []string
}

func (e *ErrInsufficientScope) Error() string {
	return fmt.Sprintf("%s refused this call: it needs the permission %q, which was already asked for and not granted; reconnecting will not help — ask the administrator of %s to grant it",
		e.Name, strings.Join(e.Scopes, " "), e.Name)
}

// ToolError is the text shown to the user.
func (e *ErrInsufficientScope) ToolError() string { return e.Error() }

func (c *mcpClient) remember(key string, ch mcpoauth.Challenge, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.challenges) > 10000 {
		c.challenges = map[string]challengeSeen{}
	}
	c.challenges[key] = challengeSeen{ch: ch, seen: now}
}

func (c *mcpClient) recall(key string, now time.Time) (mcpoauth.Challenge, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.challenges[key]
	if !ok || now.Sub(s.seen) > challengeTTL {
		return mcpoauth.Challenge{}, false
	}
	return s.ch, true
}

func (m *Manager) forget(key string) {
	m.mu.Lock()
	delete(m.cache, key)
	m.mu.Unlock()
}

// probe asks the upstream, without a credential, for its challenge: the
// 401's WWW-Authenticate says where its metadata is and what scope it
// wants. Any other answer gives the zero challenge (discovery then uses
// the well-known locations).
func (m *Manager) probe(ctx context.Context, upstreamURL string) mcpoauth.Challenge {
	body := []byte(`{"jsonrpc":"2.0","id":"mcpgate-authorization-probe","method":"ping"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, upstreamURL, bytes.NewReader(body))
	if err != nil {
		return mcpoauth.Challenge{}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := m.mcp.opts.Upstream.Do(req)
	if err != nil {
		return mcpoauth.Challenge{}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusUnauthorized {
		return mcpoauth.Challenge{}
	}
	return mcpoauth.ParseChallenge(resp.Header)
}

// authorizeMCP discovers the upstream's authorization server, chooses
// mcpgate's client there and the scopes, and returns the pending request
// (to seal into the state) and the authorization endpoint.
func (m *Manager) authorizeMCP(ctx context.Context, p Provider, userID, tenant string) (mcpoauth.Pending, *mcpoauth.Discovery, error) {
	if m.mcp == nil {
		return mcpoauth.Pending{}, nil, errors.New("mcp-oauth connections are not enabled")
	}
	rt := p.rowTenant(tenant)
	ch, ok := m.mcp.recall(connKey(userID, rt, p.Name), m.now())
	if !ok {
		ch = m.probe(ctx, p.MCP.URL)
	}
	d, err := mcpoauth.Discover(ctx, p.MCP.URL, ch, m.mcp.opts.Upstream, m.mcp.opts.Guard, m.mcp.opts.AllowHTTP)
	if err != nil {
		return mcpoauth.Pending{}, nil, err
	}
	creds, err := m.mcp.registrar.Client(ctx, d.AS, p.MCP.Pre)
	if err != nil {
		return mcpoauth.Pending{}, nil, err
	}
	// What was asked of this same issuer before, and any step-up wanted.
	previous := append([]string(nil), p.Scopes...)
	if rec, err := m.store.GetConnection(ctx, userID, rt, p.Name); err == nil {
		if sec, err := m.open(rec); err == nil && sec.Binding != nil && sec.Binding.Issuer == d.AS.Issuer {
			previous = append(append(previous, sec.Binding.Scopes...), sec.Want...)
		}
	}
	return mcpoauth.Prepare(d, creds, mcpoauth.Scopes(ch, d, previous)), d, nil
}

// clientSecret is the secret of the client b names, looked up again (the
// state that travelled through the browser carries none).
func (m *Manager) clientSecret(ctx context.Context, p Provider, b mcpoauth.Binding) (string, error) {
	switch b.ClientKind {
	case mcpoauth.KindPreRegistered:
		// Only to the issuer it is configured for (the config may have
		// pinned it since this binding was made).
		if p.MCP.Pre == nil || p.MCP.Pre.ClientID != b.ClientID || p.MCP.Pre.Issuer != "" && p.MCP.Pre.Issuer != b.Issuer {
			return "", errors.New("the pre-registered client changed; connect again")
		}
		return p.MCP.Pre.ClientSecret, nil
	case mcpoauth.KindDynamic:
		reg, ok, err := m.mcp.registrar.Store.GetRegistration(ctx, b.Issuer)
		if err != nil {
			return "", err
		}
		if !ok || reg.ClientID != b.ClientID {
			return "", errors.New("the dynamic registration changed; connect again")
		}
		return reg.ClientSecret, nil
	}
	return "", nil
}

// finishMCP checks the authorization response and redeems the code.
func (m *Manager) finishMCP(ctx context.Context, p Provider, pend mcpoauth.Pending, q map[string][]string, redirectURI string) (*mcpoauth.Token, error) {
	iss, present := "", false
	if v, ok := q["iss"]; ok && len(v) > 0 {
		iss, present = v[0], true
	}
	if err := mcpoauth.CheckIssuer(pend, iss, present); err != nil {
		return nil, err
	}
	secret, err := m.clientSecret(ctx, p, pend.Binding)
	if err != nil {
		return nil, err
	}
	code := ""
	if v := q["code"]; len(v) > 0 {
		code = v[0]
	}
	tok, err := mcpoauth.Exchange(ctx, m.mcp.opts.Guard, pend, secret, code, redirectURI)
	if errors.Is(err, mcpoauth.ErrClient) {
		m.forgetClient(ctx, pend.Binding)
	}
	return tok, err
}

// forgetClient drops a dynamic registration the authorization server no
// longer accepts, so the next connect registers again (a server may
// expire unused clients, as mcpgate's own does).
func (m *Manager) forgetClient(ctx context.Context, b mcpoauth.Binding) {
	if m.mcp == nil || b.ClientKind != mcpoauth.KindDynamic {
		return
	}
	if err := m.mcp.registrar.Forget(ctx, b.Issuer, b.ClientID); err != nil {
		m.log.Warn("could not forget a refused registration", "issuer", b.Issuer, "err", err)
		return
	}
	m.log.Info("authorization server refused mcpgate's registered client; it will register again", "issuer", b.Issuer)
}

// sealMCP stores an mcp-oauth token response in rec, with its binding.
// The step-up count of the connection it replaces (same issuer) carries
// over, so reconnecting does not reset the bound.
func (m *Manager) sealMCP(ctx context.Context, rec *store.Connection, tok *mcpoauth.Token, b mcpoauth.Binding) error {
	sec := secret{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType, Binding: &b}
	if old, err := m.store.GetConnection(ctx, rec.UserID, rec.Tenant, rec.Name); err == nil {
		if prev, err := m.open(old); err == nil && prev.Binding != nil && prev.Binding.Issuer == b.Issuer {
			sec.StepUps, sec.StepUpAt = prev.StepUps, prev.StepUpAt
		}
	}
	if err := m.reseal(rec, sec); err != nil {
		return err
	}
	rec.Kind = store.ConnectionOAuth2
	rec.ExpiresAt = tok.ExpiresAt
	rec.Scopes = tok.Scopes
	return nil
}

func (m *Manager) reseal(rec *store.Connection, sec secret) error {
	raw, err := json.Marshal(sec)
	if err != nil {
		return err
	}
	return m.vault.SealConnection(rec, raw)
}

// vaultRegistrations keeps dynamic registrations in the vault, one row per
// issuer.
type vaultRegistrations struct{ m *Manager }

func registrationName(issuer string) string { return "mcp-oauth-client " + issuer }

func (v *vaultRegistrations) GetRegistration(ctx context.Context, issuer string) (mcpoauth.Registration, bool, error) {
	rec, err := v.m.store.GetConnection(ctx, "", "", registrationName(issuer))
	if errors.Is(err, store.ErrNotFound) {
		return mcpoauth.Registration{}, false, nil
	}
	if err != nil {
		return mcpoauth.Registration{}, false, err
	}
	raw, err := v.m.vault.OpenConnection(rec)
	if err != nil {
		return mcpoauth.Registration{}, false, err
	}
	var r mcpoauth.Registration
	if err := json.Unmarshal(raw, &r); err != nil {
		return mcpoauth.Registration{}, false, fmt.Errorf("registration at %s: unreadable", issuer)
	}
	return r, true, nil
}

func (v *vaultRegistrations) PutRegistration(ctx context.Context, r mcpoauth.Registration) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	rec := store.Connection{Name: registrationName(r.Issuer), Kind: KindMCPClient}
	if err := v.m.vault.SealConnection(&rec, raw); err != nil {
		return err
	}
	return v.m.store.PutConnection(ctx, rec)
}

func (v *vaultRegistrations) DeleteRegistration(ctx context.Context, issuer string) error {
	err := v.m.store.DeleteConnection(ctx, "", "", registrationName(issuer))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
