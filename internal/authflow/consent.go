package authflow

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// Remembered consent is per (user, client, server, scope): allowing a
// client one scope on one server says nothing about another server, even
// one with the same scope names.
//
// The store keeps one Consent per (user, client) with two flat lists. A
// flat pair cannot say which scope was allowed on which server (its cross
// product is what let consent on one server cover another), so each entry
// of Scopes is qualified with its server: "RESOURCE SCOPE". A space cannot
// occur in a resource URI nor in a scope token (RFC 6749 §3.3), so the
// pair splits unambiguously. Resources lists the servers consented to,
// including those allowed with no scope at all.
//
// Records written before this rule hold bare scopes; they are honoured
// only when they name a single resource (then the cross product is
// exact), and otherwise ask again. Asking again is the safe failure.

// consentKey is one remembered (server, scope) pair.
func consentKey(resource, scope string) string { return resource + " " + scope }

// consentCovers: c allowed every scope of scopes on resource.
func consentCovers(c store.Consent, resource string, scopes []string) bool {
	if !slices.Contains(c.Resources, resource) {
		return false
	}
	legacy := len(c.Resources) == 1
	for _, s := range scopes {
		if slices.Contains(c.Scopes, consentKey(resource, s)) {
			continue
		}
		if legacy && slices.Contains(c.Scopes, s) && !strings.Contains(s, " ") {
			continue
		}
		return false
	}
	return true
}

// withConsent returns prev (zero if none) extended with scopes on
// resource, in the qualified form; bare legacy entries are qualified when
// they can be attributed (one resource) and dropped when they cannot.
func withConsent(prev store.Consent, found bool, userID, clientID, resource string, scopes []string, now time.Time) store.Consent {
	c := store.Consent{UserID: userID, ClientID: clientID, Scopes: []string{}, Resources: []string{}, CreatedAt: now, UpdatedAt: now}
	if found {
		c.CreatedAt = prev.CreatedAt
		c.Resources = append(c.Resources, prev.Resources...)
		for _, s := range prev.Scopes {
			switch {
			case strings.Contains(s, " "):
				c.Scopes = append(c.Scopes, s)
			case len(prev.Resources) == 1:
				c.Scopes = append(c.Scopes, consentKey(prev.Resources[0], s))
			}
		}
	}
	if !slices.Contains(c.Resources, resource) {
		c.Resources = append(c.Resources, resource)
	}
	for _, s := range scopes {
		if k := consentKey(resource, s); !slices.Contains(c.Scopes, k) {
			c.Scopes = append(c.Scopes, k)
		}
	}
	return c
}

// hasConsent: the user already allowed this client these scopes on this
// resource, and has not revoked it.
func (h *Handler) hasConsent(ctx context.Context, user store.User, req request) bool {
	c, err := h.o.Store.GetConsent(ctx, user.ID, req.ClientID)
	return err == nil && consentCovers(c, req.Resource, req.Scopes)
}
