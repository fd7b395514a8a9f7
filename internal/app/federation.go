package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mcpgate/mcpgate/internal/authflow"
	"github.com/mcpgate/mcpgate/internal/catalog"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/grants"
	"github.com/mcpgate/mcpgate/internal/idp/oidc"
	"github.com/mcpgate/mcpgate/internal/seal"
	"github.com/mcpgate/mcpgate/internal/store"
)

// federation holds the tenants' identity providers.
type federation struct {
	realms    oidc.Realms // which tenant owns which e-mail domain
	providers map[string]*oidc.Provider
	box       *seal.Box // seals providers' refresh tokens at rest
	store     store.Store
	log       *slog.Logger
}

// newFederation builds a provider per tenant with an oidc block; nil when
// no tenant has one.
func newFederation(ctx context.Context, cfg *config.Config, cat *catalog.Catalog, st store.Store, log *slog.Logger) (*federation, *authflow.Federation, error) {
	issuer := cat.Issuer()
	f := &federation{providers: map[string]*oidc.Provider{}, store: st, log: log}
	var realms []oidc.RealmConfig
	for _, t := range cfg.Tenants {
		if t.OIDC == nil {
			continue
		}
		mapping := map[string]oidc.Grants{}
		for g, gr := range cat.GroupMapping(t.Name) {
			mapping[g] = oidc.Grants{Roles: gr.Roles, Permissions: gr.Permissions}
		}
		p, err := oidc.New(ctx, oidc.Config{Name: t.Name, Tenant: t.Name, Issuer: t.OIDC.Issuer, ClientID: t.OIDC.ClientID,
			ClientSecret: t.OIDC.ClientSecret, Scopes: t.OIDC.Scopes, RedirectURL: issuer + "/oauth/callback/" + t.Name,
			Claims:       oidc.ClaimMapping{Subject: t.OIDC.Claims.Subject, Email: t.OIDC.Claims.Email, Username: t.OIDC.Claims.Username, Groups: t.OIDC.Claims.Groups},
			GroupMapping: mapping})
		if err != nil {
			return nil, nil, fmt.Errorf("tenant %q: %w", t.Name, err)
		}
		f.providers[t.Name] = p
		realms = append(realms, oidc.RealmConfig{Domains: t.Domains, Provider: t.Name})
	}
	if len(f.providers) == 0 {
		return nil, nil, nil
	}
	r, err := oidc.NewRealms(realms)
	if err != nil {
		return nil, nil, err
	}
	f.realms = r
	f.box, err = seal.New([]byte(cfg.SessionKey), "identity provider refresh token")
	if err != nil {
		return nil, nil, err
	}
	af := &authflow.Federation{Providers: f.providers, Realms: r,
		Seal: func(tok string) (string, error) { return f.box.Seal(tok, 0, "") }}
	return f, af, nil
}

// refreshUser asks the user's provider whether it still accepts them and
// updates the record (groups, roles, permissions) with its answer.
func (f *federation) refreshUser(ctx context.Context, u store.User) (store.User, error) {
	p := f.providers[u.Source]
	if p == nil || u.UpstreamToken == "" {
		return u, nil // built-in user, or a provider that gave no refresh token
	}
	var rt string
	if f.box.Open(u.UpstreamToken, "", &rt) != nil {
		// Not the provider's doing: the key that sealed the token is gone.
		f.log.Warn("cannot open the user's stored identity-provider refresh token: the session key changed since they signed in (session_key changed, or the store's session key was replaced); the provider was not asked, the user must sign in again",
			"user", u.ID, "provider", u.Source)
		return u, fmt.Errorf("%w: not asked, the stored provider token cannot be opened (session key changed)", grants.ErrUserRefused)
	}
	id, tok, err := p.Refresh(ctx, rt)
	if errors.Is(err, oidc.ErrRefused) {
		return u, fmt.Errorf("%w: %v", grants.ErrUserRefused, err)
	}
	if err != nil {
		return u, err
	}
	if id.Subject != u.ID {
		return u, fmt.Errorf("%w: provider answered for another subject", grants.ErrUserRefused)
	}
	fresh := id.User(time.Now())
	fresh.Email = f.realms.OwnAddress(u.Source, fresh.Email) // as at sign-in
	fresh.UpstreamToken = u.UpstreamToken
	if tok != nil && tok.RefreshToken != "" && tok.RefreshToken != rt {
		if sealed, err := f.box.Seal(tok.RefreshToken, 0, ""); err == nil {
			fresh.UpstreamToken = sealed
		}
	}
	err = f.store.UpdateUser(ctx, u.ID, func(old store.User) (store.User, error) {
		fresh.CreatedAt, fresh.Username, fresh.Disabled = old.CreatedAt, old.Username, old.Disabled
		return fresh, nil
	})
	return fresh, err
}
