package app

import (
	"fmt"
	"slices"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/store"
)

// policyGranter decides token scopes with the configured policies.
type policyGranter struct {
	set     *policy.Set
	servers map[string]*config.Server // by name
}

// newGranter compiles the policies; without any, every scope a server
// offers may be granted (oauth.OpenGranter).
func newGranter(cfg *config.Config) (oauth.Granter, *policy.Set, error) {
	if len(cfg.Policies) == 0 {
		return oauth.OpenGranter{}, nil, nil
	}
	set, probs := policy.Compile(policySpecs(cfg.Policies))
	if len(probs) > 0 {
		return nil, nil, fmt.Errorf("policies: %v", probs[0])
	}
	g := &policyGranter{set: set, servers: map[string]*config.Server{}}
	for i := range cfg.Servers {
		g.servers[cfg.Servers[i].Name] = &cfg.Servers[i]
	}
	return g, set, nil
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

// PolicyInput builds what a policy condition sees.
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
	srv := g.servers[res.ServerName]
	return g.set.Grant(PolicyInput(user, client, srv), requested, res.Scopes).Granted
}

// toolScopes turns a server's tool rules into the gateway's check; nil when
// the server has none (a valid token then reaches every tool).
func toolScopes(s *config.Server) (gateway.RequiredScope, error) {
	if len(s.Tools) == 0 {
		return nil, nil
	}
	rules := make([]policy.ToolRule, 0, len(s.Tools))
	for _, r := range s.Tools {
		rules = append(rules, policy.ToolRule{Kind: policy.Kind(r.Kind), Pattern: r.Match, Scope: r.Scope})
	}
	ts, err := policy.NewToolScopes(s.Name, rules, func(tool string) string { return "mcp:" + tool })
	if err != nil {
		return nil, fmt.Errorf("server %q: tools: %w", s.Name, err)
	}
	return func(kind, name string) string {
		switch kind {
		case "resource":
			return ts.RequiredResource(name)
		case "prompt":
			return ts.RequiredPrompt(name)
		}
		return ts.Required(name)
	}, nil
}

// TenantGrants returns the roles and permissions a tenant's groups give.
func TenantGrants(cfg *config.Config, tenant string, groups []string) (roles, perms []string) {
	for _, t := range cfg.Tenants {
		if t.Name != tenant {
			continue
		}
		maps := []map[string]config.Grants{t.Groups}
		if t.OIDC != nil {
			maps = append(maps, t.OIDC.Groups)
		}
		for _, m := range maps {
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

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}
