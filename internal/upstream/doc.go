// Package upstream connects the gateway to the MCP servers behind it. Each
// transport is a Link that carries raw JSON-RPC messages both ways:
//
//   - HTTPLink speaks Streamable HTTP (MCP 2025-03-26 and later) as a client,
//     including SSE responses, the standalone GET stream and resumption with
//     Last-Event-ID;
//   - SSELink speaks the legacy HTTP+SSE transport (MCP 2024-11-05);
//   - StdioLink runs a local server as a child process speaking
//     newline-delimited JSON on stdin/stdout, restarts it with bounded
//     backoff after a crash, logs its stderr, and never leaves an orphan.
//
// Links do not interpret MCP: sessions, id mapping and aggregation live in
// package gateway. The hot path for a single Streamable HTTP upstream does
// not use a Link at all; the gateway proxies its HTTP exchanges directly.
package upstream

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// Handler receives every message an upstream sends: responses,
// notifications and server-to-client requests. related is the id of the
// request whose HTTP response carried the message, when the transport knows
// it (Streamable HTTP); nil otherwise. Links call it from their own
// goroutines, one message at a time per underlying stream.
type Handler func(msg *mcpwire.Message, related json.RawMessage)

// Link carries messages to one upstream MCP server.
type Link interface {
	// Send delivers one message upstream. A nil error means the upstream
	// accepted it; the answer, if any, arrives through the Handler.
	Send(ctx context.Context, msg *mcpwire.Message) error
	// Close ends the upstream session and releases everything the link
	// holds. It is safe to call more than once.
	Close() error
	// Done is closed when the link has failed for good (a stdio server
	// that exhausted its restarts, a session the upstream forgot).
	Done() <-chan struct{}
}

// ErrClosed is returned by Send on a closed or failed link.
var ErrClosed = errors.New("upstream link closed")

// ErrSessionGone is returned when the upstream no longer knows the session
// (HTTP 404 on a request carrying its session id).
var ErrSessionGone = errors.New("upstream session gone")
