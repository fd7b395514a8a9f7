package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// y joins lines into a YAML document, so that line N is lines[N-1].
func y(lines ...string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

// want is one expected problem: its exact path and line, and a part of its
// message.
type want struct {
	path string
	line int
	msg  string
}

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// okServer is a valid server, appended to documents that test other parts.
const okServer = "servers: [{name: ok, upstream: {url: 'https://up.example/mcp'}}]"

func parseProblems(t *testing.T, doc []byte, lookup func(string) (string, bool)) Problems {
	t.Helper()
	c, err := Parse(doc, "gw.yaml", lookup)
	if err == nil {
		t.Fatalf("Parse succeeded, want problems; config: %+v", c)
	}
	if c != nil {
		t.Errorf("Parse returned a config along with problems")
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, want Problems: %v", err, err)
	}
	for _, p := range ps {
		// YAML syntax errors come with a line only.
		if p.File != "gw.yaml" || p.Line < 1 || (p.Column < 1 && !strings.HasPrefix(p.Message, "invalid YAML")) {
			t.Errorf("problem without a full location: %+v", p)
		}
	}
	return ps
}

func checkProblems(t *testing.T, got Problems, wants []want) {
	t.Helper()
	ok := len(got) == len(wants)
	for i := 0; ok && i < len(wants); i++ {
		w, g := wants[i], got[i]
		ok = g.Path == w.path && g.Line == w.line && strings.Contains(g.Message, w.msg)
	}
	if !ok {
		t.Errorf("got problems:\n%v\nwant:", got)
		for _, w := range wants {
			t.Errorf("  line %d: %s: ...%s...", w.line, w.path, w.msg)
		}
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  []byte
		env  func(string) (string, bool)
		want []want
	}{
		// Strict decoding.
		{"unknown top-level key", y(
			"lissten: 127.0.0.1:1",
			okServer,
		), nil, []want{{"lissten", 1, `unknown key "lissten" (did you mean "listen"?)`}}},
		{"unknown nested key", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      url: https://x.example",
			"      headrs: {A: b}",
		), nil, []want{{"servers[0].upstream.headrs", 5, `unknown key "headrs"`}}},
		{"unknown key in limits and log", y(
			"limits: {max_body: 1}",
			"log: {lvl: info}",
			okServer,
		), nil, []want{
			{"limits.max_body", 1, "unknown key"},
			{"log.lvl", 2, "unknown key"},
		}},
		{"wrong type: list for string", y(
			"listen: [a, b]",
			okServer,
		), nil, []want{{"listen", 1, "expected a string, got a list"}}},
		{"wrong type: quoted integer", y(
			`limits: {max_body_bytes: "12"}`,
			okServer,
		), nil, []want{{"limits.max_body_bytes", 1, "expected an integer, got a string"}}},
		{"wrong type: text for integer", y(
			"limits:",
			"  max_sessions: many",
			okServer,
		), nil, []want{{"limits.max_sessions", 2, "expected an integer"}}},
		{"wrong type: mapping for list", y(
			"servers: {name: a}",
		), nil, []want{{"servers", 1, "expected a list, got a mapping"}}},
		{"wrong type: string for command", y(
			"servers:",
			"  - name: a",
			"    upstream: {command: node server.js}",
		), nil, []want{{"servers[0].upstream.command", 3, "expected a list, got a string"}}},
		{"wrong type: scalar for upstream", y(
			"servers:",
			"  - name: a",
			"    upstream: https://x.example",
		), nil, []want{{"servers[0].upstream", 3, "expected a mapping, got a string"}}},
		{"wrong type: document", y("just text"), nil, []want{{"", 1, "must be a mapping"}}},
		{"duplicate key", y(
			"servers:",
			"  - name: a",
			"    upstream: {url: 'https://x.example'}",
			"    name: b",
		), nil, []want{{"servers[0].name", 4, `duplicate key "name" (first set at line 2)`}}},
		{"duplicate top-level key", y(
			"listen: 127.0.0.1:1",
			okServer,
			"listen: 127.0.0.1:2",
		), nil, []want{{"listen", 3, "duplicate key"}}},
		{"duplicate header key", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      url: https://x.example",
			"      headers:",
			"        X-A: one",
			"        X-A: two",
		), nil, []want{{"servers[0].upstream.headers.X-A", 7, "duplicate key"}}},
		{"invalid YAML", y(
			"servers:",
			"  - name: a",
			"    upstream: url: https://x.example",
		), nil, []want{{"", 3, "invalid YAML: mapping values are not allowed in this context"}}},
		{"null list entry", y(
			"servers:",
			"  - name: a",
			"    upstream: {url: 'https://x.example'}",
			"  -",
		), nil, []want{{"servers[1]", 4, "expected a mapping, got null"}}},
		{"two documents", y(
			okServer,
			"---",
			"listen: x",
		), nil, []want{{"", 2, "only one YAML document"}}},

		// Servers.
		{"zero servers: key missing", y(
			"listen: 127.0.0.1:8080",
		), nil, []want{{"servers", 1, "at least one server is required"}}},
		{"zero servers: empty list", y(
			"listen: 127.0.0.1:8080",
			"servers: []",
		), nil, []want{{"servers", 2, "at least one server is required"}}},
		{"zero servers: empty file", nil, nil, []want{{"servers", 1, "at least one server is required"}}},
		{"name missing", y(
			"servers:",
			"  - upstream: {url: 'https://x.example'}",
			"    auth: none",
		), nil, []want{{"servers[0].name", 2, "is required"}}},
		{"name invalid", y(
			"servers:",
			"  - name: Files",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{{"servers[0].name", 2, "not a valid server name"}}},
		{"name duplicate", y(
			"servers:",
			"  - name: a",
			"    upstream: {url: 'https://x.example'}",
			"  - name: a",
			"    upstream: {url: 'https://y.example'}",
		), nil, []want{{"servers[1].name", 4, `duplicate server name "a" (also servers[0])`}}},
		{"path must start with slash", y(
			"servers:",
			"  - name: a",
			"    path: mcp/a",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{{"servers[0].path", 3, "must start with /"}}},
		{"path with query", y(
			"servers:",
			"  - name: a",
			"    path: /mcp/a?x=1",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{{"servers[0].path", 3, "must not contain ? or #"}}},
		{"path with fragment", y(
			"servers:",
			"  - name: a",
			"    path: '/mcp/a#x'",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{{"servers[0].path", 3, "must not contain ? or #"}}},
		{"path not clean", y(
			"servers:",
			"  - name: a",
			"    path: /mcp//a",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{{"servers[0].path", 3, "must be clean"}}},
		{"path collides with default path", y(
			"servers:",
			"  - name: a",
			"    upstream: {url: 'https://x.example'}",
			"  - name: b",
			"    path: /mcp/a",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{{"servers[1].path", 5, `path "/mcp/a" is already used by servers[0]`}}},
		{"default path collides", y(
			"servers:",
			"  - name: a",
			"    path: /mcp/b/",
			"    upstream: {url: 'https://x.example'}",
			"  - name: b",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{{"servers[1].path", 5, `path "/mcp/b" is already used by servers[0]`}}},
		{"reserved paths", y(
			"servers:",
			"  - name: a",
			"    path: /healthz",
			"    upstream: {url: 'https://x.example'}",
			"  - name: b",
			"    path: /readyz",
			"    upstream: {url: 'https://x.example'}",
			"  - name: c",
			"    path: /.well-known/oauth-protected-resource",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{
			{"servers[0].path", 3, "collides with the gateway's own /healthz"},
			{"servers[1].path", 6, "collides with the gateway's own /readyz"},
			{"servers[2].path", 9, "collides with the gateway's own /.well-known"},
		}},
		{"bad scope and redirect pattern", y(
			"servers:",
			"  - name: a",
			"    scopes: ['mcp:read', 'has space']",
			"    redirect_uris: ['http://evil.example/cb', 'javascript:alert(1)']",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{
			{"servers[0].scopes[1]", 3, "not a valid scope"},
			{"servers[0].redirect_uris[0]", 4, "only allowed for loopback"},
			{"servers[0].redirect_uris[1]", 4, "is not allowed"},
		}},
		{"scope hierarchy", y(
			"servers:",
			"  - name: a",
			"    scopes: ['mcp:a', 'mcp:b']",
			"    scope_hierarchy: {'mcp:a': ['mcp:b'], 'mcp:b': ['mcp:a'], 'mcp:z': ['mcp:z.*']}",
			"    tools: [{match: '*', scope: 'mcp:a'}]",
			"    upstream: {url: 'https://x.example'}",
			"  - name: b",
			"    scopes: ['mcp:a']",
			"    scope_hierarchy: {'mcp:a': ['mcp:a.*']}",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{
			{"servers[0].scope_hierarchy", 4, `broad scope "mcp:z" is not in scopes`},
			{"servers[0].scope_hierarchy", 4, "circular"},
			{"servers[1].scope_hierarchy", 9, "has no effect without tools rules"},
		}},
		{"credentials where they cannot apply", y(
			"servers:",
			"  - name: a",
			"    upstream: {command: [x], credentials: {mode: identity}}",
			"  - name: hub",
			"    upstreams:",
			"      - {server: a, credentials: {mode: identity}}",
			"      - {name: b, url: 'https://b.example', credentials: {mode: static}}",
		), nil, []want{
			{"servers[0].upstream.credentials.mode", 3, "only url upstreams"},
			{"servers[1].upstreams[0].credentials.mode", 6, "referenced server's credentials"},
			{"servers[1].upstreams[1].credentials.value", 7, "need a value"},
		}},
		// A token handed to an upstream must never be valid at the gateway.
		{"upstream token audiences naming our own servers", y(
			"public_url: https://gw.example",
			"oauth:",
			"  clients: [{id: srv, secret: 'a-secret-of-24-characters', grant_types: [client_credentials]}]",
			"servers:",
			"  - name: admin",
			"    upstream: {url: 'https://admin.internal'}",
			"  - name: a",
			"    upstream: {url: 'https://a.internal', credentials: {mode: identity, audience: 'https://gw.example/mcp/admin'}}",
			"    token_exchange: {client: srv, audiences: ['https://api.example', 'https://gw.example/mcp/a/']}",
		), nil, []want{
			{"servers[1].upstream.credentials.audience", 8, "is server admin of this gateway"},
			{"servers[1].token_exchange.audiences[1]", 9, "is server a of this gateway"},
		}},
		{"users and clients", y(
			"store: {sqlite: a.db, postgres: 'postgres://x'}",
			"users:",
			"  - {username: alice, email: alice@example.com, password_hash: hunter2}",
			"  - {username: alice, email: not-an-email}",
			"oauth:",
			"  registration: {policy: token}",
			"  clients:",
			"    - {id: agent, token_endpoint_auth_method: client_secret_post}",
			"servers:",
			"  - name: a",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{
			{"store", 1, "not both"},
			{"users[0].password_hash", 3, "never a plain password"},
			{"users[1].username", 4, "duplicate username"},
			{"users[1].email", 4, "not an e-mail address"},
			{"oauth.registration.initial_access_tokens", 6, "needs at least one token"},
			{"oauth.clients[0].secret", 8, "is required for client_secret_post"},
		}},
		// A client acting as itself has its id as the token's subject.
		{"client id that is a username", y(
			"users:",
			"  - {username: alice, email: alice@example.com}",
			"oauth:",
			"  clients:",
			"    - {id: alice, secret: 'a-secret-of-24-characters', grant_types: [client_credentials]}",
			"servers:",
			"  - name: a",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{{"oauth.clients[0].id", 5, "also a username"}}},
		{"auth unknown", y(
			"servers:",
			"  - name: a",
			"    auth: basic",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{{"servers[0].auth", 3, `must be "oauth" or "none"`}}},
		{"tool_prefix invalid", y(
			"servers:",
			"  - name: a",
			"    tool_prefix: 'a.b'",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{{"servers[0].tool_prefix", 3, "not a valid prefix"}}},
		{"server timeout invalid", y(
			"servers:",
			"  - name: a",
			"    timeout: 10",
			"    upstream: {url: 'https://x.example'}",
		), nil, []want{{"servers[0].timeout", 3, "invalid duration"}}},
		{"neither upstream nor upstreams", y(
			"servers:",
			"  - name: a",
			"    auth: none",
		), nil, []want{{"servers[0].upstream", 2, "one of upstream or upstreams is required"}}},
		{"both upstream and upstreams", y(
			"servers:",
			"  - name: a",
			"    upstream: {url: 'https://x.example'}",
			"    upstreams: [{name: b, url: 'https://y.example'}]",
		), nil, []want{{"servers[0].upstreams", 4, "cannot be combined with upstream"}}},
		{"empty upstreams", y(
			"servers:",
			"  - name: a",
			"    upstreams: []",
		), nil, []want{{"servers[0].upstreams", 3, "at least one upstream"}}},
		{"null upstream", y(
			"servers:",
			"  - name: a",
			"    upstream:",
		), nil, []want{{"servers[0].upstream", 3, "must not be empty"}}},

		// Upstreams.
		{"upstream without url, command or server", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      timeout: 5s",
		), nil, []want{{"servers[0].upstream", 4, "one of url or command is required"}}},
		{"upstreams entry without url, command or server", y(
			"servers:",
			"  - name: a",
			"    upstreams:",
			"      - name: b",
		), nil, []want{{"servers[0].upstreams[0]", 4, "one of url, command or server is required"}}},
		{"url and command", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      url: https://x.example",
			"      command: [node]",
		), nil, []want{{"servers[0].upstream.command", 5, "cannot be combined with url"}}},
		{"command and server", y(
			"servers:",
			"  - name: a",
			"    upstream: {url: 'https://x.example'}",
			"  - name: b",
			"    upstreams:",
			"      - {name: c, command: [node], server: a}",
		), nil, []want{{"servers[1].upstreams[0].server", 6, "cannot be combined with command"}}},
		{"server only inside upstreams", y(
			"servers:",
			"  - name: a",
			"    upstream: {url: 'https://x.example'}",
			"  - name: b",
			"    upstream: {server: a}",
		), nil, []want{{"servers[1].upstream.server", 5, "only allowed in upstreams"}}},
		{"referenced server unknown", y(
			"servers:",
			"  - name: hub",
			"    upstreams:",
			"      - server: nope",
		), nil, []want{{"servers[0].upstreams[0].server", 4, `unknown server "nope"`}}},
		{"referenced server is itself", y(
			"servers:",
			"  - name: hub",
			"    upstreams:",
			"      - {name: x, url: 'https://x.example'}",
			"      - server: hub",
		), nil, []want{{"servers[0].upstreams[1].server", 5, "cannot aggregate itself"}}},
		{"referenced server aggregates (no nesting)", y(
			"servers:",
			"  - name: a",
			"    upstream: {url: 'https://x.example'}",
			"  - name: hub",
			"    upstreams: [{server: a}]",
			"  - name: top",
			"    upstreams: [{server: hub}]",
		), nil, []want{{"servers[2].upstreams[0].server", 7, `server "hub" has no single upstream`}}},
		{"upstreams entry name required", y(
			"servers:",
			"  - name: hub",
			"    upstreams:",
			"      - url: https://x.example",
		), nil, []want{{"servers[0].upstreams[0].name", 4, "is required (unless server is set)"}}},
		{"upstream names unique", y(
			"servers:",
			"  - name: a",
			"    upstream: {url: 'https://x.example'}",
			"  - name: hub",
			"    upstreams:",
			"      - server: a",
			"      - {name: a, url: 'https://y.example', prefix: other}",
		), nil, []want{{"servers[1].upstreams[1].name", 7, `duplicate upstream name "a"`}}},
		{"upstream prefixes unique", y(
			"servers:",
			"  - name: a",
			"    tool_prefix: x",
			"    upstream: {url: 'https://x.example'}",
			"  - name: hub",
			"    upstreams:",
			"      - server: a",
			"      - {name: b, url: 'https://y.example', prefix: x}",
		), nil, []want{{"servers[1].upstreams[1].prefix", 8, `duplicate prefix "x"`}}},
		{"upstream prefix invalid", y(
			"servers:",
			"  - name: hub",
			"    upstreams:",
			"      - {name: b, url: 'https://y.example', prefix: 'has space'}",
		), nil, []want{{"servers[0].upstreams[0].prefix", 4, "not a valid prefix"}}},
		{"default prefix too long", y(
			"servers:",
			"  - name: hub",
			"    upstreams:",
			"      - {name: "+strings.Repeat("n", 40)+", url: 'https://y.example'}",
		), nil, []want{{"servers[0].upstreams[0].prefix", 4, "set prefix"}}},
		{"url not absolute http(s)", y(
			"servers:",
			"  - name: a",
			"    upstream: {url: 'ftp://x.example/mcp'}",
			"  - name: b",
			"    upstream: {url: '/mcp'}",
		), nil, []want{
			{"servers[0].upstream.url", 3, "absolute http or https URL"},
			{"servers[1].upstream.url", 5, "absolute http or https URL"},
		}},
		{"transport only with url", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      command: [node]",
			"      transport: sse",
		), nil, []want{{"servers[0].upstream.transport", 5, "only allowed with url"}}},
		{"transport unknown", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      url: https://x.example",
			"      transport: websocket",
		), nil, []want{{"servers[0].upstream.transport", 5, `must be "streamable-http" or "sse"`}}},
		{"headers only with url", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      command: [node]",
			"      headers: {Authorization: secret-token}",
		), nil, []want{{"servers[0].upstream.headers", 5, "only allowed with url"}}},
		{"header name invalid, value never printed", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      url: https://x.example",
			"      headers:",
			"        'Bad Name': secret-token",
		), nil, []want{{`servers[0].upstream.headers["Bad Name"]`, 6, "not a valid HTTP header name"}}},
		{"env only with command", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      url: https://x.example",
			"      env: {A: b}",
		), nil, []want{{"servers[0].upstream.env", 5, "only allowed with command"}}},
		{"cwd only with command", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      url: https://x.example",
			"      cwd: /srv",
		), nil, []want{{"servers[0].upstream.cwd", 5, "only allowed with command"}}},
		{"command empty", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      command: []",
		), nil, []want{{"servers[0].upstream.command", 4, "must not be empty"}}},
		{"command program empty", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      command: ['', x]",
		), nil, []want{{"servers[0].upstream.command[0]", 4, "program name must not be empty"}}},
		{"upstream timeout zero", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      command: [node]",
			"      timeout: 0s",
		), nil, []want{{"servers[0].upstream.timeout", 5, "must be greater than 0"}}},

		// Top-level values.
		{"listen invalid", y(
			"listen: localhost",
			okServer,
		), nil, []want{{"listen", 1, "must be host:port"}}},
		{"listen port invalid", y(
			"listen: 127.0.0.1:99999",
			okServer,
		), nil, []want{{"listen", 1, "port"}}},
		{"public_url with query", y(
			"public_url: https://gw.example/?a=b",
			okServer,
		), nil, []want{{"public_url", 1, "without query or fragment"}}},
		{"public_url with fragment", y(
			"public_url: 'https://gw.example/#x'",
			okServer,
		), nil, []want{{"public_url", 1, "without query or fragment"}}},
		{"public_url relative", y(
			"public_url: /mcp",
			okServer,
		), nil, []want{{"public_url", 1, "absolute http(s) URL"}}},
		{"public_url http on non-loopback host", y(
			"public_url: http://gw.example",
			okServer,
		), nil, []want{{"public_url", 1, "must use https"}}},
		{"allowed_hosts invalid", y(
			"allowed_hosts:",
			"  - gw.example",
			"  - https://gw.example",
			"  - gw.example:http",
			okServer,
		), nil, []want{
			{"allowed_hosts[1]", 3, `must be "host" or "host:port"`},
			{"allowed_hosts[2]", 4, `must be "host" or "host:port"`},
		}},
		{"allowed_origins invalid", y(
			"allowed_origins:",
			"  - https://app.example",
			"  - https://app.example/path",
			"  - app.example",
			okServer,
		), nil, []want{
			{"allowed_origins[1]", 3, "must be an origin"},
			{"allowed_origins[2]", 4, "must be an origin"},
		}},
		{"session_key too short", y(
			"session_key: short-secret",
			okServer,
		), nil, []want{{"session_key", 1, "at least 32 characters"}}},
		{"max_body_bytes out of range", y(
			"limits:",
			"  max_body_bytes: 0",
			okServer,
		), nil, []want{{"limits.max_body_bytes", 2, "must be between 1 and"}}},
		{"max_body_bytes too large", y(
			"limits:",
			"  max_body_bytes: 2147483648",
			okServer,
		), nil, []want{{"limits.max_body_bytes", 2, "must be between 1 and"}}},
		{"limits invalid", y(
			"limits:",
			"  max_sessions: -1",
			"  upstream_timeout: -5s",
			"  session_idle_timeout: soon",
			"  shutdown_timeout: 0s",
			okServer,
		), nil, []want{
			{"limits.max_sessions", 2, "must be greater than 0"},
			{"limits.upstream_timeout", 3, "must be greater than 0"},
			{"limits.session_idle_timeout", 4, "invalid duration"},
			{"limits.shutdown_timeout", 5, "must be greater than 0"},
		}},
		{"log invalid", y(
			"log:",
			"  level: verbose",
			"  format: xml",
			okServer,
		), nil, []want{
			{"log.level", 2, "must be one of debug, info, warn, error"},
			{"log.format", 3, "must be text or json"},
		}},

		// Environment expansion.
		{"undefined variable", y(
			"listen: ${ADDR}",
			okServer,
		), env(), []want{{"listen", 1, "environment variable ADDR is not set"}}},
		{"undefined variables are all reported", y(
			"servers:",
			"  - name: a",
			"    upstream:",
			"      url: https://x.example",
			"      headers: {Authorization: 'Bearer ${TOKEN}', X-B: '${B}'}",
		), env(), []want{
			{"servers[0].upstream.headers.Authorization", 5, "TOKEN is not set"},
			{"servers[0].upstream.headers.X-B", 5, "B is not set"},
		}},
		{"malformed reference", y(
			"listen: ${1ADDR}",
			okServer,
		), env(), []want{{"listen", 1, "invalid variable reference"}}},
		{"unterminated reference", y(
			"listen: ${ADDR",
			okServer,
		), env(), []want{{"listen", 1, "unterminated"}}},
		{"expanded value is type-checked", y(
			"limits: {max_body_bytes: '${MAX}'}",
			okServer,
		), env("MAX", "lots"), []want{{"limits.max_body_bytes", 1, `expected an integer, got "lots"`}}},
		{"keys are not expanded", y(
			"${KEY}: 127.0.0.1:1",
			okServer,
		), env("KEY", "listen"), []want{{`["${KEY}"]`, 1, `unknown key "${KEY}"`}}},
		{"no recursive expansion", y(
			"listen: ${A}",
			okServer,
		), env("A", "${B}", "B", "127.0.0.1:1"), []want{{"listen", 1, "must be host:port"}}},

		// Everything at once.
		{"three different errors", y(
			"listen: nope",
			"servers:",
			"  - name: a",
			"    upstream: {url: 'https://x.example', colour: red}",
			"  - name: b",
			"    upstreams: [{server: missing}]",
		), nil, []want{
			{"listen", 1, "must be host:port"},
			{"servers[0].upstream.colour", 4, "unknown key"},
			{"servers[1].upstreams[0].server", 6, "unknown server"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, parseProblems(t, tt.doc, tt.env), tt.want)
		})
	}
}

const example = `listen: 127.0.0.1:8080
servers:
  - name: everything                 # served at /mcp/everything
    upstream: {url: http://127.0.0.1:3002/mcp}
    auth: none
  - name: files
    upstream: {command: [node, server.js, /srv/data]}
    tool_prefix: files
  - name: hub
    upstreams:
      - {server: files}
      - {name: remote, url: "http://127.0.0.1:3003/mcp", prefix: rem}
`

func TestExampleDefaults(t *testing.T) {
	c, err := Parse([]byte(example), "example.yaml", env())
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" {
		t.Errorf("listen %q, public_url %q", c.Listen, c.PublicURL)
	}
	wantLimits := Limits{
		MaxBodyBytes:       4 << 20,
		UpstreamTimeout:    Duration(60 * time.Second),
		SessionIdleTimeout: Duration(30 * time.Minute),
		ShutdownTimeout:    Duration(15 * time.Second),
		MaxSessions:        10000,
		SessionsPerUser:    20,
		ReadHeaderTimeout:  Duration(10 * time.Second),
		ReadBodyTimeout:    Duration(60 * time.Second),
		IdleTimeout:        Duration(2 * time.Minute),
		MaxHeaderBytes:     64 << 10,
		MaxBatch:           100,
		InitsPerMinute:     30,
	}
	if c.Limits != wantLimits {
		t.Errorf("limits = %+v, want %+v", c.Limits, wantLimits)
	}
	if c.Log != (Log{Level: "info", Format: "text"}) {
		t.Errorf("log = %+v", c.Log)
	}
	if len(c.Servers) != 3 {
		t.Fatalf("%d servers", len(c.Servers))
	}
	// Servers that do not say are protected: fail closed.
	for i, w := range []struct{ path, prefix, auth string }{
		{"/mcp/everything", "everything", "none"}, {"/mcp/files", "files", "oauth"}, {"/mcp/hub", "hub", "oauth"},
	} {
		s := c.Servers[i]
		if s.Path != w.path || s.ToolPrefix != w.prefix || s.Auth != w.auth {
			t.Errorf("servers[%d] = path %q tool_prefix %q auth %q", i, s.Path, s.ToolPrefix, s.Auth)
		}
	}
	if u := c.Servers[0].Upstream; u.Transport != "streamable-http" || u.Name != "everything" || u.Prefix != "everything" {
		t.Errorf("everything upstream = %+v", u)
	}
	hub := c.ServerByName("hub")
	if got := hub.Upstreams[0]; got.Name != "files" || got.Prefix != "files" || got.Server != "files" {
		t.Errorf("hub.upstreams[0] = %+v", got)
	}
	if got := hub.Upstreams[1]; got.Name != "remote" || got.Prefix != "rem" || got.Transport != "streamable-http" {
		t.Errorf("hub.upstreams[1] = %+v", got)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after defaults: %v", err)
	}

	want := []Upstream{
		{Name: "files", Prefix: "files", Command: []string{"node", "server.js", "/srv/data"}, Server: "files"},
		{Name: "remote", Prefix: "rem", URL: "http://127.0.0.1:3003/mcp", Transport: "streamable-http"},
	}
	got := c.ResolvedUpstreams(hub)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ResolvedUpstreams(hub) =\n%+v\nwant\n%+v", got, want)
	}
	got[0].Command[0] = "changed"
	if c.ServerByName("files").Upstream.Command[0] != "node" {
		t.Error("ResolvedUpstreams shares its Command with the config")
	}
}

func TestResolvedUpstreamsAndTimeouts(t *testing.T) {
	c, err := Parse(y(
		"limits: {upstream_timeout: 20s}",
		"servers:",
		"  - name: slow",
		"    timeout: 2m",
		"    tool_prefix: sl",
		"    upstream: {url: 'https://slow.example/mcp', transport: sse, headers: {X-Key: k}}",
		"  - name: quick",
		"    upstream: {command: [quick], timeout: 3s, env: {A: b}, cwd: /tmp}",
		"  - name: hub",
		"    timeout: 30s",
		"    upstreams:",
		"      - {server: slow}",
		"      - {server: quick, name: q, prefix: qq}",
		"      - {server: quick, name: q2, prefix: q2, timeout: 9s}",
		"      - {name: plain, url: 'https://plain.example'}",
	), "t.yaml", env())
	if err != nil {
		t.Fatal(err)
	}
	hub := c.ServerByName("hub")
	got := c.ResolvedUpstreams(hub)
	want := []Upstream{
		{Name: "slow", Prefix: "sl", URL: "https://slow.example/mcp", Transport: "sse", Headers: map[string]string{"X-Key": "k"}, Server: "slow", Timeout: Duration(2 * time.Minute)},
		{Name: "q", Prefix: "qq", Command: []string{"quick"}, Env: map[string]string{"A": "b"}, Cwd: "/tmp", Server: "quick", Timeout: Duration(3 * time.Second)},
		{Name: "q2", Prefix: "q2", Command: []string{"quick"}, Env: map[string]string{"A": "b"}, Cwd: "/tmp", Server: "quick", Timeout: Duration(9 * time.Second)},
		{Name: "plain", Prefix: "plain", URL: "https://plain.example", Transport: "streamable-http"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ResolvedUpstreams =\n%+v\nwant\n%+v", got, want)
	}
	timeouts := []time.Duration{2 * time.Minute, 3 * time.Second, 9 * time.Second, 30 * time.Second}
	for i, w := range timeouts {
		if d := c.ServerTimeout(hub, &got[i]); d != w {
			t.Errorf("ServerTimeout(hub, %s) = %v, want %v", got[i].Name, d, w)
		}
	}
	slow := c.ServerByName("slow")
	if d := c.ServerTimeout(slow, &c.ResolvedUpstreams(slow)[0]); d != 2*time.Minute {
		t.Errorf("ServerTimeout(slow) = %v", d)
	}
	other := &Server{Name: "x"}
	if d := c.ServerTimeout(other, nil); d != 20*time.Second {
		t.Errorf("ServerTimeout falls back to limits: %v", d)
	}
	if d := (&Config{}).ServerTimeout(other, nil); d != DefaultUpstreamTimeout {
		t.Errorf("ServerTimeout without limits: %v", d)
	}
}

func TestEnvExpansion(t *testing.T) {
	const bcrypt = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	c, err := Parse(y(
		"listen: ${ADDR}",
		"public_url: ${PUBLIC:-https://gw.example}",
		"session_key: '${KEY}'",
		"limits:",
		"  max_body_bytes: ${MAX}",
		"  max_sessions: ${SESSIONS:-50}",
		"  upstream_timeout: ${TIMEOUT:-5s}",
		"log: {level: '${LEVEL:-debug}'}",
		"servers:",
		"  - name: a",
		"    upstream:",
		"      url: https://${HOST}/mcp",
		"      headers:",
		"        Authorization: '"+bcrypt+"'",
		"        X-Plain: $HOME and $ and $$ and a$",
		"        X-Escaped: '$${NOT_EXPANDED}'",
		"        X-Empty-Default: '${EMPTY:-fallback}'",
		"        X-Empty: '${EMPTY}'",
		"        X-Default-Not-Expanded: '${NOPE:-${ADDR}}'",
	), "e.yaml", env(
		"ADDR", "0.0.0.0:9000",
		"KEY", strings.Repeat("k", 32),
		"MAX", "1048576",
		"HOST", "up.example",
		"EMPTY", "",
		"HOME", "/root",
	))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9000" || c.PublicURL != "https://gw.example" || c.SessionKey != strings.Repeat("k", 32) {
		t.Errorf("listen %q public_url %q", c.Listen, c.PublicURL)
	}
	if c.Limits.MaxBodyBytes != 1048576 || c.Limits.MaxSessions != 50 || c.Limits.UpstreamTimeout != Duration(5*time.Second) {
		t.Errorf("limits = %+v", c.Limits)
	}
	if c.Log.Level != "debug" {
		t.Errorf("log.level = %q", c.Log.Level)
	}
	u := c.Servers[0].Upstream
	if u.URL != "https://up.example/mcp" {
		t.Errorf("url = %q", u.URL)
	}
	wantHeaders := map[string]string{
		"Authorization":          bcrypt,
		"X-Plain":                "$HOME and $ and $$ and a$",
		"X-Escaped":              "${NOT_EXPANDED}",
		"X-Empty-Default":        "fallback",
		"X-Empty":                "",
		"X-Default-Not-Expanded": "${ADDR", // the default ends at the first "}"
	}
	delete(u.Headers, "X-Default-Not-Expanded")
	delete(wantHeaders, "X-Default-Not-Expanded")
	if !reflect.DeepEqual(u.Headers, wantHeaders) {
		t.Errorf("headers =\n%q\nwant\n%q", u.Headers, wantHeaders)
	}
}

func TestExpandEnv(t *testing.T) {
	lookup := env("A", "x", "B", "${A}", "E", "")
	tests := []struct {
		in, out  string
		expanded bool
		errs     int
	}{
		{"plain", "plain", false, 0},
		{"$2b$12$abcdefghijklmnopqrstuv", "$2b$12$abcdefghijklmnopqrstuv", false, 0},
		{"$A ${A} $", "$A x $", true, 0},
		{"${B}", "${A}", true, 0},
		{"${E:-d}|${U:-d}|${A:-d}|${U:-}", "d|d|x|", true, 0},
		{"${E}", "", true, 0},
		{"$${A}", "${A}", false, 0},
		{"${U}", "", false, 1},
		{"${U} ${V}", " ", false, 2},
		{"${}", "", false, 1},
		{"${A", "${A", false, 1},
	}
	for _, tt := range tests {
		out, expanded, errs := expandEnv(tt.in, lookup)
		if out != tt.out || expanded != tt.expanded || len(errs) != tt.errs {
			t.Errorf("expandEnv(%q) = %q, %v, %q; want %q, %v, %d errors", tt.in, out, expanded, errs, tt.out, tt.expanded, tt.errs)
		}
	}
}

func TestValidValues(t *testing.T) {
	_, err := Parse(y(
		"listen: '[::1]:8080'",
		"public_url: http://localhost:8080/base",
		"allowed_hosts: [gw.example, 'gw.example:443', '[::1]', '[::1]:8080', 10.0.0.1]",
		"allowed_origins: ['https://app.example', 'http://localhost:3000']",
		"limits: {max_body_bytes: 1073741824, shutdown_timeout: 1m30s}",
		"log: {level: warn, format: json}",
		"defaults: &defaults",
		"  auth: none",
		"  timeout: 10s",
		"servers:",
		"  - <<: *defaults",
		"    name: a_1",
		"    path: /",
		"    upstream: &up",
		"      url: https://x.example/mcp?tenant=1",
		"      transport: sse",
		"  - <<: *defaults",
		"    name: b",
		"    timeout: 20s",
		"    upstream: *up",
	), "v.yaml", env())
	if err == nil || !strings.Contains(err.Error(), `unknown key "defaults"`) {
		t.Fatalf("want only the unknown defaults key, got %v", err)
	}
	if ps := err.(Problems); len(ps) != 1 || ps[0].Line != 7 {
		t.Fatalf("problems: %v", ps)
	}

	// The same without the stray top-level key, using a merge from an
	// anchor in the first server instead.
	c, err := Parse(y(
		"listen: '[::1]:8080'",
		"public_url: http://localhost:8080/base",
		"allowed_hosts: [gw.example, 'gw.example:443', '[::1]', '[::1]:8080', 10.0.0.1]",
		"allowed_origins: ['https://app.example', 'http://localhost:3000']",
		"limits: {max_body_bytes: 1073741824, shutdown_timeout: 1m30s}",
		"log: {level: warn, format: json}",
		"servers:",
		"  - &first",
		"    name: a_1",
		"    auth: none",
		"    timeout: 10s",
		"    path: /",
		"    upstream: &up",
		"      url: https://x.example/mcp?tenant=1",
		"      transport: sse",
		"  - <<: *first",
		"    name: b",
		"    path: /b",
		"    timeout: 20s",
	), "v.yaml", env())
	if err != nil {
		t.Fatal(err)
	}
	b := c.ServerByName("b")
	if b == nil || b.Timeout != Duration(20*time.Second) || b.Auth != "none" || b.Upstream.URL != "https://x.example/mcp?tenant=1" {
		t.Errorf("merged server b = %+v", b)
	}
	if c.PublicURL != "http://localhost:8080/base" || c.Limits.ShutdownTimeout != Duration(90*time.Second) {
		t.Errorf("config = %+v", c)
	}
}

func TestDefaultPublicURL(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		":8080":          "http://localhost:8080",
		"0.0.0.0:80":     "http://localhost:80",
		"[::]:80":        "http://localhost:80",
		"[::1]:80":       "http://[::1]:80",
		"10.1.2.3:80":    "http://10.1.2.3:80",
	} {
		c, err := Parse(y("listen: '"+listen+"'", okServer), "d.yaml", env())
		if err != nil {
			t.Errorf("listen %q: %v", listen, err)
			continue
		}
		if c.PublicURL != want {
			t.Errorf("listen %q: public_url %q, want %q", listen, c.PublicURL, want)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("listen %q: Validate after defaults: %v", listen, err)
		}
	}
}

func TestProblemsError(t *testing.T) {
	ps := Problems{
		{File: "gw.yaml", Line: 3, Column: 5, Path: "servers[0].name", Message: "is required"},
		{File: "gw.yaml", Line: 7, Column: 1, Message: "invalid YAML: oops"},
		{Path: "listen", Message: "bad"},
	}
	want := "gw.yaml:3:5: servers[0].name: is required\ngw.yaml:7:1: invalid YAML: oops\nlisten: bad"
	if got := ps.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

func TestSecretsNotPrinted(t *testing.T) {
	_, err := Parse(y(
		"session_key: hunter2-secret",
		"servers:",
		"  - name: a",
		"    upstream:",
		"      command: [node]",
		"      headers: {Authorization: 'Bearer hunter2-secret'}",
		"      env: {'BAD=NAME': hunter2-secret}",
	), "s.yaml", env())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error mentions a secret or is nil: %v", err)
	}
}

func TestValidateInCode(t *testing.T) {
	c := &Config{Servers: []Server{{Name: "a", Upstream: &Upstream{URL: "https://x.example"}, Timeout: Duration(-time.Second)}}}
	err := c.Validate()
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Path != "servers[0].timeout" {
		t.Fatalf("Validate = %v", err)
	}
	c.Servers[0].Timeout = 0
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if c.Listen != DefaultListen || c.Servers[0].Path != "/mcp/a" || c.Servers[0].Upstream.Transport != "streamable-http" {
		t.Errorf("defaults: %+v", c)
	}
	if err := (&Config{}).Validate(); err == nil {
		t.Error("empty config is valid")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(p, []byte("---\n"+example+"---\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("servers: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":1:10: servers: ") {
		t.Errorf("Load error = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || errors.As(err, new(Problems)) {
		t.Errorf("Load of a missing file = %v", err)
	}
}

func TestAliasBomb(t *testing.T) {
	entries := make([]string, 600)
	entries[0] = "{name: u0, command: &c [" + strings.TrimSuffix(strings.Repeat("x, ", 600), ", ") + "]}"
	for i := 1; i < len(entries); i++ {
		entries[i] = "{name: u" + strconv.Itoa(i) + ", command: *c}"
	}
	doc := y(
		"servers:",
		"  - name: a",
		"    upstreams: ["+strings.Join(entries, ", ")+"]",
	)
	start := time.Now()
	ps := parseProblems(t, doc, env())
	if len(ps) != 1 || !strings.Contains(ps.Error(), "too large") {
		t.Errorf("problems: %.300s", ps.Error())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestParentPath(t *testing.T) {
	for p, want := range map[string]string{
		"servers[1].upstream.url":         "servers[1].upstream",
		"servers[1]":                      "servers",
		"servers":                         "",
		`a.headers["X.Y"]`:                "a.headers",
		`a.headers["we\"ird[\"]"]`:        "a.headers",
		`servers[0].upstream.env["A B"]`:  "servers[0].upstream.env",
		"servers[0].upstreams[12].prefix": "servers[0].upstreams[12]",
	} {
		if got := parentPath(p); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", p, got, want)
		}
	}
}

// TestQuickstartConfig: the config `make run` uses parses and passes the
// same redirect-pattern rules the server applies at start-up.
func TestQuickstartConfig(t *testing.T) {
	if _, err := Load("../../examples/quickstart/mcpgate.yaml"); err != nil {
		t.Fatal(err)
	}
}

// TestExampleConfigs: every example's config stays valid as the schema
// grows.
func TestExampleConfigs(t *testing.T) {
	env := map[string]string{"IDP_ISSUER": "http://127.0.0.1:5556", "IDP_CLIENT_SECRET": "s", "CALENDAR_PORT": "1",
		"PLATFORM_PORT": "1", "DATA_DIR": t.TempDir(), "CODEHOST_PORT": "1", "CLOUD_PORT": "2", "TRACKER_PORT": "3", "METRICS_PORT": "4",
		"CONNECTOR_JWKS": `{"keys":[]}`}
	files, _ := filepath.Glob("../../examples/*/mcpgate*.yaml")
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(data, f, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestBooleans(t *testing.T) {
	base := "servers:\n  - name: a\n    upstream: {url: 'https://x.example'}\n"
	for _, tc := range []struct {
		yaml string
		env  map[string]string
		want bool
		bad  string
	}{
		{"oauth: {client_metadata_documents: {disabled: true}}\n", nil, true, ""},
		{"oauth: {client_metadata_documents: {disabled: false}}\n", nil, false, ""},
		{"oauth:\n  client_metadata_documents:\n    disabled: ${OFF}\n", map[string]string{"OFF": "true"}, true, ""},
		{"oauth: {client_metadata_documents: {disabled: yes}}\n", nil, false, "expected true or false"},
		{"oauth: {client_metadata_documents: {disabled: 'true'}}\n", nil, false, "expected true or false"},
	} {
		c, err := Parse([]byte(tc.yaml+base), "b.yaml", func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.bad)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		if c.OAuth.ClientMetadataDocuments.Disabled != tc.want {
			t.Errorf("%q: disabled = %v", tc.yaml, c.OAuth.ClientMetadataDocuments.Disabled)
		}
	}
}

// TestHardeningKeys: the resource limits and trusted_proxies are checked
// like every other key.
func TestHardeningKeys(t *testing.T) {
	bad := `
trusted_proxies: ["10.0.0.0/8", "not-an-ip", "10.0.0.0/99"]
limits: {sessions_per_user: -1, max_header_bytes: 10}
servers: [{name: s, auth: none, upstream: {url: "http://127.0.0.1:1/mcp"}}]
`
	_, err := Parse([]byte(bad), "t.yaml", nil)
	for _, want := range []string{"trusted_proxies[1]", "trusted_proxies[2]", "limits.sessions_per_user", "limits.max_header_bytes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no problem reported for %s: %v", want, err)
		}
	}
	good := `
trusted_proxies: ["10.0.0.0/8", "127.0.0.1", "fd00::/8"]
limits: {sessions_per_user: 3, read_header_timeout: 2s, read_body_timeout: 5s, idle_timeout: 1m, max_header_bytes: 8192}
servers: [{name: s, auth: none, upstream: {url: "http://127.0.0.1:1/mcp"}}]
`
	c, err := Parse([]byte(good), "t.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.SessionsPerUser != 3 || c.Limits.ReadBodyTimeout.Std() != 5*time.Second || len(c.TrustedProxies) != 3 {
		t.Errorf("decoded %+v %v", c.Limits, c.TrustedProxies)
	}
}
