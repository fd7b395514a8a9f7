package mcpwire

import "slices"

// Streamable HTTP header names (MCP 2025-11-25 basic/transports).
const (
	HeaderSessionID       = "Mcp-Session-Id"
	HeaderProtocolVersion = "Mcp-Protocol-Version"
	HeaderLastEventID     = "Last-Event-ID"
)

// Protocol revisions the gateway speaks on its Streamable HTTP front. The
// 2024-11-05 revision predates Streamable HTTP and is reached only through
// the legacy HTTP+SSE transport upstream.
const (
	Version20250326 = "2025-03-26"
	Version20250618 = "2025-06-18"
	Version20251125 = "2025-11-25"
	Version20260728 = "2026-07-28"

	LatestVersion = Version20260728
	// DefaultVersion is assumed when a request carries no
	// MCP-Protocol-Version header (2025-06-18 basic/transports §"Protocol
	// Version Header": "the server SHOULD assume protocol version 2025-03-26").
	DefaultVersion = Version20250326
)

var supportedVersions = []string{Version20250326, Version20250618, Version20251125, Version20260728}

// SupportedVersions returns the protocol revisions the gateway accepts.
func SupportedVersions() []string { return slices.Clone(supportedVersions) }

// IsSupportedVersion reports whether v is a revision the gateway accepts.
func IsSupportedVersion(v string) bool { return slices.Contains(supportedVersions, v) }
