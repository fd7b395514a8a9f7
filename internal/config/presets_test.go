package config

import "testing"

// TestRedirectPresets: a known preset (registration.Preset) is a valid
// redirect URI pattern wherever patterns go; an unknown one is a problem
// reported at load, naming the known ones, rather than an allowlist that
// silently admits nothing.
func TestRedirectPresets(t *testing.T) {
	if _, err := Parse(y(
		"oauth:",
		"  registration: {redirect_uris: ['preset:known-clients', 'https://mine.example/cb']}",
		"servers:",
		"  - name: a",
		"    upstream: {url: 'https://x.example'}",
		"    redirect_uris: ['preset:claude', 'preset:cursor']",
	), "gw.yaml", env()); err != nil {
		t.Fatalf("known presets: %v", err)
	}
	got := parseProblems(t, y(
		"oauth:",
		"  registration: {redirect_uris: ['preset:claud']}",
		"servers:",
		"  - name: a",
		"    upstream: {url: 'https://x.example'}",
		"    redirect_uris: ['loopback', 'preset:']",
	), env())
	checkProblems(t, got, []want{
		{"oauth.registration.redirect_uris[0]", 2, `unknown preset "claud" (known: chatgpt, claude, claude-code`},
		{"servers[0].redirect_uris[1]", 6, `unknown preset ""`},
	})
}
