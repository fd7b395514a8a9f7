package config

import (
	"strings"
	"testing"
)

func TestConnectorsValidation(t *testing.T) {
	const jwks = `'{"keys":[]}'`
	client := "oauth: {clients: [{id: edge-client, jwks: " + jwks + "}, {id: secret-client, secret: s3cret-s3cret-s3cret}, {id: both-client, jwks: " + jwks + ", secret: s3cret-s3cret-s3cret}, {id: hash-client, jwks: " + jwks + ", token_endpoint_auth_method: private_key_jwt, secret_hash: '0000000000000000000000000000000000000000000000000000000000000000'}]}\n"
	tests := []struct {
		name string
		doc  string
		want string // substring of the one problem; "" = valid
	}{
		{"valid", client + "connectors: [{name: edge, client_id: edge-client}]\nservers: [{name: m, upstream: {connector: edge, url: 'http://10.0.0.5:9000/mcp'}}]", ""},
		{"unknown connector", client + "connectors: [{name: edge, client_id: edge-client}]\nservers: [{name: m, upstream: {connector: nope, url: 'http://10.0.0.5:9000/mcp'}}]", "unknown connector"},
		{"unknown client", "connectors: [{name: edge, client_id: ghost}]\n" + okServer, "unknown client"},
		{"bearer-secret client", client + "connectors: [{name: edge, client_id: secret-client}]\n" + okServer, "private_key_jwt"},
		// Keys and a secret with no method: validation runs before the
		// default (client_secret_basic), so the secret must be refused.
		{"keys and secret, no method", client + "connectors: [{name: edge, client_id: both-client}]\n" + okServer, "must not have secret"},
		{"keys and secret_hash", client + "connectors: [{name: edge, client_id: hash-client}]\n" + okServer, "must not have secret"},
		{"duplicate name", client + "connectors: [{name: edge, client_id: edge-client}, {name: edge, client_id: x}]\n" + okServer, "duplicate connector name"},
		{"bad name", client + "connectors: [{name: 'a b', client_id: edge-client}]\n" + okServer, "not a valid connector name"},
		{"command through a connector", client + "connectors: [{name: edge, client_id: edge-client}]\nservers: [{name: edge-srv, upstream: {connector: edge, command: [srv]}}]", ""},
		{"command through a connector with env", client + "connectors: [{name: edge, client_id: edge-client}]\nservers: [{name: m, upstream: {connector: edge, command: [srv], env: {A: b}}}]", "connector's config"},
		{"command through an unknown connector", client + "connectors: [{name: edge, client_id: edge-client}]\nservers: [{name: m, upstream: {connector: nope, command: [srv]}}]", "unknown connector"},
		{"address also direct", client + "connectors: [{name: edge, client_id: edge-client}]\nservers: [{name: m, upstream: {connector: edge, url: 'http://10.0.0.5:9000/mcp'}}, {name: d, upstream: {url: 'http://10.0.0.5:9000/other'}}]", "one address, one route"},
		{"host case collides", client + "connectors: [{name: edge, client_id: edge-client}]\nservers: [{name: m, upstream: {connector: edge, url: 'http://DB.internal:9000/mcp'}}, {name: d, upstream: {url: 'http://db.INTERNAL:9000/x'}}]", "one address, one route"},
		{"default port collides", client + "connectors: [{name: edge, client_id: edge-client}]\nservers: [{name: m, upstream: {connector: edge, url: 'https://db.internal/mcp'}}, {name: d, upstream: {url: 'https://db.internal:443/x'}}]", "one address, one route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc), "gw.yaml", env())
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected problems: %v", err)
				}
				if c.ConnectorByName("edge") == nil || c.Servers[0].Upstream.Connector != "edge" {
					t.Fatalf("connector not parsed: %+v", c.Connectors)
				}
				return
			}
			ps := parseProblems(t, []byte(tt.doc), env())
			found := false
			for _, p := range ps {
				found = found || strings.Contains(p.Message, tt.want)
			}
			if !found {
				t.Fatalf("problems %v, want one containing %q", ps, tt.want)
			}
		})
	}
}
