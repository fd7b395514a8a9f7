package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// removedMethod answers a 2026-07-28 request for a method that revision
// removed, which the strict parse refused for its params, as a server of
// that revision answers it: 404 with -32601 naming the request (SEP-2575:
// "If the server does not implement the removed RPC method, it MUST
// respond with 404 Not Found and a JSON-RPC error with code -32601"),
// rather than a -32602 about params the method no longer has. nil: parse
// errors of any other kind, which keep their answer.
//
// Nothing reaches the upstream either way; the id and method are read
// strictly (mcpwire.Members) all the same, so the answer names the
// request the client sent.
func removedMethod(version string, body []byte, parseErr error) *rpcError {
	// An unsupported revision gets -32022 from checkVersion instead.
	if version < mcpwire.Version20260728 || !mcpwire.IsSupportedVersion(version) || !errors.Is(parseErr, mcpwire.ErrInvalidParams) {
		return nil
	}
	v, err := mcpwire.Members(body, "id", "method")
	if err != nil {
		return nil
	}
	method, ok := mcpwire.String(v[1])
	if !ok || !removedMethods[method] || !plainID(v[0]) {
		return nil
	}
	return refuse(http.StatusNotFound, mcpwire.CodeMethodNotFound,
		fmt.Sprintf("method not found: %q (removed in MCP %s)", method, mcpwire.Version20260728)).answering(v[0])
}

// plainID reports whether raw is a JSON-RPC id a request may carry: a
// string or an integer.
func plainID(raw json.RawMessage) bool {
	if _, ok := mcpwire.String(raw); ok {
		return true
	}
	_, err := strconv.ParseInt(string(raw), 10, 64)
	return err == nil
}
