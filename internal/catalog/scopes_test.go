package catalog

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

const hierarchyYAML = `
access_contact: it-help@example.com
servers:
  - name: bq
    upstream: {url: "http://up/mcp"}
    scopes: [mcp:bq, mcp:bq.read, mcp:base]
    scope_hierarchy:
      mcp:bq: [mcp:bq.read, "mcp:bq.write.*"]
      mcp:bq.read: ["mcp:bq.read.*"]
    tools:
      - {match: "read_*", scope: mcp:bq.read.tables}
      - {match: "write_*", scope: mcp:bq.write.rows}
      - {match: "admin_*", scope: mcp:admin}
      - {match: "*", scope: mcp:base}
  - name: other
    upstream: {url: "http://up2/mcp"}
    scopes: [mcp:x]
    access_contact: "#data-platform"
policies:
  - name: everyone
    when: "true"
    allow: [{servers: [bq], scopes: [mcp:base, mcp:bq.read]}]
  - name: analysts
    when: '"analysts" in user.groups'
    allow: [{servers: [bq], scopes: [mcp:bq]}]
`

// TestScopeHierarchy: the hierarchy compiles into the gateway's check and
// the authorization server's offer and grant.
func TestScopeHierarchy(t *testing.T) {
	c := compile(t, hierarchyYAML)
	s := c.Server("bq")
	if s.Hierarchy == nil || s.Auth.Covers == nil || s.Resource.Hierarchy == nil {
		t.Fatal("hierarchy not compiled into the checks")
	}
	if !s.Auth.Covers("mcp:bq", "mcp:bq.read.tables") || s.Auth.Covers("mcp:bq.read", "mcp:bq.write.rows") {
		t.Error("gateway check ignores the hierarchy")
	}
	if got := s.Resource.Grantable([]string{"mcp:bq.write.rows", "mcp:nope"}); !slices.Equal(got, []string{"mcp:bq.write.rows"}) {
		t.Errorf("offered: %v", got)
	}
	analyst := &store.User{ID: "ann", Groups: []string{"analysts"}}
	reader := &store.User{ID: "rob"}
	if got := c.Granter().Grant(analyst, store.Client{ID: "app"}, s.Resource, []string{"mcp:bq.write.rows"}); !slices.Equal(got, []string{"mcp:bq.write.rows"}) {
		t.Errorf("analyst granted %v", got)
	}
	if got := c.Granter().Grant(reader, store.Client{ID: "app"}, s.Resource, []string{"mcp:bq.write.rows", "mcp:bq.read.tables"}); !slices.Equal(got, []string{"mcp:bq.read.tables"}) {
		t.Errorf("reader granted %v", got)
	}
	if c.Server("other").Hierarchy != nil || c.Server("other").Auth.Covers != nil {
		t.Error("a server without a hierarchy got one")
	}
}

// TestScopeAdvisor: the advisor answers as the next authorization would,
// and says who would get what it cannot grant.
func TestScopeAdvisor(t *testing.T) {
	c := compile(t, hierarchyYAML)
	users := map[string]store.User{"ann": {ID: "ann", Groups: []string{"analysts"}}, "rob": {ID: "rob"}}
	clients := map[string]store.Client{"narrow": {ID: "narrow", Scope: "mcp:base"}, "wide": {ID: "wide", Scope: "mcp:base mcp:bq"},
		"bot2": {ID: "bot2", Scope: "mcp:bq", Group: "bots"}}
	look := Lookup{
		User: func(_ context.Context, id string) (store.User, error) {
			if u, ok := users[id]; ok {
				return u, nil
			}
			return store.User{}, errors.New("not found")
		},
		Client: func(_ context.Context, id string) (store.Client, error) {
			if cl, ok := clients[id]; ok {
				return cl, nil
			}
			return store.Client{}, errors.New("not found")
		},
	}
	advise := c.ScopeAdvisor(look)
	tok := func(sub, client string) *tokens.Claims {
		return &tokens.Claims{Subject: sub, ClientID: client, GrantID: "g"}
	}
	for _, tc := range []struct {
		name         string
		server       string
		who          *tokens.Claims
		scopes       []string
		unobtainable []string
		why          string // in the explanation of the first unobtainable scope
		contact      string
	}{
		{"analyst can step up to a narrow write scope", "bq", tok("ann", "app"), []string{"mcp:bq.write.rows"}, nil, "", "it-help@example.com"},
		{"reader cannot: the analysts policy would", "bq", tok("rob", "app"), []string{"mcp:bq.write.rows", "mcp:bq.read.tables"}, []string{"mcp:bq.write.rows"},
			`it is granted by policy "analysts" (depends on group "analysts")`, "it-help@example.com"},
		{"a scope the server does not offer", "bq", tok("ann", "app"), []string{"mcp:admin"}, []string{"mcp:admin"}, `server "bq" does not offer it`, ""},
		{"the client's registration excludes it", "bq", tok("ann", "narrow"), []string{"mcp:bq.read.tables"}, []string{"mcp:bq.read.tables"}, `registered for scopes "mcp:base" only`, ""},
		{"a client registered for the broad scope may step up for a narrow one", "bq", tok("ann", "wide"), []string{"mcp:bq.write.rows"}, nil, "", ""},
		{"unknown user: the token's claims count", "bq", &tokens.Claims{Subject: "zed", ClientID: "app", GrantID: "g", Groups: []string{"analysts"}}, []string{"mcp:bq.write.rows"}, nil, "", ""},
		{"machine client: no policy for machines grants it", "bq", &tokens.Claims{Subject: "bot", ClientID: "bot"}, []string{"mcp:bq.write.rows"}, []string{"mcp:bq.write.rows"}, "analysts", ""},
		{"machine client: its registration holds exactly, hierarchy or not", "bq", &tokens.Claims{Subject: "bot2", ClientID: "bot2"}, []string{"mcp:bq.read.tables"}, []string{"mcp:bq.read.tables"}, "registered for scopes", ""},
		{"server contact", "other", tok("ann", "app"), []string{"mcp:y"}, []string{"mcp:y"}, "does not offer", "#data-platform"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := advise(context.Background(), tc.server, tc.who, tc.scopes)
			if !slices.Equal(a.Unobtainable, tc.unobtainable) {
				t.Fatalf("unobtainable %v, want %v (why %v)", a.Unobtainable, tc.unobtainable, a.Why)
			}
			if tc.why != "" && !strings.Contains(a.Why[tc.unobtainable[0]], tc.why) {
				t.Errorf("why %q, want it to say %q", a.Why[tc.unobtainable[0]], tc.why)
			}
			if tc.contact != "" && a.Contact != tc.contact {
				t.Errorf("contact %q, want %q", a.Contact, tc.contact)
			}
		})
	}
}

// TestScopeAdvisorTenants: on a server several tenants share, the words
// about a missing scope never name another tenant nor a policy written
// only for one.
func TestScopeAdvisorTenants(t *testing.T) {
	c := compile(t, `
servers:
  - name: shared
    upstream: {url: "http://up/mcp"}
    scopes: [mcp:base, mcp:admin]
    tools:
      - {match: "admin_*", scope: mcp:admin}
      - {match: "*", scope: mcp:base}
policies:
  - name: everyone
    when: "true"
    allow: [{servers: [shared], scopes: [mcp:base]}]
  - name: acme-admins-secret-project
    when: '"acme" in user.tenantIds'
    allow: [{servers: [shared], scopes: [mcp:admin]}]
  - name: admins
    when: '"initech" in user.tenantIds || "admins" in user.groups'
    allow: [{servers: [shared], scopes: [mcp:admin]}]
  - name: own-tenant-ops
    when: '"globex" in user.tenantIds && "ops" in user.groups'
    allow: [{servers: [shared], scopes: [mcp:admin]}]
`)
	look := Lookup{User: func(_ context.Context, id string) (store.User, error) {
		return store.User{ID: id, Tenant: "globex"}, nil
	}}
	a := c.ScopeAdvisor(look)(context.Background(), "shared", &tokens.Claims{Subject: "rob", ClientID: "app", GrantID: "g"}, []string{"mcp:admin"})
	why := a.Why["mcp:admin"]
	for _, leak := range []string{"acme", "initech"} {
		if strings.Contains(why, leak) {
			t.Errorf("why %q names another tenant's %q", why, leak)
		}
	}
	for _, want := range []string{`policy "admins" (depends on group "admins")`, `tenant "globex"`, `group "ops"`} {
		if !strings.Contains(why, want) {
			t.Errorf("why %q, want it to say %s", why, want)
		}
	}
}
