package catalog

import (
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/grants"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// identityAudience is the audience of the identity tokens an upstream
// gets: its configured audience, else its URL.
func identityAudience(u config.Upstream) string {
	if u.Credentials.Audience != "" {
		return u.Credentials.Audience
	}
	return u.URL
}

// exchangeRules turns each server's token_exchange into the grant's
// rules: the server presents a token issued for it (its resource, or the
// identity audience of its upstreams) and may get one for the audiences
// listed.
func (c *Catalog) exchangeRules() map[string]grants.ExchangeRule {
	rules := map[string]grants.ExchangeRule{}
	for _, s := range c.servers {
		te := s.Config.TokenExchange
		if te == nil {
			continue
		}
		subjects := []string{s.URI}
		for _, u := range s.Upstreams {
			if u.Credentials.Mode == "identity" {
				subjects = append(subjects, identityAudience(u))
			}
		}
		r := rules[te.Client]
		r.SubjectAudiences = appendNew(r.SubjectAudiences, subjects...)
		r.Audiences = appendNew(r.Audiences, te.Audiences...)
		r.Connections = appendNew(r.Connections, te.Connections...)
		r.TTL = te.TTL.Std()
		rules[te.Client] = r
	}
	return rules
}

// introspectionRules maps each declared client's introspect entries
// (server names, "*") to the audiences it may introspect tokens for.
func (c *Catalog) introspectionRules(clients []config.Client) map[string][]string {
	rules := map[string][]string{}
	for _, cl := range clients {
		for _, name := range cl.Introspect {
			if name == "*" {
				rules[cl.ID] = append(rules[cl.ID], "*")
			} else if s := c.byName[name]; s != nil {
				rules[cl.ID] = append(rules[cl.ID], s.URI)
			}
		}
	}
	return rules
}

// connectionNeeds maps each server's URI to the connections its upstreams
// use on the user's behalf.
func (c *Catalog) connectionNeeds() map[string][]string {
	needs := map[string][]string{}
	for _, s := range c.servers {
		for _, u := range s.Upstreams {
			if u.Credentials.Mode == "connection" {
				needs[s.URI] = appendNew(needs[s.URI], u.Credentials.Connection)
			}
			if u.Credentials.Mode == "mcp-oauth" {
				needs[s.URI] = appendNew(needs[s.URI], u.MCPConnectionName(s.Config.Name))
			}
		}
	}
	return needs
}

// maxTokenAge is the longest lifetime of a token issued under this
// config, plus a minute of clock skew.
func (c *Catalog) maxTokenAge(accessTTL time.Duration) time.Duration {
	age := 2 * accessTTL
	age = max(age, tokens.DefaultIdentityTTL) // also the default lifetime of exchanged tokens
	for _, s := range c.servers {
		if s.Config.TokenExchange != nil {
			age = max(age, s.Config.TokenExchange.TTL.Std())
		}
		for _, u := range s.Upstreams {
			age = max(age, u.Credentials.TTL.Std())
		}
	}
	return age + time.Minute // clock skew
}
