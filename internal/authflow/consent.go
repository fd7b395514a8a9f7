package authflow

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/web"
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

// consentCovers: c allowed every scope of scopes on resource, itself or
// through a broader scope covering it (the server's hierarchy h, nil:
// none): a person who allowed "mcp:bq" is not asked again for
// "mcp:bq.read.tables" when a client steps up for it.
func consentCovers(c store.Consent, resource string, scopes []string, h oauth.ScopeHierarchy) bool {
	if !slices.Contains(c.Resources, resource) {
		return false
	}
	legacy := len(c.Resources) == 1
	allowed := func(s string) bool {
		return slices.Contains(c.Scopes, consentKey(resource, s)) ||
			legacy && slices.Contains(c.Scopes, s) && !strings.Contains(s, " ")
	}
	for _, s := range scopes {
		if allowed(s) || h != nil && slices.ContainsFunc(c.Scopes, func(e string) bool {
			broad, ok := strings.CutPrefix(e, resource+" ")
			if !ok && legacy && !strings.Contains(e, " ") {
				broad, ok = e, true
			}
			return ok && h.Covers(broad, s)
		}) {
			continue
		}
		return false
	}
	return true
}

// scopeLines are the scopes a person is asked to allow, each permission
// once: a scope a broader requested scope covers is not listed on its own,
// and a broad scope says what it includes.
func scopeLines(res *oauth.Resource, scopes []string, text func(string) string) []web.ScopeLine {
	h := res.Hierarchy
	var lines []web.ScopeLine
	for i, s := range scopes {
		if h != nil && slices.ContainsFunc(scopes, func(o string) bool { return o != s && h.Covers(o, s) }) {
			continue
		}
		if slices.Contains(scopes[:i], s) {
			continue
		}
		line := web.ScopeLine{Scope: s, Description: text(s)}
		if h != nil {
			line.Includes = strings.Join(h.Narrower(s), ", ")
		}
		lines = append(lines, line)
	}
	return lines
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
	var hier oauth.ScopeHierarchy
	if res := h.o.Resources[req.Resource]; res != nil {
		hier = res.Hierarchy
	}
	return err == nil && consentCovers(c, req.Resource, req.Scopes, hier)
}

// splitConsented splits the scopes of req into those the person is asked
// for now and those they already allowed this client on this server (a
// step-up asks only for what is new; the page still says what the token
// will carry).
func (h *Handler) splitConsented(ctx context.Context, user store.User, req request) (asked, allowed []string) {
	c, err := h.o.Store.GetConsent(ctx, user.ID, req.ClientID)
	if err != nil {
		return req.Scopes, nil
	}
	var hier oauth.ScopeHierarchy
	if res := h.o.Resources[req.Resource]; res != nil {
		hier = res.Hierarchy
	}
	for _, s := range req.Scopes {
		if consentCovers(c, req.Resource, []string{s}, hier) {
			allowed = append(allowed, s)
		} else {
			asked = append(asked, s)
		}
	}
	return asked, allowed
}
