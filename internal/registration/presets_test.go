package registration

import (
	"slices"
	"strings"
	"testing"
)

// TestPresets: each preset admits its client's real redirect URIs and
// nothing of another's; known-clients admits them all; an unknown preset
// fails to parse (so a typo fails at config load).
func TestPresets(t *testing.T) {
	tests := []struct {
		preset string
		allow  []string
		deny   []string
	}{
		{"claude", []string{"https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback"},
			[]string{"https://claude.ai/api/mcp/auth_callback/x", "http://localhost:5555/callback", "https://chatgpt.com/connector_platform_oauth_redirect"}},
		{"claude-code", []string{"http://localhost:54321/callback", "http://127.0.0.1:1234/callback", "http://localhost/callback"},
			[]string{"https://claude.ai/api/mcp/auth_callback", "cursor://anysphere.cursor-mcp/oauth/callback"}},
		{"chatgpt", []string{"https://chatgpt.com/connector_platform_oauth_redirect", "https://platform.openai.com/apps-manage/oauth"},
			[]string{"https://chatgpt.com/connector_platform_oauth_redirect/x", "http://127.0.0.1:1/cb", "https://evil.example/connector_platform_oauth_redirect"}},
		{"codex", []string{"http://127.0.0.1:40000/callback", "http://localhost:1455/auth/callback"}, []string{"https://vscode.dev/redirect"}},
		{"vscode", []string{"https://insiders.vscode.dev/redirect", "https://vscode.dev/redirect", "http://127.0.0.1/", "http://127.0.0.1:33418/"},
			[]string{"https://vscode.dev/redirect/x", "https://evil.vscode.dev/redirect", "https://claude.ai/api/mcp/auth_callback"}},
		{"cursor", []string{"cursor://anysphere.cursor-mcp/oauth/callback", "http://localhost:7777/cb"},
			[]string{"cursor://anysphere.cursor-mcp/oauth/callback2", "cursor://evil/oauth/callback", "https://claude.ai/api/mcp/auth_callback"}},
		{"copilot-cli", []string{"http://127.0.0.1:9000/"}, []string{"https://vscode.dev/redirect"}},
		{"opencode", []string{"http://127.0.0.1:19876/mcp/oauth/callback"}, []string{"https://claude.ai/api/mcp/auth_callback"}},
		{"known-clients", []string{"https://claude.ai/api/mcp/auth_callback", "https://chatgpt.com/connector_platform_oauth_redirect",
			"https://vscode.dev/redirect", "cursor://anysphere.cursor-mcp/oauth/callback", "http://localhost:1/callback"},
			[]string{"https://evil.example/cb", "http://evil.example/cb", "javascript://x/%0aalert(1)"}},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.preset, func(t *testing.T) {
			seen[tc.preset] = true
			a, err := ParseAllowlist([]string{"preset:" + tc.preset})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range tc.allow {
				if !a.Allows(u) {
					t.Errorf("%s refuses %s", tc.preset, u)
				}
			}
			for _, u := range tc.deny {
				if a.Allows(u) {
					t.Errorf("%s admits %s", tc.preset, u)
				}
			}
		})
	}
	for _, n := range PresetNames() {
		if !seen[n] {
			t.Errorf("preset %q has no test row", n)
		}
	}
	for _, bad := range []string{"preset:claud", "preset:", "preset:Claude"} {
		_, err := ParseAllowlist([]string{"https://ok.example/cb", bad})
		if err == nil || !strings.Contains(err.Error(), "unknown preset") || !strings.Contains(err.Error(), "known-clients") {
			t.Errorf("%q: %v, want an unknown-preset error naming the known ones", bad, err)
		}
	}
	// Mixing a preset with plain patterns keeps both.
	a, err := ParseAllowlist([]string{"preset:claude", "https://mine.example/cb"})
	if err != nil || !a.Allows("https://mine.example/cb") || !a.Allows("https://claude.ai/api/mcp/auth_callback") {
		t.Errorf("mixed list: %v", err)
	}
	// Every preset's patterns are valid patterns on their own, and
	// known-clients is exactly the union.
	var union []string
	for _, n := range PresetNames() {
		p, ok := Preset(n)
		if !ok || len(p) == 0 {
			t.Fatalf("preset %q: %v %v", n, p, ok)
		}
		if _, err := ParseAllowlist(p); err != nil {
			t.Errorf("preset %q: %v", n, err)
		}
		if n != "known-clients" {
			for _, x := range p {
				if !slices.Contains(union, x) {
					union = append(union, x)
				}
			}
		}
	}
	all, _ := Preset("known-clients")
	slices.Sort(all)
	slices.Sort(union)
	if !slices.Equal(all, union) {
		t.Errorf("known-clients = %v, want the union %v", all, union)
	}
}
