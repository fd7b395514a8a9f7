package app

import (
	"context"
	"net/url"
	"slices"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Scenario S5: machine agents get tokens by client credentials, scoped by
// policy, and reach only the tools their scopes allow.
const machineConfig = `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
oauth:
  clients:
    - {id: env-bot, secret: "env-bot-secret-0123456", group: agents}
    - {id: org-admin, secret: "org-admin-secret-012345", group: agents}
policies:
  - name: env bot reads environments
    when: 'client.type == "machine" && client.id == "env-bot"'
    allow: [{servers: [platform], scopes: ["env:read"]}]
  - name: org admin
    when: 'client.type == "machine" && client.id == "org-admin"'
    allow: [{servers: [platform], scopes: ["env:*", "org:write"]}]
servers:
  - name: platform
    upstream: {url: "${UP}"}
    scopes: ["env:read", "org:write"]
    tools:
      - {match: echo, scope: "env:read"}
      - {match: "*", scope: "org:write"}
`

func TestMachineAgents(t *testing.T) {
	as := startApp(t, machineConfig)
	resource := as.base + "/mcp/platform"
	token := func(id, secret, scope string) (int, map[string]any) {
		form := url.Values{"grant_type": {"client_credentials"}, "resource": {resource}}
		if scope != "" {
			form.Set("scope", scope)
		}
		return postToken(t, as.base, form, id, secret)
	}
	code, bot := token("env-bot", "env-bot-secret-0123456", "")
	if code != 200 || bot["scope"] != "env:read" {
		t.Fatalf("env-bot token: %d %v", code, bot)
	}
	code, admin := token("org-admin", "org-admin-secret-012345", "")
	if code != 200 || admin["scope"] != "env:read org:write" {
		t.Fatalf("org-admin token: %d %v", code, admin)
	}
	if code, m := token("env-bot", "env-bot-secret-0123456", "org:write"); code != 400 || m["error"] != "invalid_scope" {
		t.Errorf("env-bot asking only for what policy refuses: %d %v", code, m)
	}
	ctx := context.Background()
	cs := connectBearer(t, resource, bot["access_token"].(string))
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	if !slices.Equal(names, []string{"echo"}) {
		t.Errorf("env-bot sees %v, want only echo", names)
	}
	if r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "env"}}); err != nil || r.IsError {
		t.Errorf("env-bot allowed call: %v", err)
	}
	if r, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text", Arguments: map[string]any{}}); err == nil && !r.IsError {
		t.Error("env-bot called an org:write tool")
	}
	if r, err := connectBearer(t, resource, admin["access_token"].(string)).CallTool(ctx, &mcp.CallToolParams{Name: "test_simple_text", Arguments: map[string]any{}}); err != nil || r.IsError {
		t.Errorf("org-admin write call: %v", err)
	}
}
