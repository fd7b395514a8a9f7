package app

// Wiring of what concerns clients nobody registered: the guarded fetchers,
// the expiry of unused registrations, and introspection entitlements.

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/registration"
	"github.com/mcpgate/mcpgate/internal/safefetch"
	"github.com/mcpgate/mcpgate/internal/store"
)

// everywhere is the allowance that turns the address guard off.
var everywhere = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// clientFetchers builds the guarded fetchers: strangers is for what
// clients nobody registered point at (metadata documents, their
// jwks_uri), public https addresses only unless the config allows private
// ones for development; operator is for the jwks_uri an operator wrote in
// the config, which may name an internal host (the config already checked
// it is https, or http on loopback).
func clientFetchers(cfg *config.Config) (strangers, operator *safefetch.Fetcher, err error) {
	o := &safefetch.Options{}
	if cfg.OAuth.ClientMetadataDocuments.AllowPrivateAddresses {
		o.Allow = everywhere
	}
	if strangers, err = safefetch.New(o); err != nil {
		return nil, nil, err
	}
	operator, err = safefetch.New(&safefetch.Options{Allow: everywhere, AllowHTTP: true})
	return strangers, operator, err
}

// introspectionRules maps each configured client's introspect entries
// (server names, "*") to the audiences it may introspect tokens for.
func introspectionRules(cfg *config.Config, issuer string) map[string][]string {
	rules := map[string][]string{}
	for _, c := range cfg.OAuth.Clients {
		for _, name := range c.Introspect {
			if name == "*" {
				rules[c.ID] = append(rules[c.ID], "*")
			} else if s := cfg.ServerByName(name); s != nil {
				rules[c.ID] = append(rules[c.ID], issuer+s.Path)
			}
		}
	}
	return rules
}

// touchClient records clients' use when the store can (store.ClientActivity).
func touchClient(st store.Store) func(context.Context, string, time.Time) error {
	if ca, ok := st.(store.ClientActivity); ok {
		return ca.TouchClient
	}
	return nil
}

// clientExpiry is the background job deleting self-registered clients
// nobody uses (oauth.registration.unused_client_ttl, idle_client_ttl).
func clientExpiry(cfg *config.Config, st store.Store, log *slog.Logger) func(context.Context) {
	ca, ok := st.(store.ClientActivity)
	if !ok {
		return func(context.Context) {}
	}
	e := &registration.Expiry{Store: ca, UnusedTTL: cfg.OAuth.Registration.UnusedClientTTL.Std(),
		IdleTTL: cfg.OAuth.Registration.IdleClientTTL.Std(), Logger: log}
	return e.Run
}
