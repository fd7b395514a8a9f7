package authflow

import "github.com/mcpgate/mcpgate/internal/oauth"

// defaultResource is the resource of an authorization request that names
// none (RFC 8707 makes the parameter optional; Codex, and clients of MCP
// revisions before 2025-06-18, omit it), or nil when that is ambiguous.
//
// Unambiguous means: exactly one protected server of this gateway may be
// used by this client, judged by what is known before anyone signs in —
// the servers whose redirect allowlist (servers[].redirect_uris, default
// oauth.registration.redirect_uris) admits the request's redirect URI.
// A gateway with one protected server always qualifies; one whose servers
// admit different clients qualifies for each client that only one admits.
// Nothing about the user (policies, earlier consents) enters the choice:
// the same request always picks the same server, whoever signs in.
func defaultResource(rs oauth.Resources, redirectURI string) *oauth.Resource {
	var found *oauth.Resource
	for _, r := range rs {
		if r.AllowsRedirect != nil && !r.AllowsRedirect(redirectURI) {
			continue
		}
		if found != nil {
			return nil // two candidates: ambiguous
		}
		found = r
	}
	return found
}

// missingResource is the error description for a request without a
// resource when defaultResource found none or several: it names the
// parameter and the form of its value, without listing the servers
// (which a stranger's client has no business enumerating).
func missingResource(issuer string) string {
	return "resource is required: this gateway serves several MCP servers (or none this client may use), so send resource=<the MCP server's URL> " +
		"(RFC 8707), the \"resource\" of its protected resource metadata, of the form " + issuer + "/mcp/<server>"
}
