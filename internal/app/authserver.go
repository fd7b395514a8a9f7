package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/authflow"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/connections"
	"github.com/mcpgate/mcpgate/internal/discovery"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/grants"
	"github.com/mcpgate/mcpgate/internal/idp"
	"github.com/mcpgate/mcpgate/internal/keys"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/registration"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/layered"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/internal/web"
)

// authServer is the authorization server's parts, wired from the config.
type authServer struct {
	resources oauth.Resources
	specs     map[string]*gateway.AuthSpec // by server name
	keys      *keys.Manager
	verifier  *tokens.CachedVerifier
	access    *access.Checker      // who is cut off
	store     *layered.Store       // the config's users and clients over the store
	conns     *connections.Manager // nil without connections
	mount     []func(*http.ServeMux)
	// background are jobs that run while the app serves.
	background []func(context.Context)
}

func newAuthServer(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger) (*authServer, error) {
	issuer := strings.TrimRight(cfg.PublicURL, "/")
	a := &authServer{resources: oauth.Resources{}, specs: map[string]*gateway.AuthSpec{}}
	allPatterns, err := a.protect(cfg, issuer)
	if err != nil {
		return nil, err
	}
	accessTTL := cfg.OAuth.AccessTokenTTL.Std()
	a.keys = keys.New(st, &keys.Options{Logger: log, Overlap: max(time.Hour, 2*accessTTL)})
	if err := a.keys.Init(ctx); err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	mint := tokens.NewIssuer(a.keys.Signing, issuer, &tokens.IssuerOptions{TTL: accessTTL})
	a.verifier = tokens.NewCachedVerifier(tokens.NewVerifier(a.keys.Lookup, issuer, nil), 50000, nil)
	a.access = access.New(st, &access.Options{Refresh: cfg.OAuth.RevocationRefresh.Std(), MaxTokenAge: maxTokenAge(cfg), Logger: log})
	if a.store, err = layerConfig(ctx, cfg, st, a.access, log); err != nil {
		return nil, err
	}
	st = a.store // from here on, everything sees the config's entries over the store

	granter, _, err := newGranter(cfg)
	if err != nil {
		return nil, err
	}
	allPatterns = append(allPatterns, cfg.OAuth.Registration.RedirectURIs...)
	union, err := registration.ParseAllowlist(allPatterns)
	if err != nil {
		return nil, fmt.Errorf("redirect_uris: %w", err)
	}
	fed, fedFlow, err := newFederation(ctx, cfg, st, log)
	if err != nil {
		return nil, err
	}
	var refreshUser func(context.Context, store.User) (store.User, error)
	if fed != nil {
		refreshUser = fed.refreshUser
	}
	a.conns, err = newConnections(ctx, cfg, st, log)
	if err != nil {
		return nil, err
	}
	clients := &clientSource{store: st}
	strangersFetch, operatorFetch, err := clientFetchers(cfg)
	if err != nil {
		return nil, err
	}
	cimd := !cfg.OAuth.ClientMetadataDocuments.Disabled
	if cimd {
		clients.cimd, err = registration.NewResolver(&registration.ResolverOptions{
			Fetcher: strangersFetch, MaxBytes: cfg.OAuth.ClientMetadataDocuments.MaxBytes, Allowlist: union, Logger: log})
		if err != nil {
			return nil, err
		}
	}
	secret := []byte(cfg.SessionKey)
	flow, err := authflow.New(authflow.Options{
		Issuer: issuer, Resources: a.resources, Clients: clients, Granter: granter, Store: st, Federation: fedFlow,
		Directory: idp.NewDirectory(st, idp.NewLimiter(cfg.OAuth.Login.MaxFailures, cfg.OAuth.Login.Lockout.Std(), nil)),
		Secret:    secret, SecureCookies: strings.HasPrefix(issuer, "https://"),
		CodeTTL: cfg.OAuth.CodeTTL.Std(), Logger: log, Connections: a.consentConnections(cfg, issuer),
		ScopeText: func(res *oauth.Resource, scope string) string {
			if s := cfg.ServerByName(res.ServerName); s != nil {
				return s.ScopeDescriptions[scope]
			}
			return ""
		},
	})
	if err != nil {
		return nil, err
	}
	tok := grants.New(grants.Options{
		Issuer: issuer, Resources: a.resources, Clients: clients, Granter: granter, Store: st, Tokens: mint, Verify: a.verify,
		AccessTTL: accessTTL, RefreshTTL: cfg.OAuth.RefreshTokenTTL.Std(), Access: a.access, RefreshUser: refreshUser, Logger: log,
		KeysFetcher: strangersFetch, OperatorKeysFetcher: operatorFetch, TouchClient: touchClient(st),
	})
	tok.SetExchanges(exchangeRules(cfg, issuer))
	tok.SetIntrospection(introspectionRules(cfg, issuer))
	if a.conns != nil {
		a.conns.SetAccess(a.access.CheckUser)
		tok.SetConnectionTokens(a.conns.Token)
		pages, err := connections.NewPages(a.conns, flow.CurrentUser, flow.CSRF(), secret)
		if err != nil {
			return nil, err
		}
		a.mount = append(a.mount, pages.Mount)
	}
	registrationOn := cfg.OAuth.Registration.Policy != config.RegistrationDisabled
	disc := discovery.New(discovery.Options{Issuer: issuer, Resources: a.resources, Registration: registrationOn, CIMD: cimd, JWKS: a.keys.PublicKeys})
	a.mount = append(a.mount, flow.Mount, tok.Mount, disc.Mount)
	if registrationOn {
		policy := cfg.OAuth.Registration.Policy
		if policy == config.RegistrationAllowlisted {
			policy = registration.PolicyAllowlisted
		}
		reg, err := registration.New(st, &registration.Options{Policy: policy, Allowlist: union,
			InitialAccessTokens: cfg.OAuth.Registration.InitialAccessTokens, Logger: log,
			MaxBodyBytes: cfg.OAuth.Registration.MaxBodyBytes, PerAddressPerMinute: cfg.OAuth.Registration.RateLimit.PerAddressPerMinute,
			GlobalPerMinute: cfg.OAuth.Registration.RateLimit.GlobalPerMinute})
		if err != nil {
			return nil, err
		}
		a.background = append(a.background, clientExpiry(cfg, st, log))
		a.mount = append(a.mount, func(mux *http.ServeMux) { mux.Handle("POST /oauth/register", reg) })
	}
	return a, nil
}

// revokedToken is the gateway's cut-off check: the access predicate,
// answered from memory (no store read per request).
func (a *authServer) revokedToken(c *tokens.Claims) bool {
	return a.access.Check(context.Background(), access.FromClaims(c)) != nil
}

// protect registers every server with auth: oauth as a protected
// resource (RFC 8707 / RFC 9728) with its gateway-side checks, and returns
// every redirect URI pattern the servers allow.
func (a *authServer) protect(cfg *config.Config, issuer string) ([]string, error) {
	var patterns []string
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		if s.Auth != config.AuthOAuth {
			continue
		}
		allow, err := registration.ParseAllowlist(s.RedirectURIs)
		if err != nil {
			return nil, fmt.Errorf("server %q: redirect_uris: %w", s.Name, err)
		}
		patterns = append(patterns, s.RedirectURIs...)
		uri := issuer + s.Path
		meta := discovery.MetadataURL(issuer, s.Path)
		a.resources[uri] = &oauth.Resource{URI: uri, ServerName: s.Name, Scopes: s.Scopes, AllowsRedirect: allow.Allows, MetadataURL: meta}
		required, err := toolScopes(s)
		if err != nil {
			return nil, err
		}
		a.specs[s.Name] = &gateway.AuthSpec{Resource: uri, MetadataURL: meta, Scopes: s.Scopes, Required: required}
	}
	return patterns, nil
}

// verify checks an access token for audience with cached keys only.
func (a *authServer) verify(token, audience string) (*tokens.Claims, error) {
	return a.verifier.Verify(token, audience)
}

// clientSource finds clients in the store, or by their metadata document.
type clientSource struct {
	store store.Store
	cimd  *registration.Resolver
}

func (c *clientSource) Client(ctx context.Context, id string) (store.Client, error) {
	if c.cimd != nil && registration.IsMetadataClientID(id) {
		return c.cimd.Resolve(ctx, id)
	}
	return c.store.GetClient(ctx, id)
}

// exchangeRules turns each server's token_exchange into the grant's
// rules: the server presents a token issued for it (its resource, or the
// identity audience of its upstreams) and may get one for the audiences
// listed.
func exchangeRules(cfg *config.Config, issuer string) map[string]grants.ExchangeRule {
	rules := map[string]grants.ExchangeRule{}
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		if s.TokenExchange == nil {
			continue
		}
		subjects := []string{issuer + s.Path}
		for _, u := range cfg.ResolvedUpstreams(s) {
			if u.Credentials.Mode == "identity" {
				aud := u.Credentials.Audience
				if aud == "" {
					aud = u.URL
				}
				subjects = append(subjects, aud)
			}
		}
		r := rules[s.TokenExchange.Client]
		r.SubjectAudiences = appendNew(r.SubjectAudiences, subjects...)
		r.Audiences = appendNew(r.Audiences, s.TokenExchange.Audiences...)
		r.Connections = appendNew(r.Connections, s.TokenExchange.Connections...)
		r.TTL = s.TokenExchange.TTL.Std()
		rules[s.TokenExchange.Client] = r
	}
	return rules
}

// consentConnections tells the consent page which connections a server's
// upstreams use, and whether the user has connected each.
func (a *authServer) consentConnections(cfg *config.Config, issuer string) func(context.Context, store.User, string) []web.ConnectionLine {
	if a.conns == nil {
		return nil
	}
	needs := map[string][]string{} // resource -> connection names
	for i := range cfg.Servers {
		s := &cfg.Servers[i]
		for _, u := range cfg.ResolvedUpstreams(s) {
			if u.Credentials.Mode == "connection" {
				needs[issuer+s.Path] = appendNew(needs[issuer+s.Path], u.Credentials.Connection)
			}
		}
	}
	return func(ctx context.Context, user store.User, resource string) []web.ConnectionLine {
		names := needs[resource]
		if len(names) == 0 {
			return nil
		}
		status, err := a.conns.Status(ctx, user)
		if err != nil {
			return nil
		}
		var out []web.ConnectionLine
		for _, st := range status {
			if slices.Contains(names, st.Name) {
				out = append(out, web.ConnectionLine{Name: st.Name, Description: st.Description, Connected: st.Connected})
			}
		}
		return out
	}
}
