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
	"github.com/mcpgate/mcpgate/internal/catalog"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/connections"
	"github.com/mcpgate/mcpgate/internal/discovery"
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
	catalog  *catalog.Catalog // what this generation serves
	keys     *keys.Manager
	verifier *tokens.CachedVerifier
	access   *access.Checker      // who is cut off
	store    *layered.Store       // the config's users and clients over the store
	conns    *connections.Manager // nil without connections
	mount    []func(*http.ServeMux)
	// background are jobs that run while the app serves.
	background []func(context.Context)
}

// newAuthServer wires the authorization server from cfg and its catalog;
// keep holds what a reload carries over from the previous one (nil:
// nothing).
func newAuthServer(ctx context.Context, cfg *config.Config, cat *catalog.Catalog, st store.Store, log *slog.Logger, keep *kept) (*authServer, error) {
	if keep == nil {
		keep = newKept(cfg)
	}
	issuer := cat.Issuer()
	a := &authServer{catalog: cat}
	v, err := OpenVault(ctx, cfg.Vault, st, log)
	if err != nil {
		return nil, err
	}
	if err := resolveSessionKey(ctx, cfg, st, v); err != nil {
		return nil, err
	}
	accessTTL := cfg.OAuth.AccessTokenTTL.Std()
	a.keys = keys.New(st, &keys.Options{Logger: log, Overlap: max(time.Hour, 2*accessTTL), Sealer: v})
	if err := a.keys.Init(ctx); err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	mint := tokens.NewIssuer(a.keys.Signing, issuer, &tokens.IssuerOptions{TTL: accessTTL})
	a.verifier = tokens.NewCachedVerifier(tokens.NewVerifier(a.keys.Lookup, issuer, nil), 50000, nil)
	if err := a.layer(ctx, cfg, cat, st, keep, log); err != nil {
		return nil, err
	}
	st = a.store // from here on, everything sees the config's entries over the store

	granter, union := cat.Granter(), cat.RedirectAllowlist()
	fed, fedFlow, err := newFederation(ctx, cfg, cat, st, log)
	if err != nil {
		return nil, err
	}
	var refreshUser func(context.Context, store.User) (store.User, error)
	if fed != nil {
		refreshUser = fed.refreshUser
	}
	a.conns, err = newConnections(cfg, st, v, log)
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
		Issuer: issuer, Resources: cat.Resources(), Clients: clients, Granter: granter, Store: st, Federation: fedFlow,
		Directory: idp.NewDirectory(st, keep.loginLimiter(cfg), &idp.DirectoryOptions{DummyLike: dummyLike(cat)}),
		Secret:    secret, SecureCookies: strings.HasPrefix(issuer, "https://"),
		CodeTTL: cfg.OAuth.CodeTTL.Std(), Logger: log, Connections: a.consentConnections(), Access: a.access,
		ScopeText: func(res *oauth.Resource, scope string) string {
			return cat.ScopeDescription(res.ServerName, scope)
		},
	})
	if err != nil {
		return nil, err
	}
	tok := grants.New(grants.Options{
		Issuer: issuer, Resources: cat.TokenResources(), Clients: clients, Granter: granter, Store: st, Tokens: mint, Verify: a.verify,
		AccessTTL: accessTTL, RefreshTTL: cfg.OAuth.RefreshTokenTTL.Std(), Access: a.access, RefreshUser: refreshUser, Logger: log,
		KeysFetcher: strangersFetch, OperatorKeysFetcher: operatorFetch, TouchClient: touchClient(st),
	})
	tok.SetExchanges(cat.ExchangeRules())
	tok.SetIntrospection(cat.IntrospectionRules())
	if a.conns != nil {
		a.conns.SetAccess(a.access.CheckUser)
		tok.SetConnectionTokens(a.conns.Token)
		pages, err := connections.NewPages(a.conns, flow.CurrentUser, flow.CSRF(), secret)
		if err != nil {
			return nil, err
		}
		a.mount = append(a.mount, pages.Mount, mountMetadataDocument(a.conns))
	}
	registrationOn := cfg.OAuth.Registration.Policy != config.RegistrationDisabled
	disc := discovery.New(discovery.Options{Issuer: issuer, Resources: cat.Resources(), Registration: registrationOn, CIMD: cimd, JWKS: a.keys.PublicKeys})
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

// consentConnections tells the consent page which connections a server's
// upstreams use, and whether the user has connected each.
func (a *authServer) consentConnections() func(context.Context, store.User, string) []web.ConnectionLine {
	if a.conns == nil {
		return nil
	}
	return func(ctx context.Context, user store.User, resource string) []web.ConnectionLine {
		names := a.catalog.Connections(resource)
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
