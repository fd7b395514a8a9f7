package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// TestWriteError: each kind of refusal renders as the MCP surface's
// contract says (status, every header, the exact body), and its cause is
// logged once at the boundary but never sent to the client.
func TestWriteError(t *testing.T) {
	const secret = "upstream said: token s3cr3t expired"
	msgs, batch, err := mcpwire.Parse([]byte(`[{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}},{"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","id":"b","method":"tools/list"}]`))
	if err != nil {
		t.Fatal(err)
	}
	batchFR := &frontRequest{msgs: msgs, batch: batch}
	one := &frontRequest{msgs: msgs[:1]}
	notification := &frontRequest{msgs: msgs[1:2]}
	auth := &AuthSpec{MetadataURL: "http://x/m", Scopes: []string{"mcp:read", "mcp:write"}}
	up := &passthrough{name: "s", up: UpstreamSpec{Name: "u", Timeout: 5 * time.Second}}
	const (
		jsonCT = "application/json"
		ns     = "no-store"
	)
	type hdr = map[string]string
	for _, tc := range []struct {
		name   string
		err    error
		status int
		header hdr // every header of the response
		body   string
		logged string // in the log line; "": nothing logged
	}{
		{"unknown session", errSessionNotFound(), 404, hdr{"Content-Type": jsonCT, "Cache-Control": ns},
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"session not found; initialize a new session"}}`, ""},
		{"method not allowed", refuse(405, mcpwire.CodeInvalidRequest, "method not allowed").withHeader("Allow", "GET, POST, DELETE"),
			405, hdr{"Content-Type": jsonCT, "Cache-Control": ns, "Allow": "GET, POST, DELETE"},
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"method not allowed"}}`, ""},
		{"header mismatch names the request", &rpcError{Status: 400, Code: mcpwire.CodeHeaderMismatch, Message: "header mismatch: x", ID: json.RawMessage(`7`), Cause: errors.New("header mismatch: x")},
			400, hdr{"Content-Type": jsonCT, "Cache-Control": ns},
			`{"jsonrpc":"2.0","id":7,"error":{"code":-32020,"message":"header mismatch: x"}}`, `msg="refused message" server=s status=400 err="header mismatch: x" user=alice`},
		{"insufficient scope", insufficientScope(json.RawMessage(`"a"`), auth, "tool", "admin", "mcp:admin"),
			403, hdr{"Content-Type": jsonCT, "Cache-Control": ns, "Www-Authenticate": `Bearer error="insufficient_scope", error_description="tool 'admin' needs scope mcp:admin", resource_metadata="http://x/m", scope="mcp:admin"`},
			`{"jsonrpc":"2.0","id":"a","error":{"code":-32012,"message":"insufficient scope: tool \"admin\" needs scope mcp:admin"}}`, ""},
		{"no token", unauthorized(auth, "", ""),
			401, hdr{"Content-Type": jsonCT, "Cache-Control": ns, "Pragma": "no-cache", "Www-Authenticate": `Bearer resource_metadata="http://x/m", scope="mcp:read mcp:write"`},
			`{"error":"unauthorized","error_description":"this MCP server requires an OAuth access token; see the resource_metadata in WWW-Authenticate"}` + "\n", ""},
		{"invalid token", unauthorized(auth, "invalid_token", "token expired"),
			401, hdr{"Content-Type": jsonCT, "Cache-Control": ns, "Pragma": "no-cache", "Www-Authenticate": `Bearer error="invalid_token", error_description="token expired", resource_metadata="http://x/m", scope="mcp:read mcp:write"`},
			`{"error":"invalid_token","error_description":"token expired"}` + "\n", ""},
		{"sessions per user", (&limitError{status: 429, key: "limits.sessions_per_user", msg: "too many"}).rpcError(json.RawMessage(`1`)),
			429, hdr{"Content-Type": jsonCT, "Cache-Control": ns, "Retry-After": "30"},
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32015,"message":"too many","data":{"limit":"limits.sessions_per_user","retryAfter":30}}}`, "session limit limits.sessions_per_user reached"},
		{"sessions per server", (&limitError{status: 503, key: "limits.max_sessions", msg: "full"}).rpcError(json.RawMessage(`1`)),
			503, hdr{"Content-Type": jsonCT, "Cache-Control": ns, "Retry-After": "30"},
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32015,"message":"full","data":{"limit":"limits.max_sessions","retryAfter":30}}}`, `msg="request failed"`},
		{"unsupported version", checkVersion(&frontRequest{version: "1999-01-01", msgs: msgs[:1]}),
			400, hdr{"Content-Type": jsonCT},
			`{"jsonrpc":"2.0","id":2,"error":{"code":-32022,"message":"unsupported MCP-Protocol-Version \"1999-01-01\" (supported: ` + strings.Join(mcpwire.SupportedVersions(), ", ") + `)","data":{"requested":"1999-01-01","supported":["` + strings.Join(mcpwire.SupportedVersions(), `","`) + `"]}}}`, ""},
		{"upstream down, one request", up.upstreamFailed(one, errors.New(secret), false),
			200, hdr{"Content-Type": jsonCT},
			`{"jsonrpc":"2.0","id":2,"error":{"code":-32010,"message":"upstream \"u\" is unavailable"}}`, secret},
		{"upstream down, batch", up.upstreamFailed(batchFR, errors.New(secret), false),
			200, hdr{"Content-Type": jsonCT},
			`[{"jsonrpc":"2.0","id":2,"error":{"code":-32010,"message":"upstream \"u\" is unavailable"}},{"jsonrpc":"2.0","id":"b","error":{"code":-32010,"message":"upstream \"u\" is unavailable"}}]`, secret},
		{"upstream down, no request", up.upstreamFailed(notification, errors.New(secret), false),
			502, hdr{"Content-Type": jsonCT, "Cache-Control": ns},
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32010,"message":"upstream \"u\" is unavailable"}}`, secret},
		{"upstream timed out, no request", up.upstreamFailed(notification, context.DeadlineExceeded, true),
			504, hdr{"Content-Type": jsonCT, "Cache-Control": ns},
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32011,"message":"upstream \"u\" did not answer within 5s"}}`, "deadline exceeded"},
		{"ambiguous upstream answer", up.refuseAmbiguous(&frontRequest{msgs: msgs[2:], batch: true}),
			502, hdr{"Content-Type": jsonCT},
			`[{"jsonrpc":"2.0","id":"b","error":{"code":-32010,"message":"upstream \"u\" sent an answer the gateway could not read unambiguously"}}]`, "ambiguous"},
		{"tool error", toolErrors(batchFR, "connect your calendar first"),
			200, hdr{"Content-Type": jsonCT},
			`[{"jsonrpc":"2.0","id":2,"result":{"content":[{"text":"connect your calendar first","type":"text"}],"isError":true}},{"jsonrpc":"2.0","id":"b","error":{"code":-32010,"message":"connect your calendar first"}}]`, ""},
		{"any other error is the gateway's own", errors.New(secret),
			500, hdr{"Content-Type": jsonCT, "Cache-Control": ns},
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"gateway error"}}`, secret},
		{"wrapped rpcError", errors.Join(errSessionNotFound()), 404, hdr{"Content-Type": jsonCT, "Cache-Control": ns},
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"session not found; initialize a new session"}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			g := &Gateway{log: slog.New(slog.NewTextHandler(&logs, nil))}
			r := httptest.NewRequest(http.MethodPost, "/mcp/s", nil)
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, &tokens.Claims{Subject: "alice"}))
			w := httptest.NewRecorder()
			g.writeError(w, r, "s", tc.err)
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			got := map[string]string{}
			for k := range w.Header() {
				got[k] = strings.Join(w.Header().Values(k), "; ")
			}
			if !maps.Equal(got, tc.header) {
				t.Errorf("headers %q,\nwant %q", got, tc.header)
			}
			if w.Body.String() != tc.body {
				t.Errorf("body %s,\nwant %s", w.Body, tc.body)
			}
			if strings.Contains(w.Body.String(), "s3cr3t") {
				t.Error("the cause reached the client")
			}
			lines := strings.Count(logs.String(), "\n")
			switch {
			case tc.logged == "" && lines != 0:
				t.Errorf("logged %q, want nothing", logs.String())
			case tc.logged != "" && (lines != 1 || !strings.Contains(logs.String(), tc.logged)):
				t.Errorf("log %q, want one line with %q", logs.String(), tc.logged)
			}
		})
	}
}

// TestEngineRefusalLoggedOnce: a refusal an engine returns (here, an
// upstream credential that cannot be obtained) is audited with the status
// the client got and its cause logged once, with who sent the request;
// the client reads only that the credential could not be obtained.
func TestEngineRefusalLoggedOnce(t *testing.T) {
	var logs syncLog
	up := httpUpstream(t, "u")
	up.Credential = func(*tokens.Claims) (string, string, error) {
		return "", "", errors.New("token exchange: s3cr3t refused")
	}
	required := func(kind, name string) string { return "mcp:read" }
	_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: []UpstreamSpec{up},
		Auth: &AuthSpec{Resource: "http://x/mcp/s", MetadataURL: "http://x/m", Required: required}}},
		&Options{Verify: fakeVerify, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	resp := rawPost(t, base+"/mcp/s", map[string]string{"Authorization": "Bearer scopes:mcp:read", "MCP-Protocol-Version": "2026-07-28",
		"Mcp-Method": "tools/call", "Mcp-Name": "echo"},
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(string(body), "s3cr3t") {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	out := logs.String()
	if n := strings.Count(out, "s3cr3t"); n != 1 || !strings.Contains(out, `msg="request failed" server=s status=502`) || !strings.Contains(out, "user=alice") {
		t.Errorf("cause logged %d times, want once with server, status and user:\n%s", n, out)
	}
	if !regexp.MustCompile(`msg=audit server=s kind=tool name=echo outcome=allowed status=502`).MatchString(out) {
		t.Errorf("the audit line lacks the status the client got:\n%s", out)
	}
}
