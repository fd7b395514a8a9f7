package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/fixture"
)

// recorder keeps every JSON-RPC body an upstream received.
type recorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost {
			body, _ := io.ReadAll(req.Body)
			r.mu.Lock()
			r.bodies = append(r.bodies, body)
			r.mu.Unlock()
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, req)
	})
}

func (r *recorder) since(n int) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies[n:]...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// recordingUpstream serves the fixture over Streamable HTTP ("http") or
// legacy SSE ("sse") and records what reaches it.
func recordingUpstream(t *testing.T, name, transport string) (UpstreamSpec, *recorder) {
	t.Helper()
	ms := fixture.NewServer(&fixture.Options{Name: name})
	rec := &recorder{}
	h := fixture.NewStreamableHandler(ms, nil)
	path := "/mcp"
	if transport == "sse" {
		h, path = fixture.NewSSEHandler(ms), "/sse"
	}
	srv := httptest.NewServer(rec.wrap(h))
	t.Cleanup(func() {
		srv.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	})
	return UpstreamSpec{Name: name, Prefix: name, URL: srv.URL + path, Transport: transport, Timeout: 10 * time.Second}, rec
}

// upstreamView is what one decoder reads from one message.
type upstreamView struct {
	method string
	hasID  bool
	name   string // params.name, or params.uri
}

// firstMembers decodes an object keeping the FIRST of duplicate members,
// as some decoders do.
func firstMembers(raw []byte) map[string]json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return out
		}
		if k, _ := tok.(string); out[k] == nil {
			out[k] = v
		}
	}
	return out
}

func lastMembers(raw []byte) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	return m
}

func viewOf(members func([]byte) map[string]json.RawMessage, raw []byte) upstreamView {
	env := members(raw)
	var v upstreamView
	_ = json.Unmarshal(env["method"], &v.method)
	v.hasID = len(env["id"]) > 0 && string(env["id"]) != "null"
	p := members(env["params"])
	if json.Unmarshal(p["name"], &v.name) != nil || v.name == "" {
		_ = json.Unmarshal(p["uri"], &v.name)
	}
	return v
}

// foldView reads as encoding/json does (case-insensitive, last wins), as
// a Go upstream on encoding/json would.
func foldView(raw []byte) upstreamView {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name any `json:"name"`
			URI  any `json:"uri"`
		} `json:"params"`
	}
	_ = json.Unmarshal(raw, &m)
	v := upstreamView{method: m.Method, hasID: len(m.ID) > 0 && string(m.ID) != "null"}
	if s, ok := m.Params.Name.(string); ok && s != "" {
		v.name = s
	} else if s, ok := m.Params.URI.(string); ok {
		v.name = s
	}
	return v
}

// touched returns what each message an upstream received touches, after
// checking that every decoder reads it the same way.
func touched(t *testing.T, body []byte) []upstreamView {
	t.Helper()
	var elems []json.RawMessage
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
		_ = json.Unmarshal(b, &elems)
	} else {
		elems = []json.RawMessage{b}
	}
	var out []upstreamView
	for _, e := range elems {
		first, last, fold := viewOf(firstMembers, e), viewOf(lastMembers, e), foldView(e)
		if first != last || last != fold {
			t.Errorf("the upstream received an ambiguous message: first-wins %+v, last-wins %+v, case-insensitive %+v: %s", first, last, fold, e)
		}
		for _, v := range []upstreamView{first, last, fold} {
			switch v.method {
			case "tools/call", "prompts/get", "resources/read":
				out = append(out, v)
			}
		}
	}
	return out
}

var auditLine = regexp.MustCompile(`msg=audit server=\S+ kind=\S+ name=(\S+) outcome=allowed`)

// TestOneReading: a message the gateway and an upstream would read
// differently never reaches the upstream; whatever reaches it says what
// the scope check approved and the audit line names (December audit,
// finding 1). Through passthrough, the legacy-SSE bridge and aggregation.
func TestOneReading(t *testing.T) {
	var logs syncLog
	// The token below holds mcp:read: echo, the static text resource and
	// the simple prompt. Everything else needs mcp:write.
	required := func(kind, name string) string {
		switch bare(name) {
		case "echo", fixture.StaticTextURI, "test_simple_prompt":
			return "mcp:read"
		}
		return "mcp:write"
	}
	allowed := func(name string) bool { return required("", name) == "mcp:read" }
	auth := func(path string) *AuthSpec {
		return &AuthSpec{Resource: "http://x" + path, MetadataURL: "http://x/m" + path, Required: required}
	}
	pass, passRec := recordingUpstream(t, "p", "")
	legacy, legacyRec := recordingUpstream(t, "l", "sse")
	hubA, hubARec := recordingUpstream(t, "a", "")
	hubB, hubBRec := recordingUpstream(t, "b", "")
	_, base := newTestGateway(t, []ServerSpec{
		{Name: "pass", Upstreams: []UpstreamSpec{pass}, Auth: auth("/mcp/pass")},
		{Name: "legacy", Upstreams: []UpstreamSpec{legacy}, Auth: auth("/mcp/legacy")},
		{Name: "hub", Upstreams: []UpstreamSpec{hubA, hubB}, Auth: auth("/mcp/hub")},
	}, &Options{Verify: fakeVerify, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	const token = "scopes:mcp:read"
	recs := map[string][]*recorder{"pass": {passRec}, "legacy": {legacyRec}, "hub": {hubARec, hubBRec}}
	sessions := map[string]string{}
	for server := range recs {
		sessions[server] = initSessionWithToken(t, base+"/mcp/"+server, token)
	}
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`
	b64 := func(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }
	for _, tc := range []struct {
		name      string
		server    string
		stateless bool              // a 2026-07-28 request without a session
		hdr       map[string]string // extra headers
		body      string
		status    int // 0: any
		code      int // the JSON-RPC error code of a refusal
	}{
		{"allowed call", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`, 200, 0},
		{"name then Name", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_simple_text","Name":"echo"}}`, 400, -32602},
		{"NAME", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_simple_text","NAME":"echo"}}`, 400, -32602},
		{"duplicate name", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_simple_text","name":"echo"}}`, 400, -32602},
		{"escaped duplicate name", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_simple_text","na\u006de":"echo"}}`, 400, -32602},
		{"method then Method", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call","Method":"tools/list","params":{"name":"test_simple_text"}}`, 400, -32600},
		{"id then ID null: request as notification", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"ID":null,"method":"tools/call","params":{"name":"test_simple_text"}}`, 400, -32600},
		{"duplicate id with null", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"id":null,"method":"tools/call","params":{"name":"test_simple_text"}}`, 400, -32600},
		{"notification calling a tool", "pass", false, nil, `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"test_simple_text"}}`, 403, -32012},
		{"method in another case", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"Tools/call","params":{"name":"test_simple_text"}}`, 400, -32600},
		{"method with a trailing space", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call ","params":{"name":"test_simple_text"}}`, 400, -32600},
		{"method with a NUL", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call\u0000","params":{"name":"test_simple_text"}}`, 400, -32600},
		{"method folded by Unicode", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"reſources/read","params":{"uri":"` + fixture.WatchedURI + `"}}`, 400, -32600},
		{"name with a NUL", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo\u0000test_simple_text"}}`, 400, -32602},
		{"name with a trailing space", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo "}}`, 400, -32602},
		{"uri with a control character", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"` + fixture.StaticTextURI + `\n"}}`, 400, -32602},
		{"completion reference type in another case", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/Prompt","name":"test_prompt_with_arguments"},"argument":{"name":"arg1","value":""}}}`, 400, -32602},
		{"aggregated method in another case", "hub", false, nil, `{"jsonrpc":"2.0","id":2,"method":"TOOLS/CALL","params":{"name":"b__test_simple_text"}}`, 400, -32600},
		{"inside a batch", "pass", false, nil, `[{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_simple_text","Name":"echo"}}]`, 400, -32602},
		{"stateless 2026-07-28", "pass", true, map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "echo"},
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_simple_text","Name":"echo",` + meta + `}}`, 400, -32602},
		{"Mcp-Name header differs from body", "pass", true, map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "test_simple_text"},
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},` + meta + `}}`, 400, -32020},
		{"Mcp-Method header differs from body", "pass", true, map[string]string{"Mcp-Method": "tools/list", "Mcp-Name": "echo"},
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},` + meta + `}}`, 400, -32020},
		{"base64 Mcp-Name differs from body", "pass", true, map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": b64("test_simple_text")},
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},` + meta + `}}`, 400, -32020},
		{"protocol version header differs from _meta", "pass", true, map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "echo", "MCP-Protocol-Version": "2025-11-25"},
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},` + meta + `}}`, 400, -32020},
		{"Mcp-Method header missing on 2026-07-28", "pass", true, map[string]string{"Mcp-Name": "echo"},
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},` + meta + `}}`, 400, -32020},
		{"batch on 2026-07-28", "pass", true, nil,
			`[{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},` + meta + `}}]`, 400, -32020},
		{"allowed stateless call", "pass", true, map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "echo"},
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},` + meta + `}}`, 200, 0},
		{"_meta protocol version without the header", "pass", true, map[string]string{"MCP-Protocol-Version": "", "Mcp-Method": "tools/call", "Mcp-Name": "echo"},
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},` + meta + `}}`, 400, -32020},
		{"resources/read uri", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"` + fixture.WatchedURI + `","URI":"` + fixture.StaticTextURI + `"}}`, 400, -32602},
		{"prompts/get name", "pass", false, nil, `{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"test_prompt_with_arguments","Name":"test_simple_prompt","arguments":{"arg1":"a","arg2":"b"}}}`, 400, -32602},
		{"bridge name then Name", "legacy", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_simple_text","Name":"echo"}}`, 400, -32602},
		{"bridge id then ID null", "legacy", false, nil, `{"jsonrpc":"2.0","id":2,"ID":null,"method":"tools/call","params":{"name":"test_simple_text"}}`, 400, -32600},
		{"aggregated name then Name", "hub", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b__test_simple_text","Name":"b__echo"}}`, 400, -32602},
		{"aggregated duplicate name", "hub", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b__test_simple_text","name":"b__echo"}}`, 400, -32602},
		{"aggregated uri", "hub", false, nil, `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"a+` + fixture.WatchedURI + `","URI":"a+` + fixture.StaticTextURI + `"}}`, 400, -32602},
		{"aggregated allowed call", "hub", false, nil, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b__echo","arguments":{"text":"x"}}}`, 200, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Authorization": "Bearer " + token}
			if tc.stateless {
				hdr["MCP-Protocol-Version"] = "2026-07-28"
			} else {
				hdr["Mcp-Session-Id"], hdr["MCP-Protocol-Version"] = sessions[tc.server], "2025-11-25"
			}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			before := make([]int, len(recs[tc.server]))
			for i, r := range recs[tc.server] {
				before[i] = r.count()
			}
			logBefore := len(logs.String())
			resp := rawPost(t, base+"/mcp/"+tc.server, hdr, tc.body)
			body, _ := io.ReadAll(resp.Body)
			if tc.status != 0 && resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.code != 0 {
				var m struct{ Error struct{ Code int } }
				if json.Unmarshal(body, &m) != nil || m.Error.Code != tc.code {
					t.Errorf("answer %s, want error %d", body, tc.code)
				}
			}
			if tc.status == http.StatusBadRequest && !regexp.MustCompile(`msg="refused message".*user=alice`).MatchString(logs.String()[logBefore:]) {
				t.Errorf("no log line names who sent the refused message:\n%s", logs.String()[logBefore:])
			}
			audited := map[string]bool{}
			for _, m := range auditLine.FindAllStringSubmatch(logs.String()[logBefore:], -1) {
				audited[bare(strings.Trim(m[1], `"`))] = true
			}
			ran := 0
			for i, r := range recs[tc.server] {
				for _, got := range r.since(before[i]) {
					for _, v := range touched(t, got) {
						ran++
						if !allowed(v.name) {
							t.Errorf("the upstream ran %s %q, which the token may not use", v.method, v.name)
						}
						if !audited[v.name] {
							t.Errorf("the upstream ran %s %q; the audit names %v", v.method, v.name, audited)
						}
					}
				}
			}
			if tc.status == http.StatusOK && ran == 0 {
				t.Error("the allowed call did not reach the upstream")
			}
			if tc.status != http.StatusOK {
				for i, r := range recs[tc.server] {
					if got := r.since(before[i]); len(got) > 0 {
						t.Errorf("a refused request reached the upstream: %s", got[0])
					}
				}
			}
		})
	}
}

// initSessionWithToken runs initialize and initialized with a bearer
// token and returns the session id.
func initSessionWithToken(t *testing.T, url, token string) string {
	t.Helper()
	auth := map[string]string{"Authorization": "Bearer " + token}
	resp := rawPost(t, url, auth, initBody)
	_, _ = io.ReadAll(resp.Body)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" {
		t.Fatalf("initialize: %d, session %q", resp.StatusCode, sid)
	}
	auth["Mcp-Session-Id"], auth["MCP-Protocol-Version"] = sid, "2025-11-25"
	if r := rawPost(t, url, auth, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); r.StatusCode != http.StatusAccepted {
		t.Fatalf("initialized: %d", r.StatusCode)
	}
	return sid
}

// bare strips the aggregation prefixes of TestOneReading's hub.
func bare(name string) string {
	for _, p := range []string{"a__", "b__", "a+", "b+"} {
		name = strings.TrimPrefix(name, p)
	}
	return name
}

// cannedUpstream answers initialize, and every tools/list with list (a
// JSON-RPC result object, or with batch a whole batch body with %ID%
// standing for the request's id as the upstream re-encodes it), as JSON
// or as an SSE event: an upstream that tries to show the client tools the
// gateway's filter did not read.
func cannedUpstream(t *testing.T, list, echoedID string, sse bool) UpstreamSpec {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(body, &m) != nil || m.ID == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		var out string
		switch m.Method {
		case "initialize":
			out = `{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"canned","version":"1"}}}`
		default:
			id := string(m.ID)
			if echoedID != "" {
				id = echoedID
			}
			out = strings.ReplaceAll(list, "%ID%", id)
		}
		if sse {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: "+out+"\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, out)
	}))
	t.Cleanup(srv.Close)
	return UpstreamSpec{Name: "canned", URL: srv.URL, Timeout: 5 * time.Second}
}

// TestListFilterReadsStrictly: an upstream's tools/list answer reaches the
// client only as the scope filter read it. A case variant ("Tools"), a
// duplicate, an item named twice, an id the upstream re-encoded, or a batch
// answer must not carry a tool the token may not use past the filter.
func TestListFilterReadsStrictly(t *testing.T) {
	required := func(kind, name string) string {
		if name == "echo" || name == "c__echo" || name == "u__echo" {
			return "mcp:read"
		}
		return "mcp:admin"
	}
	const echo, admin = `{"name":"echo","inputSchema":{"type":"object"}}`, `{"name":"admin_tool","inputSchema":{"type":"object"}}`
	for _, tc := range []struct {
		name     string
		list     string
		echoedID string // how the upstream re-encodes the request's id
		request  string
	}{
		{"Tools next to tools", `{"jsonrpc":"2.0","id":%ID%,"result":{"tools":[` + echo + `],"Tools":[` + admin + `]}}`, "", ""},
		{"Tools alone", `{"jsonrpc":"2.0","id":%ID%,"result":{"Tools":[` + admin + `]}}`, "", ""},
		{"duplicate tools", `{"jsonrpc":"2.0","id":%ID%,"result":{"tools":[` + admin + `],"tools":[` + echo + `]}}`, "", ""},
		{"Result next to result", `{"jsonrpc":"2.0","id":%ID%,"result":{"tools":[` + echo + `]},"Result":{"tools":[` + admin + `]}}`, "", ""},
		{"item named twice", `{"jsonrpc":"2.0","id":%ID%,"result":{"tools":[{"name":"echo","Name":"admin_tool","inputSchema":{"type":"object"}}]}}`, "", ""},
		{"item with Name only", `{"jsonrpc":"2.0","id":%ID%,"result":{"tools":[{"Name":"admin_tool","inputSchema":{"type":"object"}}]}}`, "", ""},
		{"id re-encoded", `{"jsonrpc":"2.0","id":%ID%,"result":{"tools":[` + admin + `]}}`, `"xA"`,
			`{"jsonrpc":"2.0","id":"x\u0041","method":"tools/list"}`},
		{"batch answer", `[{"jsonrpc":"2.0","id":%ID%,"result":{"tools":[` + admin + `]}}]`, "", ""},
	} {
		for _, mode := range []string{"json", "sse", "aggregated"} {
			if mode == "aggregated" && tc.echoedID != "" {
				continue // the aggregator's own ids are plain numbers
			}
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				up := cannedUpstream(t, tc.list, tc.echoedID, mode == "sse")
				ups := []UpstreamSpec{up}
				if mode == "aggregated" {
					up.Prefix = "c"
					ups = []UpstreamSpec{up, httpUpstream(t, "u")}
				}
				_, base := newTestGateway(t, []ServerSpec{{Name: "s", Upstreams: ups,
					Auth: &AuthSpec{Resource: "http://x/mcp/s", MetadataURL: "http://x/m", Required: required}}},
					&Options{Verify: fakeVerify})
				url := base + "/mcp/s"
				sid := initSessionWithToken(t, url, "scopes:mcp:read")
				req := tc.request
				if req == "" {
					req = `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`
				}
				resp := rawPost(t, url, map[string]string{"Authorization": "Bearer scopes:mcp:read", "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}, req)
				body, _ := io.ReadAll(resp.Body)
				if bytes.Contains(body, []byte("admin_tool")) {
					t.Errorf("the client was shown a tool its token may not use: %s", body)
				}
			})
		}
	}
}
