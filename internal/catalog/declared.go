package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/store"
)

// declaredUsers are the config's users as records; a declared user's
// subject is its username. Its tenant's group mapping adds roles and
// permissions, as it would for a user signing in through the tenant's IdP.
func (c *Catalog) declaredUsers(users []config.User) []store.User {
	out := make([]store.User, 0, len(users))
	for _, u := range users {
		roles, perms := c.TenantGrants(u.Tenant, u.Groups)
		out = append(out, store.User{ID: u.Username, Username: u.Username, Email: u.Email, PasswordHash: u.PasswordHash,
			Tenant: u.Tenant, Groups: u.Groups, Roles: appendNew(slices.Clone(u.Roles), roles...),
			Permissions: appendNew(slices.Clone(u.Permissions), perms...), Disabled: u.Disabled, Source: "config"})
	}
	return out
}

// declaredClients are the config's clients as records (kind static); a
// secret given in clear is kept only as its SHA-256.
func declaredClients(clients []config.Client) []store.Client {
	out := make([]store.Client, 0, len(clients))
	for _, c := range clients {
		hash := c.SecretHash
		if c.Secret != "" {
			sum := sha256.Sum256([]byte(c.Secret))
			hash = hex.EncodeToString(sum[:])
		}
		rec := store.Client{ID: c.ID, SecretHash: hash, Name: c.Name, Kind: store.ClientStatic, RedirectURIs: c.RedirectURIs,
			GrantTypes: c.GrantTypes, ResponseTypes: []string{"code"}, TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
			Scope: c.Scope, JWKSURI: c.JWKSURI, Group: c.Group}
		if c.JWKS != "" {
			rec.JWKS = json.RawMessage(c.JWKS)
		}
		out = append(out, rec)
	}
	return out
}

// TenantGrants returns the roles and permissions a tenant's groups give:
// its groups mapping first, then its identity provider's.
func (c *Catalog) TenantGrants(tenant string, groups []string) (roles, perms []string) {
	for _, t := range c.tenants {
		if t.Name != tenant {
			continue
		}
		for _, m := range groupMaps(t) {
			for _, g := range groups {
				if gr, ok := m[g]; ok {
					roles = appendNew(roles, gr.Roles...)
					perms = appendNew(perms, gr.Permissions...)
				}
			}
		}
	}
	return roles, perms
}

// GroupMapping is tenant's groups mapping merged with its identity
// provider's (roles and permissions of a group named in both are
// joined), what the provider applies at sign-in; nil for an unknown tenant.
func (c *Catalog) GroupMapping(tenant string) map[string]config.Grants {
	var mapping map[string]config.Grants
	for _, t := range c.tenants {
		if t.Name != tenant {
			continue
		}
		if mapping == nil {
			mapping = map[string]config.Grants{}
		}
		for _, m := range groupMaps(t) {
			for g, gr := range m {
				cur := mapping[g]
				cur.Roles = appendNew(cur.Roles, gr.Roles...)
				cur.Permissions = appendNew(cur.Permissions, gr.Permissions...)
				mapping[g] = cur
			}
		}
	}
	return mapping
}

// groupMaps are a tenant's group mappings in the order they apply.
func groupMaps(t config.Tenant) []map[string]config.Grants {
	maps := []map[string]config.Grants{t.Groups}
	if t.OIDC != nil {
		maps = append(maps, t.OIDC.Groups)
	}
	return maps
}

// appendNew appends the items list does not hold yet.
func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}
