// Package mcpauth is for authors of MCP servers that sit behind mcpgate.
//
// mcpgate never forwards the client's own access token upstream. For each
// call it mints a short-lived JWT for the upstream server's audience
// (RFC 8693 token exchange semantics, RFC 9068 profile): iss is mcpgate's
// issuer URL, aud the server's configured audience, sub the user (or the
// machine client), client_id and act.sub the agent's OAuth client, plus
// scope, tenant, roles, groups and permissions. This package verifies those
// tokens and turns them into an [Identity]:
//
//   - [Verifier] checks signature (keys from mcpgate's JWKS, cached and
//     refetched when a new key id appears, so key rotation needs no
//     restart), type, issuer, audience and lifetime.
//   - [Verifier.Middleware] guards an http.Handler (typically the MCP Go
//     SDK's StreamableHTTPHandler) and answers 401 with an RFC 6750
//     challenge that says why; [FromContext] and, inside SDK handlers,
//     [FromRequest] return the Identity.
//   - [Verifier.TokenVerifier] adapts the Verifier to the SDK's
//     auth.RequireBearerToken for those who prefer it.
//   - [RequireToolScopes] refuses a tools/call whose tool needs a scope the
//     token lacks with 403 insufficient_scope, before the tool runs.
//   - [Exchange] is the client side of RFC 8693, for a server that itself
//     calls another mcpgate-protected service on the user's behalf.
//
// The package depends on go-jose and the MCP Go SDK only; it must not
// import mcpgate's internal packages (a test enforces it), so it can be
// used by servers that share nothing else with mcpgate.
package mcpauth
