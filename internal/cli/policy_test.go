package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestPolicyTest: `mcpgate policy test` explains a decision with the
// catalog's policies, users (their tenant's groups applied) and clients,
// the same inputs a running server grants with.
func TestPolicyTest(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const servers = `
servers:
  - name: docs
    upstream: {url: "http://127.0.0.1:1/mcp"}
    scopes: [docs:read, docs:write]
`
	withPolicies := write("policies.yaml", `
tenants:
  - name: acme
    groups:
      writers: {permissions: [docs.write]}
users:
  - {username: alice, email: alice@acme.example, password_hash: "`+string(hash)+`", tenant: acme, groups: [writers]}
oauth:
  clients:
    - {id: bot, secret: "bot-secret-0123456789", group: bots}
policies:
  - name: readers
    when: '"acme" in user.tenantIds'
    allow: [{servers: [docs], scopes: [docs:read]}]
  - name: writers
    when: '"docs.write" in user.permissions'
    allow: [{servers: [docs], scopes: [docs:write]}]
  - name: bots
    when: 'client.type == "machine" && client.group == "bots"'
    allow: [{servers: [docs], scopes: [docs:read]}]
`+servers)
	open := write("open.yaml", servers)
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"declared user with tenant groups", []string{"--config", withPolicies, "--user", "alice", "--client", "app", "--server", "docs"}, ExitOK,
			[]string{"GRANTED  docs:read", "GRANTED  docs:write", `token scope: "docs:read docs:write"`}},
		{"inline user without the group", []string{"--config", withPolicies, "--user", `{"sub":"eve","tenant":"acme"}`, "--client", "app", "--server", "docs"}, ExitOK,
			[]string{"GRANTED  docs:read", "DENIED   docs:write", `token scope: "docs:read"`}},
		{"inline user given the tenant's group", []string{"--config", withPolicies, "--user", `{"sub":"eve","tenant":"acme","groups":["writers"]}`, "--client", "app", "--server", "docs", "--scope", "docs:write"}, ExitOK,
			[]string{`token scope: "docs:write"`}},
		{"declared machine client", []string{"--config", withPolicies, "--client", "bot", "--server", "docs"}, ExitOK,
			[]string{"machine client bot", `token scope: "docs:read"`}},
		{"unknown machine client", []string{"--config", withPolicies, "--client", "stranger", "--server", "docs"}, ExitOK,
			[]string{`token scope: ""`}},
		{"no policies", []string{"--config", open, "--client", "app", "--server", "docs"}, ExitOK,
			[]string{"no policies configured", "docs:read docs:write"}},
		{"unknown server", []string{"--config", withPolicies, "--server", "nope"}, ExitInvalidConfig, []string{`unknown server "nope"`}},
		{"unknown user", []string{"--config", withPolicies, "--user", "mallory", "--server", "docs"}, ExitInvalidConfig, []string{`no configured user "mallory"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(append([]string{"policy", "test"}, tt.args...), &out, &errb)
			all := out.String() + errb.String()
			if code != tt.code {
				t.Errorf("exit %d, want %d; output:\n%s", code, tt.code, all)
			}
			for _, c := range tt.contains {
				if !strings.Contains(all, c) {
					t.Errorf("output lacks %q:\n%s", c, all)
				}
			}
		})
	}
}
