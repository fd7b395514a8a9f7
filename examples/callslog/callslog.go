// Package callslog records every tools/call an example MCP server
// receives, one JSON line each, so tests can prove a call did — or never
// did — reach the server. Shared by the examples' servers.
package callslog

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Call is one line of the calls log.
type Call struct {
	Time      time.Time       `json:"time"`
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments"`
}

// Log appends one JSON line (a Call) per tools/call the server
// receives, before the tool runs, whether or not the call then succeeds.
type Log struct {
	mu sync.Mutex
	w  io.Writer
}

// New logs to w.
func New(w io.Writer) *Log { return &Log{w: w} }

// Open opens (creating if needed) the file at path for appending.
// Close the returned file when done.
func Open(path string) (*Log, *os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	return New(f), f, nil
}

// Log appends one call. Each line is written with a single Write.
func (l *Log) Log(tool string, args json.RawMessage) error {
	if len(args) == 0 || string(args) == "null" {
		args = json.RawMessage("{}")
	}
	line, err := json.Marshal(Call{Time: time.Now().UTC(), Tool: tool, Arguments: args})
	if err != nil {
		return err
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err = l.w.Write(line)
	return err
}

// Middleware logs every tools/call before it is handled. A call that cannot
// be logged fails, so the log never misses a call the server served.
func (l *Log) Middleware() mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if r, ok := req.(*mcp.CallToolRequest); ok && method == "tools/call" && r.Params != nil {
				if err := l.Log(r.Params.Name, r.Params.Arguments); err != nil {
					return nil, fmt.Errorf("calls log: %w", err)
				}
			}
			return next(ctx, method, req)
		}
	}
}
