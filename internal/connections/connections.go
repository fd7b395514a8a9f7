// Package connections lets a user connect downstream services once
// (OAuth 2.0 authorization at the provider, tokens sealed in the vault),
// hands the user's own token to the gateway for each call, refreshes it
// before it expires (one refresher at a time, across replicas, by the
// store's row lock), and deletes it on disconnect. Encryption is package
// vault's; storage is the store's.
package connections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpoauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/vault"
)

// Provider is one configured downstream OAuth 2.0 service.
type Provider struct {
	Name         string
	Tenant       string // "" = every tenant
	AuthorizeURL string
	TokenURL     string
	ClientID     string
	ClientSecret string
	Scopes       []string
	ExtraParams  map[string]string
	Description  string
	// MCP, when set, makes this an upstream MCP server's own
	// authorization (credentials mode mcp-oauth): endpoints and client
	// are discovered; AuthorizeURL, TokenURL and the client are unused.
	MCP *MCPUpstream
	// PerTenant keeps one connection per user and tenant (a user acting
	// in two tenants connects twice).
	PerTenant bool
}

// Store is what connections need from storage.
type Store interface {
	PutConnection(ctx context.Context, c store.Connection) error
	GetConnection(ctx context.Context, userID, tenant, name string) (store.Connection, error)
	UpdateConnection(ctx context.Context, userID, tenant, name string, update func(store.Connection) (store.Connection, error)) error
	DeleteConnection(ctx context.Context, userID, tenant, name string) error
	ListConnections(ctx context.Context, userID string) ([]store.Connection, error)
}

// ErrNotConnected means the user has not connected the service; its
// message tells them where to.
type ErrNotConnected struct {
	Name, ConnectURL string
	// MorePermission, when set, is the permission the service asked for
	// beyond what the user granted (step-up).
	MorePermission string
}

func (e *ErrNotConnected) Error() string {
	if e.MorePermission != "" {
		return fmt.Sprintf("%s needs more permission (%s): open %s to allow it, then try again", e.Name, e.MorePermission, e.ConnectURL)
	}
	return fmt.Sprintf("you have not connected %s yet: open %s to connect it, then try again", e.Name, e.ConnectURL)
}

// ToolError is the text shown to the user as a tool error.
func (e *ErrNotConnected) ToolError() string { return e.Error() }

// secret is what the vault seals for an OAuth connection.
type secret struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	TokenType    string `json:"token_type,omitempty"`
	// mcp-oauth connections: where the tokens come from, the scopes a
	// step-up wants, how many step-ups there were, and when the upstream
	// last refused the token.
	Binding    *mcpoauth.Binding `json:"mcp,omitempty"`
	Want       []string          `json:"want,omitempty"`
	StepUps    int               `json:"step_ups,omitempty"`
	StepUpAt   time.Time         `json:"step_up_at,omitzero"` // the last step-up
	RejectedAt time.Time         `json:"rejected_at,omitzero"`
	// Lease marks a refresh in progress (see refresh): who holds it, and
	// until when.
	Lease      string    `json:"lease,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// Manager holds the providers and serves tokens.
type Manager struct {
	providers []Provider
	store     Store
	vault     *vault.Vault
	base      string // public URL
	client    *http.Client
	log       *slog.Logger
	now       func() time.Time

	mu    sync.RWMutex
	cache map[string]cached // decrypted tokens, briefly, to keep the store off the hot path

	// allowed asks the access state whether the user is cut off; nil:
	// nobody is (see SetAccess).
	allowed func(ctx context.Context, userID string) error

	mcp *mcpClient // nil: no mcp-oauth providers (see EnableMCP)

	// refreshing serialises this replica's refreshes of one connection
	// (striped by its key); the stored lease serialises replicas.
	refreshing [64]sync.Mutex
}

// SetAccess installs the cut-off check every hand-out of a user's token
// passes first, cache hits included (internal/access: a disabled user's
// vaulted tokens are not handed out). Set once, before serving.
func (m *Manager) SetAccess(allowed func(ctx context.Context, userID string) error) {
	m.allowed = allowed
}

type cached struct {
	token   string
	expires time.Time // of the token, or of the cache entry
}

// cacheFor bounds how long a decrypted token is reused without looking at
// the store (a disconnect on another replica takes at most this long).
const cacheFor = 30 * time.Second

// New builds a manager.
func New(providers []Provider, st Store, v *vault.Vault, publicURL string, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{providers: providers, store: st, vault: v, base: strings.TrimRight(publicURL, "/"),
		client: &http.Client{Timeout: 10 * time.Second}, log: log, now: time.Now, cache: map[string]cached{}}
}

// Provider returns the provider named name for a tenant (a tenant's own
// definition wins over a global one).
func (m *Manager) Provider(name, tenant string) (Provider, bool) {
	var global *Provider
	for i := range m.providers {
		p := &m.providers[i]
		if p.Name != name {
			continue
		}
		if p.Tenant == tenant && tenant != "" {
			return *p, true
		}
		if p.Tenant == "" {
			global = p
		}
	}
	if global != nil {
		return *global, true
	}
	return Provider{}, false
}

// ConnectURL is where a user connects name.
func (m *Manager) ConnectURL(name string) string {
	return m.base + "/connections#" + url.PathEscape(name)
}

// Token returns the user's access token for connection name, refreshing
// it when it is about to expire.
func (m *Manager) Token(ctx context.Context, userID, tenant, name string) (string, error) {
	if m.allowed != nil {
		if err := m.allowed(ctx, userID); err != nil {
			return "", fmt.Errorf("connection %q: the user is cut off: %w", name, err)
		}
	}
	p, ok := m.Provider(name, tenant)
	if !ok {
		return "", fmt.Errorf("connection %q is not configured for tenant %q", name, tenant)
	}
	rt := p.rowTenant(tenant)
	key := connKey(userID, rt, name)
	now := m.now()
	m.mu.RLock()
	c, hit := m.cache[key]
	m.mu.RUnlock()
	if hit && now.Before(c.expires) {
		return c.token, nil
	}
	rec, err := m.store.GetConnection(ctx, userID, rt, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", &ErrNotConnected{Name: name, ConnectURL: m.ConnectURL(name)}
	}
	if err != nil {
		return "", err
	}
	// The row is handed out only to the upstream whose tokens it holds:
	// the config may have moved this connection name to another URL, or
	// between a plain provider and an mcp-oauth upstream (RFC 8707 §2: a
	// token is for the resource it was asked for).
	if sec, err := m.open(rec); err != nil {
		return "", err
	} else if p.MCP != nil && !p.MCP.holds(sec.Binding) || p.MCP == nil && sec.Binding != nil {
		m.log.Warn("stored connection is for another upstream; the user must connect again", "user", userID, "connection", name)
		return "", &ErrNotConnected{Name: name, ConnectURL: m.ConnectURL(name)}
	}
	if !rec.ExpiresAt.IsZero() && now.Add(time.Minute).After(rec.ExpiresAt) {
		if rec, err = m.refresh(ctx, p, userID, rt); err != nil {
			return "", err
		}
	}
	sec, err := m.open(rec)
	if err != nil {
		return "", err
	}
	exp := now.Add(cacheFor)
	if !rec.ExpiresAt.IsZero() && rec.ExpiresAt.Add(-time.Minute).Before(exp) {
		exp = rec.ExpiresAt.Add(-time.Minute)
	}
	m.mu.Lock()
	if len(m.cache) > 100000 {
		m.cache = map[string]cached{}
	}
	m.cache[key] = cached{token: sec.AccessToken, expires: exp}
	m.mu.Unlock()
	return sec.AccessToken, nil
}

func (m *Manager) open(rec store.Connection) (secret, error) {
	raw, err := m.vault.OpenConnection(rec)
	if err != nil {
		return secret{}, fmt.Errorf("connection %q: %w", rec.Name, err)
	}
	var s secret
	if err := json.Unmarshal(raw, &s); err != nil {
		return secret{}, fmt.Errorf("connection %q: unreadable secret", rec.Name)
	}
	return s, nil
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

func (m *Manager) tokenRequest(ctx context.Context, p Provider, form url.Values) (tokenResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return tokenResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if p.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(p.ClientID), url.QueryEscape(p.ClientSecret))
	} else {
		form.Set("client_id", p.ClientID)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return tokenResponse{}, fmt.Errorf("connection %q: token endpoint: %w", p.Name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var tok tokenResponse
	_ = json.Unmarshal(body, &tok)
	if resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		if tok.Error == "invalid_grant" {
			return tok, &ErrNotConnected{Name: p.Name, ConnectURL: m.ConnectURL(p.Name)}
		}
		return tok, fmt.Errorf("connection %q: token endpoint answered %d %s", p.Name, resp.StatusCode, tok.Error)
	}
	return tok, nil
}

// seal stores tok in rec, encrypted.
func (m *Manager) seal(rec *store.Connection, tok tokenResponse) error {
	raw, err := json.Marshal(secret{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType})
	if err != nil {
		return err
	}
	if err := m.vault.SealConnection(rec, raw); err != nil {
		return err
	}
	rec.Kind = store.ConnectionOAuth2
	rec.ExpiresAt = time.Time{}
	if tok.ExpiresIn > 0 {
		rec.ExpiresAt = m.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	if tok.Scope != "" {
		rec.Scopes = strings.Fields(tok.Scope)
	}
	return nil
}

// Disconnect deletes the user's connection and forgets the cached token.
func (m *Manager) Disconnect(ctx context.Context, userID, tenant, name string) error {
	p, ok := m.Provider(name, tenant)
	if !ok {
		return fmt.Errorf("unknown connection %q", name)
	}
	rt := p.rowTenant(tenant)
	m.forget(connKey(userID, rt, name))
	err := m.store.DeleteConnection(ctx, userID, rt, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// Status lists the providers available to a user's tenant and whether the
// user has connected each.
func (m *Manager) Status(ctx context.Context, user store.User) ([]Status, error) {
	have, err := m.store.ListConnections(ctx, user.ID)
	if err != nil {
		return nil, err
	}
	var out []Status
	seen := map[string]bool{}
	for _, p := range m.providers {
		if seen[p.Name] || (p.Tenant != "" && p.Tenant != user.Tenant) {
			continue
		}
		pp, _ := m.Provider(p.Name, user.Tenant)
		seen[p.Name] = true
		st := Status{Name: pp.Name, Description: pp.Description}
		for _, c := range have {
			if c.Name == pp.Name && c.Tenant == pp.rowTenant(user.Tenant) {
				st.Connected, st.Since = true, c.CreatedAt
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// Status is one line of the connections page.
type Status struct {
	Name, Description string
	Connected         bool
	Since             time.Time
}

// Secret returns a tenant-wide secret stored with `mcpgate secret put`
// (kind api_key, no user): the value of a static credential, for legacy
// APIs with one key per tenant. A tenant's own secret wins over a global
// one ("" tenant).
func (m *Manager) Secret(ctx context.Context, tenant, name string) (string, error) {
	key := "\x00" + tenant + "\x00" + name + "\x00secret"
	now := m.now()
	m.mu.RLock()
	c, hit := m.cache[key]
	m.mu.RUnlock()
	if hit && now.Before(c.expires) {
		return c.token, nil
	}
	rec, err := m.store.GetConnection(ctx, "", tenant, name)
	if errors.Is(err, store.ErrNotFound) && tenant != "" {
		rec, err = m.store.GetConnection(ctx, "", "", name)
	}
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("no secret %q is stored for tenant %q (mcpgate secret put)", name, tenant)
	}
	if err != nil {
		return "", err
	}
	raw, err := m.vault.OpenConnection(rec)
	if err != nil {
		return "", fmt.Errorf("secret %q: %w", name, err)
	}
	m.mu.Lock()
	m.cache[key] = cached{token: string(raw), expires: now.Add(cacheFor)}
	m.mu.Unlock()
	return string(raw), nil
}
