package config

import "testing"

// TestOwnAudienceSpellings: an upstream audience that the authorization
// server would read as one of this gateway's servers (oauth.SameResource:
// host case, default port, a trailing slash) is refused like the exact URI.
func TestOwnAudienceSpellings(t *testing.T) {
	got := parseProblems(t, y(
		"public_url: https://gw.example",
		"servers:",
		"  - name: admin",
		"    upstream: {url: 'https://admin.internal'}",
		"  - name: a",
		"    upstream: {url: 'https://a.internal', credentials: {mode: identity, audience: 'https://GW.example/mcp/admin'}}",
		"  - name: b",
		"    upstream: {url: 'https://b.internal', credentials: {mode: identity, audience: 'https://gw.example:443/mcp/admin/'}}",
		"  - name: c",
		"    upstream: {url: 'https://c.internal', credentials: {mode: identity, audience: 'https://gw.example/mcp/admin2'}}",
	), env())
	checkProblems(t, got, []want{
		{"servers[1].upstream.credentials.audience", 6, "is server admin of this gateway"},
		{"servers[2].upstream.credentials.audience", 8, "is server admin of this gateway"},
	})
}
