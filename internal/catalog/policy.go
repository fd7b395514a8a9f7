package catalog

import (
	"fmt"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/store"
)

// policyGranter decides token scopes with the configured policies.
type policyGranter struct {
	set     *policy.Set
	servers map[string]*Server // by name
}

// compilePolicies compiles the policies into a Granter; without any,
// every scope a server offers may be granted (oauth.OpenGranter).
func compilePolicies(ps []config.Policy, servers map[string]*Server) (oauth.Granter, *policy.Set, error) {
	if len(ps) == 0 {
		return oauth.OpenGranter{}, nil, nil
	}
	set, probs := policy.Compile(policySpecs(ps))
	if len(probs) > 0 {
		return nil, nil, fmt.Errorf("policies: %v", probs[0])
	}
	return &policyGranter{set: set, servers: servers}, set, nil
}

func policySpecs(ps []config.Policy) []policy.Spec {
	specs := make([]policy.Spec, 0, len(ps))
	for _, p := range ps {
		s := policy.Spec{Name: p.Name, When: p.When}
		for _, a := range p.Allow {
			s.Allow = append(s.Allow, policy.Allow{Servers: a.Servers, Scopes: a.Scopes})
		}
		specs = append(specs, s)
	}
	return specs
}

// PolicyInput builds what a policy condition sees: the user (nil for a
// machine client), the client, and the server (nil: none).
func PolicyInput(user *store.User, client store.Client, server *config.Server) policy.Input {
	in := policy.Input{Client: policy.Client{ID: client.ID, Name: client.Name, Group: client.Group, Type: policy.ClientUserDelegated}}
	if user == nil {
		in.Client.Type = policy.ClientMachine
	} else {
		in.User = policy.User{Sub: user.ID, Email: user.Email, Roles: user.Roles, Permissions: user.Permissions, Groups: user.Groups}
		if user.Tenant != "" {
			in.User.TenantIDs = []string{user.Tenant}
		}
	}
	if server != nil {
		in.Server = policy.Server{Name: server.Name, Tenant: server.Tenant, Labels: server.Labels}
	}
	return in
}

func (g *policyGranter) Grant(user *store.User, client store.Client, res *oauth.Resource, requested []string) []string {
	var srv *config.Server
	var h *policy.Hierarchy
	if s := g.servers[res.ServerName]; s != nil {
		srv, h = s.Config, s.Hierarchy
	}
	return g.set.GrantWithin(PolicyInput(user, client, srv), requested, res.Scopes, h).Granted
}
