package config

import (
	"fmt"
	"strings"

	"github.com/mcpgate/mcpgate/internal/oauth"
)

// ownAudiences refuses a token audience, named for an upstream, that is
// one of this gateway's own protected servers. An identity token
// (credentials.mode identity) is handed to an upstream, and an exchanged
// token (token_exchange.audiences) to whatever the upstream calls: with
// a gateway server's resource URI as their audience, that upstream could
// present them to the gateway as access tokens for the other server,
// carrying scopes no consent and no policy gave for it.
func (v *validator) ownAudiences() {
	base := strings.TrimRight(v.c.PublicURL, "/")
	if base == "" {
		return
	}
	ours := map[string]string{}
	for _, s := range v.c.Servers {
		ours[base+defaultString(s.Path, "/mcp/"+s.Name)] = s.Name
	}
	check := func(path, aud string) {
		if name, ok := ours[strings.TrimRight(aud, "/")]; ok && aud != "" {
			v.add(path, "%q is server %s of this gateway: tokens handed to upstreams must never be valid at the gateway", aud, name)
			return
		}
		// Any other spelling the authorization server reads as one of
		// them (host case, default port: oauth.Resources.Lookup).
		for uri, name := range ours {
			if oauth.SameResource(uri, aud) {
				v.add(path, "%q is server %s of this gateway: tokens handed to upstreams must never be valid at the gateway", aud, name)
				return
			}
		}
	}
	for i, s := range v.c.Servers {
		p := fmt.Sprintf("servers[%d]", i)
		identity := func(path string, u Upstream) {
			if u.Credentials.Mode != "identity" {
				return
			}
			aud := u.Credentials.Audience
			if aud == "" {
				aud = u.URL // the default audience
			}
			check(path, aud)
		}
		if s.Upstream != nil {
			identity(p+".upstream.credentials.audience", *s.Upstream)
		}
		for j, u := range s.Upstreams {
			identity(fmt.Sprintf("%s.upstreams[%d].credentials.audience", p, j), u)
		}
		if te := s.TokenExchange; te != nil {
			for k, a := range te.Audiences {
				check(fmt.Sprintf("%s.token_exchange.audiences[%d]", p, k), a)
			}
		}
	}
}
