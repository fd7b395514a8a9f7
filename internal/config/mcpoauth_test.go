package config

import (
	"strings"
	"testing"
)

// TestMCPOAuthCredentials: mode mcp-oauth and its keys are accepted, and
// what cannot work is refused with the key named.
func TestMCPOAuthCredentials(t *testing.T) {
	const head = "public_url: https://gw.example\n"
	for _, tc := range []struct {
		name, servers, wantKey, wantText string
	}{
		{"defaults", "servers: [{name: notes, upstream: {url: 'https://mcp.notes.example/mcp', credentials: {mode: mcp-oauth}}}]", "", ""},
		{"every key", "servers: [{name: notes, upstream: {url: 'https://mcp.notes.example/mcp', credentials: {mode: mcp-oauth, connection: notes-app, client_id: gw, client_secret: s, issuer: 'https://auth.notes.example', scopes: [notes.read], per_tenant: true}}}]\nupstream_oauth: {client_name: Corp, disable_metadata_document: true, allow_private_addresses: true}", "", ""},
		{"unprotected server", "servers: [{name: notes, auth: none, upstream: {url: 'https://mcp.notes.example/mcp', credentials: {mode: mcp-oauth}}}]", "credentials.mode", "protected server"},
		{"secret without client", "servers: [{name: notes, upstream: {url: 'https://mcp.notes.example/mcp', credentials: {mode: mcp-oauth, client_secret: s}}}]", "credentials.client_secret", "needs client_id"},
		{"secret without issuer", "servers: [{name: notes, upstream: {url: 'https://mcp.notes.example/mcp', credentials: {mode: mcp-oauth, client_id: gw, client_secret: s}}}]", "credentials.issuer", "required with client_secret"},
		{"public pre-registered client, any issuer", "servers: [{name: notes, upstream: {url: 'https://mcp.notes.example/mcp', credentials: {mode: mcp-oauth, client_id: gw}}}]", "", ""},
		{"bad issuer", "servers: [{name: notes, upstream: {url: 'https://mcp.notes.example/mcp', credentials: {mode: mcp-oauth, client_id: x, issuer: 'not a url'}}}]", "credentials.issuer", "absolute"},
		{"bad scope", "servers: [{name: notes, upstream: {url: 'https://mcp.notes.example/mcp', credentials: {mode: mcp-oauth, scopes: ['a b']}}}]", "credentials.scopes", "not a valid scope"},
		{"one name, two upstreams", "servers:\n  - {name: a, upstream: {url: 'https://a.example/mcp', credentials: {mode: mcp-oauth, connection: shared}}}\n  - {name: b, upstream: {url: 'https://b.example/mcp', credentials: {mode: mcp-oauth, connection: shared}}}", "credentials.connection", "another URL"},
		{"stdio upstream", "servers: [{name: notes, upstream: {command: [x], credentials: {mode: mcp-oauth}}}]", "credentials.mode", "only url upstreams"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tc.servers+"\n"), "t.yaml", nil)
			if tc.wantKey == "" {
				if err != nil {
					t.Fatal(err)
				}
				cr := c.Servers[0].Upstream.Credentials
				if cr.Mode != "mcp-oauth" || cr.MCPConnectionName("notes") == "" {
					t.Fatalf("credentials %+v", cr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantKey) || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("err = %v, want %s: %s", err, tc.wantKey, tc.wantText)
			}
		})
	}
}
