package catalog

import (
	"context"
	"fmt"
	"strings"

	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// compileHierarchy compiles s's scope_hierarchy into the checks that
// honour it: the gateway's (calls and list filtering) and the
// authorization server's (offered scopes, granting, consent).
func (s *Server) compileHierarchy() error {
	h, err := policy.NewHierarchy(s.Config.Name, s.Config.ScopeHierarchy)
	if err != nil || h == nil {
		return err
	}
	s.Hierarchy = h
	s.Resource.Hierarchy = h
	s.Auth.Covers = h.Covers
	return nil
}

// Lookup finds the records a step-up decision needs, as the authorization
// server would see them at the next authorization. Either may be nil, and
// a failed lookup falls back to what the token says.
type Lookup struct {
	User   func(ctx context.Context, id string) (store.User, error)
	Client func(ctx context.Context, id string) (store.Client, error)
}

// ScopeAdvisor tells the gateway whether a caller lacking scopes could get
// them by authorizing again: it asks the same Granter, with the same
// hierarchy and the same client limit (Resource.LimitToClient), as the
// authorization code grant will. Scopes it would not grant are
// unobtainable, explained with the policies that would grant them (their
// conditions are what an administrator must make true).
func (c *Catalog) ScopeAdvisor(look Lookup) gateway.ScopeAdvisor {
	return func(ctx context.Context, server string, who *tokens.Claims, scopes []string) gateway.ScopeAdvice {
		s := c.byName[server]
		if s == nil || s.Resource == nil {
			return gateway.ScopeAdvice{}
		}
		advice := gateway.ScopeAdvice{Contact: c.accessContact(s)}
		user, client := c.principal(ctx, look, who)
		limit := s.Resource.LimitToClient
		if user == nil {
			// client_credentials holds a client to its registered scopes
			// exactly (internal/grants), hierarchy or not.
			limit = oauth.LimitToClient
		}
		granted := limit(client, c.granter.Grant(user, client, s.Resource, scopes))
		for _, need := range scopes {
			if s.Hierarchy.Satisfied(granted, need) {
				continue
			}
			if advice.Why == nil {
				advice.Why = map[string]string{}
			}
			advice.Unobtainable = append(advice.Unobtainable, need)
			advice.Why[need] = c.whyNot(s, user, client, need, limit)
		}
		return advice
	}
}

// principal rebuilds who the token speaks for: the user (nil for a
// client acting as itself) and the client, from the store when it can.
func (c *Catalog) principal(ctx context.Context, look Lookup, who *tokens.Claims) (*store.User, store.Client) {
	client := store.Client{ID: who.ClientID}
	if look.Client != nil {
		if cl, err := look.Client(ctx, who.ClientID); err == nil {
			client = cl
		}
	}
	if who.GrantID == "" && who.Subject == who.ClientID {
		return nil, client // client credentials: the client acts as itself
	}
	user := &store.User{ID: who.Subject, Tenant: who.Tenant, Roles: who.Roles, Groups: who.Groups, Permissions: who.Permissions}
	if look.User != nil {
		if u, err := look.User(ctx, who.Subject); err == nil {
			user = &u
		}
	}
	return user, client
}

// whyNot says in words why need is not grantable, and who would get it.
func (c *Catalog) whyNot(s *Server, user *store.User, client store.Client, need string, limit func(store.Client, []string) []string) string {
	if len(s.Resource.Grantable([]string{need})) == 0 {
		return fmt.Sprintf("server %q does not offer it (its scopes: %s)", s.Config.Name, strings.Join(s.Config.Scopes, " "))
	}
	if len(limit(client, []string{need})) == 0 {
		return fmt.Sprintf("the application (client %q) registered for scopes %q only", client.ID, client.Scope)
	}
	grantors := forCaller(c.policies.Grantors(s.Config.Name, need, s.Hierarchy), user)
	if len(grantors) == 0 {
		return "no policy grants it on this server"
	}
	// The conditions themselves are not shown (they may name people or
	// other internals): only the policies' names and the memberships they
	// test (policy.Grantor.Requires).
	var b strings.Builder
	b.WriteString("no policy grants it to you; it is granted by ")
	for i, g := range grantors {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "policy %q", g.Name)
		if len(g.Requires) > 0 {
			fmt.Fprintf(&b, " (depends on %s)", strings.Join(g.Requires, ", "))
		}
	}
	return b.String()
}

// accessContact is who grants missing permissions on s.
func (c *Catalog) accessContact(s *Server) string {
	if s.Config.AccessContact != "" {
		return s.Config.AccessContact
	}
	return c.contact
}

// forCaller keeps what the caller may read of grantors: tenants are not
// memberships a person can be given, and other tenants (their names, the
// policies written for them) are not the caller's business on a server
// several tenants share. A tenant test names only the caller's own tenant;
// a policy whose only tests are other tenants' is left out.
func forCaller(grantors []policy.Grantor, user *store.User) []policy.Grantor {
	own := ""
	if user != nil && user.Tenant != "" {
		own = fmt.Sprintf("tenant %q", user.Tenant)
	}
	out := make([]policy.Grantor, 0, len(grantors))
	for _, g := range grantors {
		var keep []string
		otherTenant := false
		for _, r := range g.Requires {
			if strings.HasPrefix(r, "tenant ") && r != own {
				otherTenant = true
				continue
			}
			keep = append(keep, r)
		}
		if otherTenant && len(keep) == 0 {
			continue
		}
		g.Requires = keep
		out = append(out, g)
	}
	return out
}
