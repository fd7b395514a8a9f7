package oauth

import "slices"

// OfflineAccess asks for a refresh token (OpenID Connect Core §11); some
// clients (ChatGPT) add it to the scopes they request. It is not a scope
// of any MCP server: whether a refresh token is issued depends on the
// client's grant_types (refresh_token), so the authorization and token
// endpoints drop it before weighing the request against a server's
// scopes, where, alone, it would leave "none of the requested scopes".
const OfflineAccess = "offline_access"

// WithoutOfflineAccess returns scopes without OfflineAccess.
func WithoutOfflineAccess(scopes []string) []string {
	return slices.DeleteFunc(scopes, func(s string) bool { return s == OfflineAccess })
}
