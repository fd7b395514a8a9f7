// Package mcpwire holds the MCP wire format the gateway reads and writes
// without interpreting: JSON-RPC 2.0 envelopes kept as raw JSON, Server-Sent
// Events framing, the Streamable HTTP header names, and the protocol versions
// mcpgate speaks.
//
// The gateway forwards most messages untouched, so this package decodes only
// the envelope (id, method) and the few members of params the gateway
// interprets, and leaves the rest as raw bytes. That decode is strict (see
// Parse in strict.go): a message the gateway and an upstream could read
// differently is refused, so what the gateway checked is what it forwards. The
// typed MCP vocabulary lives in the MCP Go SDK; this package is deliberately
// smaller so the hot path parses each body once and allocates little.
package mcpwire
