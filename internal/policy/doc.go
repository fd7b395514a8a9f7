// Package policy makes mcpgate's authorization decisions, and nothing else:
// it has no HTTP handlers, no storage and no logging.
//
// It owns two questions:
//
//   - Which scopes may a token for this (user, client, server) carry? Policies
//     ([Spec]) pair a CEL condition over the policy input ([Input]: variables
//     user, client and server) with the scopes they allow on which servers.
//     [Compile] type-checks every condition once, at config load, and reports
//     every problem at once; [Set.Grant] evaluates the compiled policies and
//     returns the granted scopes together with an explanation ([Decision]) of
//     why each scope was or was not granted. Decisions deny by default and
//     fail closed: a condition that errors at run time counts as false.
//   - Which scopes does a broader scope cover? [Hierarchy] compiles a
//     server's scope hierarchy (MCP 2026-07-28: "a broader scope implies
//     narrower ones"); [Set.GrantWithin] grants with it, and
//     [Set.Grantors] says which policies could grant a scope, with the
//     memberships their conditions test (never the conditions themselves),
//     for refusals that tell a person who grants what they lack.
//   - Which scope does a tool, resource or prompt require? [ToolScopes] maps
//     names to scopes by ordered rules with a per-server default, and answers
//     from precomputed and cached tables, because the gateway asks on every
//     tools/call.
//
// Conditions are CEL (cel.dev/cel-go) over three typed variables:
//
//	user:   sub, email string; tenantIds, roles, permissions, groups list(string)
//	client: id, name, group, type string (type is "user-delegated" or "machine")
//	server: name, tenant string; labels map(string, string)
//
// with the standard library, optional values (server.labels[?"env"]), and
// the strings and sets extensions (sets.intersects(user.groups, ["csm"])).
// A misspelt field is a compile error, not a false at run time. Policies are
// additive: a scope is granted when any matching policy allows it, so "only
// mcp:read for partners" is written by keeping partners out of the broader
// policies' conditions.
//
// Its neighbours: internal/config decodes the YAML and turns it into [Spec]
// and [ToolRule] values; internal/idp fills the user part of [Input] from the
// identity provider's claims; internal/authflow and internal/grants call
// [Set.Grant] when they issue tokens; internal/gateway calls
// [ToolScopes.Required] on each call and answers 403 insufficient_scope.
package policy
