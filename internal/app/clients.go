package app

// Wiring of what concerns clients nobody registered: the guarded fetchers,
// and the expiry of unused registrations.

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/registration"
	"github.com/mcpgate/mcpgate/internal/safefetch"
	"github.com/mcpgate/mcpgate/internal/store"
)

// everywhere is the allowance that turns the address guard off.
var everywhere = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// strangersTLS, when set, is the TLS client configuration of the
// strangers' fetcher. Only this package's tests set it, to trust the
// certificate of the loopback https server that serves their client ID
// metadata documents (as internal/registration's tests pass TLSConfig to
// safefetch). Production leaves it nil: the system's roots, and every
// other rule of the guard (https only, public addresses unless
// allow_private_addresses) holds either way.
var strangersTLS atomic.Pointer[tls.Config]

// clientFetchers builds the guarded fetchers: strangers is for what
// clients nobody registered point at (metadata documents, their
// jwks_uri), public https addresses only unless the config allows private
// ones for development; operator is for the jwks_uri an operator wrote in
// the config, which may name an internal host (the config already checked
// it is https, or http on loopback).
func clientFetchers(cfg *config.Config) (strangers, operator *safefetch.Fetcher, err error) {
	o := &safefetch.Options{TLSConfig: strangersTLS.Load()}
	if cfg.OAuth.ClientMetadataDocuments.AllowPrivateAddresses {
		o.Allow = everywhere
	}
	if strangers, err = safefetch.New(o); err != nil {
		return nil, nil, err
	}
	operator, err = safefetch.New(&safefetch.Options{Allow: everywhere, AllowHTTP: true})
	return strangers, operator, err
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
