// Package gateway is mcpgate's MCP front: it serves each configured server
// at its path over Streamable HTTP and carries every message to and from
// the upstream MCP servers behind it.
//
// Two engines share one front door (Host/Origin checks, protocol-version
// and body checks, error shapes):
//
//   - passthrough, for a server with one Streamable HTTP upstream: each
//     client HTTP exchange is proxied as one upstream exchange. Session state
//     is sealed into the client's Mcp-Session-Id, so any replica can continue
//     any session. This is the hot path.
//   - bridge, for stdio and legacy SSE upstreams and for servers that
//     aggregate several upstreams: the gateway terminates the client's
//     Streamable HTTP session itself (SSE streams, resumption, server-to-
//     client requests) and relays messages over upstream Links, rewriting
//     ids and, when aggregating, names.
//
// The front door's checks and the engines return refusals as values
// (rpcError); one writer, Gateway.writeError, renders them (a JSON-RPC
// error, per-request answers, or the RFC 6750 401) and logs their cause.
//
// Upstream transports live in package upstream; the wire format in mcpwire.
package gateway
