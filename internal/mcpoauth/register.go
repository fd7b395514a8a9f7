package mcpoauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// How mcpgate is a client at an authorization server.
const (
	KindMetadataDocument = "metadata-document" // its own client ID metadata document
	KindPreRegistered    = "pre-registered"    // credentials from the config
	KindDynamic          = "dynamic"           // RFC 7591 registration, kept per issuer
)

// Token endpoint authentication methods (RFC 7591 §2).
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
	AuthNone  = "none"
)

// ClientCreds is mcpgate's identity at one authorization server.
type ClientCreds struct {
	Kind         string
	ClientID     string
	ClientSecret string
	AuthMethod   string // AuthBasic, AuthPost or AuthNone
	// RedirectURI is the callback registered for this client: the
	// issuer's own (IssuerRedirect) for a dynamic registration, else the
	// shared one.
	RedirectURI string
}

// IssuerTag names issuer in a callback path: a short hash, so the path
// says which authorization server a code comes from without quoting it.
func IssuerTag(issuer string) string {
	sum := sha256.Sum256([]byte(issuer))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// IssuerRedirect is the callback of a dynamic registration at issuer:
// base + "/" + IssuerTag(issuer). Distinct redirect URIs per authorization
// server are the mix-up defence that needs nothing of the server (RFC 9700
// §4.4.2): a code an honest server sends for mcpgate's registration there
// arrives at that server's callback, so it cannot be passed off as the
// answer to a flow with another (hostile) server, iss or no iss.
func IssuerRedirect(base, issuer string) string { return base + "/" + IssuerTag(issuer) }

// PreRegistered is a client the operator registered at the upstream's
// authorization server by hand.
type PreRegistered struct {
	Issuer       string // "" = whatever issuer the upstream names
	ClientID     string
	ClientSecret string
}

// Registration is a dynamic registration kept for reuse.
type Registration struct {
	Issuer       string `json:"issuer"`
	RedirectURI  string `json:"redirect_uri"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	AuthMethod   string `json:"auth_method"`
	// ExpiresAt is when the client secret expires (RFC 7591 §3.2.1
	// client_secret_expires_at); zero: never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// usable reports whether r can still be used for redirectURI at now.
func (r Registration) usable(issuer, redirectURI string, now time.Time) bool {
	return r.Issuer == issuer && r.RedirectURI == redirectURI && (r.ExpiresAt.IsZero() || now.Add(time.Minute).Before(r.ExpiresAt))
}

// RegistrationStore keeps dynamic registrations, one per issuer, so
// mcpgate registers once per authorization server and not per user.
// Secrets in it must be kept encrypted (the connections package seals
// them in the vault).
type RegistrationStore interface {
	GetRegistration(ctx context.Context, issuer string) (Registration, bool, error)
	PutRegistration(ctx context.Context, r Registration) error
	DeleteRegistration(ctx context.Context, issuer string) error
}

// Registrar chooses and, when needed, performs the registration.
type Registrar struct {
	// MetadataURL is the https URL of mcpgate's client ID metadata
	// document ("" = never use one).
	MetadataURL string
	RedirectURI string
	ClientName  string
	Store       RegistrationStore
	HTTP        *http.Client     // guarded
	Now         func() time.Time // default time.Now
	// locks serialise registration per issuer (striped by its hash): one
	// registration per authorization server, while a slow or hostile
	// server (which a configured upstream names) holds up only its own
	// issuer's connects, not every other upstream's.
	locks [64]sync.Mutex
}

// lock is the mutex of issuer's stripe.
func (r *Registrar) lock(issuer string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(issuer))
	return &r.locks[h.Sum32()%uint32(len(r.locks))]
}

func (r *Registrar) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// ErrNoRegistration: the authorization server offers no way for mcpgate
// to be its client.
var ErrNoRegistration = errors.New("no way to register at the authorization server")

// Client returns mcpgate's client at asm, in the order the MCP
// authorization spec recommends (2025-11-25 "Client Registration
// Approaches"): the client ID metadata document when the server supports
// them, else the pre-registered client (when it is for this issuer),
// else dynamic registration (kept per issuer: registering again for
// every user would litter the server with clients). A client registered
// at one issuer is never presented to another (SEP-2352).
func (r *Registrar) Client(ctx context.Context, asm *oauthex.AuthServerMeta, pre *PreRegistered) (ClientCreds, error) {
	if r.MetadataURL != "" && asm.ClientIDMetadataDocumentSupported {
		return ClientCreds{Kind: KindMetadataDocument, ClientID: r.MetadataURL, AuthMethod: AuthNone, RedirectURI: r.RedirectURI}, nil
	}
	if pre != nil && pre.ClientID != "" && (pre.Issuer == "" || pre.Issuer == asm.Issuer) {
		return ClientCreds{Kind: KindPreRegistered, ClientID: pre.ClientID, ClientSecret: pre.ClientSecret,
			AuthMethod: preRegisteredMethod(asm.TokenEndpointAuthMethodsSupported, pre.ClientSecret != ""), RedirectURI: r.RedirectURI}, nil
	}
	if asm.RegistrationEndpoint == "" {
		return ClientCreds{}, fmt.Errorf("%w %s: it supports neither client ID metadata documents nor dynamic registration, and no client is configured for it", ErrNoRegistration, asm.Issuer)
	}
	return r.dynamic(ctx, asm)
}

func (r *Registrar) dynamic(ctx context.Context, asm *oauthex.AuthServerMeta) (ClientCreds, error) {
	if reg, ok, err := r.stored(ctx, asm.Issuer); err != nil || ok {
		return reg, err
	}
	mu := r.lock(asm.Issuer)
	mu.Lock()
	defer mu.Unlock()
	if reg, ok, err := r.stored(ctx, asm.Issuer); err != nil || ok {
		return reg, err // registered while we waited
	}
	want := dynamicMethod(asm.TokenEndpointAuthMethodsSupported)
	redirect := IssuerRedirect(r.RedirectURI, asm.Issuer)
	meta := &oauthex.ClientRegistrationMetadata{
		RedirectURIs:            []string{redirect},
		TokenEndpointAuthMethod: want,
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		ClientName:              r.ClientName,
		// mcpgate's callback is a web page on its public URL (SEP-837).
		ApplicationType: "web",
	}
	resp, err := oauthex.RegisterClient(ctx, asm.RegistrationEndpoint, meta, r.HTTP)
	if err != nil {
		return ClientCreds{}, fmt.Errorf("dynamic registration at %s: %w", asm.Issuer, registrationError(err))
	}
	method := resp.TokenEndpointAuthMethod
	if method == "" {
		method = want
	}
	if resp.ClientSecret == "" || method == AuthNone {
		method, resp.ClientSecret = AuthNone, ""
	}
	if method != AuthBasic && method != AuthPost && method != AuthNone {
		return ClientCreds{}, fmt.Errorf("dynamic registration at %s: unsupported token_endpoint_auth_method %q", asm.Issuer, method)
	}
	reg := Registration{Issuer: asm.Issuer, RedirectURI: redirect, ClientID: resp.ClientID, ClientSecret: resp.ClientSecret,
		AuthMethod: method, ExpiresAt: resp.ClientSecretExpiresAt}
	if r.Store != nil {
		// Another replica may have registered meanwhile: keep one
		// registration per issuer (users mid-flow hold its client id).
		if other, ok, err := r.stored(ctx, asm.Issuer); err != nil || ok {
			return other, err
		}
		if err := r.Store.PutRegistration(ctx, reg); err != nil {
			return ClientCreds{}, fmt.Errorf("keep the registration at %s: %w", asm.Issuer, err)
		}
	}
	return ClientCreds{Kind: KindDynamic, ClientID: reg.ClientID, ClientSecret: reg.ClientSecret, AuthMethod: method, RedirectURI: redirect}, nil
}

// dynamicMethod is the method to ask for: a secret when the server takes
// one (mcpgate is a confidential client), basic first (the RFC 7591
// default, and what an empty list means per RFC 8414 §2), else none.
func dynamicMethod(supported []string) string {
	switch {
	case len(supported) == 0 || slices.Contains(supported, AuthBasic):
		return AuthBasic
	case slices.Contains(supported, AuthPost):
		return AuthPost
	default:
		return AuthNone
	}
}

// preRegisteredMethod chooses how a pre-registered client authenticates.
func preRegisteredMethod(supported []string, hasSecret bool) string {
	if !hasSecret {
		return AuthNone
	}
	m := dynamicMethod(supported)
	if m == AuthNone && !slices.Contains(supported, AuthNone) {
		return AuthBasic
	}
	return m
}

// MemoryRegistrations is a RegistrationStore in memory (tests, the
// conformance harness).
type MemoryRegistrations struct {
	mu   sync.Mutex
	regs map[string]Registration
}

// GetRegistration implements RegistrationStore.
func (m *MemoryRegistrations) GetRegistration(_ context.Context, issuer string) (Registration, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.regs[issuer]
	return r, ok, nil
}

// PutRegistration implements RegistrationStore.
func (m *MemoryRegistrations) PutRegistration(_ context.Context, r Registration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.regs == nil {
		m.regs = map[string]Registration{}
	}
	m.regs[r.Issuer] = r
	return nil
}

// stored is the kept registration at issuer, when still usable.
func (r *Registrar) stored(ctx context.Context, issuer string) (ClientCreds, bool, error) {
	if r.Store == nil {
		return ClientCreds{}, false, nil
	}
	reg, ok, err := r.Store.GetRegistration(ctx, issuer)
	if err != nil || !ok || !reg.usable(issuer, IssuerRedirect(r.RedirectURI, issuer), r.now()) {
		return ClientCreds{}, false, err
	}
	return ClientCreds{Kind: KindDynamic, ClientID: reg.ClientID, ClientSecret: reg.ClientSecret, AuthMethod: reg.AuthMethod, RedirectURI: reg.RedirectURI}, true, nil
}

// Forget drops the kept registration at issuer when it is clientID's:
// the server no longer knows that client (invalid_client), so the next
// connect registers again.
func (r *Registrar) Forget(ctx context.Context, issuer, clientID string) error {
	if r.Store == nil {
		return nil
	}
	reg, ok, err := r.Store.GetRegistration(ctx, issuer)
	if err != nil || !ok || reg.ClientID != clientID {
		return err
	}
	return r.Store.DeleteRegistration(ctx, issuer)
}

// DeleteRegistration implements RegistrationStore.
func (m *MemoryRegistrations) DeleteRegistration(_ context.Context, issuer string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.regs, issuer)
	return nil
}

// registrationError is err without the answer's body: the SDK quotes
// the whole body when it cannot read it, and a registration answer holds
// the client secret (RFC 7591 §3.2.1), which must not reach a log. What
// remains: the server's error code and description (RFC 7591 §3.2.2), a
// transport failure, or that the answer was unusable.
func registrationError(err error) error {
	var re *oauthex.ClientRegistrationError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		return re
	case errors.As(err, &ue), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return errors.New("the server's answer was not a usable registration")
}
