package registration

import (
	"fmt"
	"slices"
	"strings"
)

// PresetPrefix introduces a named preset in a redirect URI allowlist:
// "preset:claude" stands for the redirect URIs the Claude apps use. A
// preset expands to ordinary patterns (see Allowlist), so it admits
// nothing a hand-written list could not; it only spares operators from
// copying (and mistyping) callback addresses they do not control.
const PresetPrefix = "preset:"

// presets are the redirect URIs of the MCP clients mcpgate is tested with
// (docs/clients.md; the compatibility matrix in internal/app plays each
// one). Keep each list to what the client really sends: a preset is an
// allowlist, so anything extra is an address some stranger may use to
// receive codes.
//
// "loopback" (LoopbackPattern) stands for the native clients' ephemeral
// http://127.0.0.1:PORT, http://[::1]:PORT and http://localhost:PORT
// redirects (RFC 8252 §7.3): a native app cannot be told apart by its
// loopback redirect URI (RFC 8252 §8.6), so a preset of a native client is
// the loopback keyword, plus whatever fixed addresses it also uses.
var presets = map[string][]string{
	// claude.ai, Claude Desktop and the Claude mobile apps: one https
	// callback (on both of Anthropic's domains).
	"claude": {"https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback"},
	// Claude Code: http://localhost:PORT/callback or
	// http://127.0.0.1:PORT/callback, port chosen at each run.
	"claude-code": {LoopbackPattern},
	// ChatGPT connectors and apps (and the OpenAI platform's app review).
	"chatgpt": {"https://chatgpt.com/connector_platform_oauth_redirect", "https://platform.openai.com/apps-manage/oauth"},
	// Codex CLI and IDE extension: a loopback callback.
	"codex": {LoopbackPattern},
	// VS Code (GitHub Copilot agent mode) registers all four of
	// https://insiders.vscode.dev/redirect, https://vscode.dev/redirect
	// (web and remote windows), http://127.0.0.1/ and
	// http://127.0.0.1:33418/ (the desktop's loopback server, on a fixed
	// port for servers that ignore RFC 8252 §7.3) in one registration, so
	// the preset must admit every one of them or the registration fails.
	"vscode": {"https://insiders.vscode.dev/redirect", "https://vscode.dev/redirect", LoopbackPattern},
	// Cursor: its private-use scheme (RFC 8252 §7.1), or loopback.
	"cursor": {"cursor://anysphere.cursor-mcp/oauth/callback", LoopbackPattern},
	// GitHub Copilot CLI and OpenCode: loopback.
	"copilot-cli": {LoopbackPattern},
	"opencode":    {LoopbackPattern},
}

// knownClients is the preset naming every client above.
const knownClients = "known-clients"

// PresetNames lists the presets, sorted, "known-clients" included.
func PresetNames() []string {
	names := []string{knownClients}
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Preset returns the patterns a preset stands for; ok is false for an
// unknown name. "known-clients" is the union of all others, without
// repeats.
func Preset(name string) (patterns []string, ok bool) {
	if name == knownClients {
		for _, n := range PresetNames() {
			if n == knownClients {
				continue
			}
			for _, p := range presets[n] {
				if !slices.Contains(patterns, p) {
					patterns = append(patterns, p)
				}
			}
		}
		return patterns, true
	}
	p, ok := presets[name]
	return slices.Clone(p), ok
}

// expandPreset returns the patterns raw stands for: a preset's patterns,
// or raw itself. An unknown preset is an error that names the known ones,
// so a typo fails at config load rather than admitting nothing.
func expandPreset(raw string) ([]string, error) {
	name, found := strings.CutPrefix(strings.TrimSpace(raw), PresetPrefix)
	if !found {
		return []string{raw}, nil
	}
	p, ok := Preset(name)
	if !ok {
		return nil, fmt.Errorf("unknown preset %q (known: %s)", name, strings.Join(PresetNames(), ", "))
	}
	return p, nil
}
