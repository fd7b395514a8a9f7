package config

import (
	"fmt"
	"time"
)

// Defaults of the limits on clients nobody registered (issue 8, finding 9).
const (
	DefaultRegistrationMaxBodyBytes = 16 << 10
	DefaultRegistrationPerAddress   = 10 // per minute
	DefaultRegistrationGlobal       = 60 // per minute
	DefaultUnusedClientTTL          = 24 * time.Hour
	DefaultIdleClientTTL            = 90 * 24 * time.Hour
	DefaultMetadataDocumentMaxBytes = 16 << 10
)

// clientLimitDefaults fills in the registration and metadata document
// limits.
func (o *OAuth) clientLimitDefaults() {
	r := &o.Registration
	if r.MaxBodyBytes == 0 {
		r.MaxBodyBytes = DefaultRegistrationMaxBodyBytes
	}
	if r.RateLimit.PerAddressPerMinute == 0 {
		r.RateLimit.PerAddressPerMinute = DefaultRegistrationPerAddress
	}
	if r.RateLimit.GlobalPerMinute == 0 {
		r.RateLimit.GlobalPerMinute = DefaultRegistrationGlobal
	}
	if r.UnusedClientTTL == 0 {
		r.UnusedClientTTL = Duration(DefaultUnusedClientTTL)
	}
	if r.IdleClientTTL == 0 {
		r.IdleClientTTL = Duration(DefaultIdleClientTTL)
	}
	if o.ClientMetadataDocuments.MaxBytes == 0 {
		o.ClientMetadataDocuments.MaxBytes = DefaultMetadataDocumentMaxBytes
	}
}

// clientLimits checks the registration and metadata document limits and
// the clients' introspection entitlements.
func (v *validator) clientLimits() {
	o := v.c.OAuth
	r := o.Registration
	const maxDoc = 1 << 20
	if r.MaxBodyBytes < 0 || r.MaxBodyBytes > maxDoc {
		v.add("oauth.registration.max_body_bytes", "must be between 1 and %d", maxDoc)
	}
	if o.ClientMetadataDocuments.MaxBytes < 0 || o.ClientMetadataDocuments.MaxBytes > maxDoc {
		v.add("oauth.client_metadata_documents.max_bytes", "must be between 1 and %d", maxDoc)
	}
	if r.RateLimit.PerAddressPerMinute < 0 {
		v.add("oauth.registration.rate_limit.per_address_per_minute", "must be greater than 0")
	}
	if r.RateLimit.GlobalPerMinute < 0 {
		v.add("oauth.registration.rate_limit.global_per_minute", "must be greater than 0")
	}
	v.duration("oauth.registration.unused_client_ttl", r.UnusedClientTTL)
	v.duration("oauth.registration.idle_client_ttl", r.IdleClientTTL)
	if r.UnusedClientTTL > 0 && r.IdleClientTTL > 0 && r.IdleClientTTL < r.UnusedClientTTL {
		v.add("oauth.registration.idle_client_ttl", "must not be shorter than unused_client_ttl")
	}
	for i, cl := range o.Clients {
		for j, name := range cl.Introspect {
			if name != "*" && v.c.ServerByName(name) == nil {
				v.add(fmt.Sprintf("oauth.clients[%d].introspect[%d]", i, j), "%q is not a server (or \"*\")", name)
			}
		}
		if len(cl.Introspect) > 0 && cl.Secret == "" && cl.SecretHash == "" && cl.JWKS == "" && cl.JWKSURI == "" {
			v.add(fmt.Sprintf("oauth.clients[%d].introspect", i), "introspection needs a confidential client (secret or keys)")
		}
	}
}
