package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestStepUpMemory: the second refusal for the same token lineage is told
// apart from the first — a token issued after the challenge that still
// lacks the scope means re-authorizing did not help.
func TestStepUpMemory(t *testing.T) {
	now := time.Unix(10_000, 500_000_000)
	m := newStepUpMemory(func() time.Time { return now })
	tok := func(jti string, iat int64, sub, client string) *tokens.Claims {
		return &tokens.Claims{ID: jti, IssuedAt: time.Unix(iat, 0), Subject: sub, ClientID: client, Audience: "http://x/mcp/a"}
	}
	first := tok("t1", 9_000, "alice", "c")
	m.challenged(first, []string{"mcp:a", "mcp:b"})
	for _, tc := range []struct {
		name   string
		tok    *tokens.Claims
		scopes []string
		after  time.Duration
		want   []string
	}{
		{"same token again: challenge again", first, []string{"mcp:a"}, 0, nil},
		{"new token, same second as the challenge", tok("t2", 10_000, "alice", "c"), []string{"mcp:a"}, 0, []string{"mcp:a"}},
		{"new token after the challenge", tok("t2", 10_060, "alice", "c"), []string{"mcp:b", "mcp:c"}, time.Minute, []string{"mcp:b"}},
		{"older token of the same lineage (another session)", tok("t0", 8_000, "alice", "c"), []string{"mcp:a"}, 0, nil},
		{"another client", tok("t3", 10_060, "alice", "other"), []string{"mcp:a"}, time.Minute, nil},
		{"another user", tok("t3", 10_060, "bob", "c"), []string{"mcp:a"}, time.Minute, nil},
		{"the challenge is forgotten after the TTL", tok("t4", 11_000, "alice", "c"), []string{"mcp:a"}, stepUpTTL + time.Second, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now = time.Unix(10_000, 500_000_000).Add(tc.after)
			if got := m.stillLacking(tc.tok, tc.scopes); !slices.Equal(got, tc.want) {
				t.Fatalf("stillLacking = %v, want %v", got, tc.want)
			}
		})
	}
	// Bounded: many lineages never grow it past stepUpMax.
	now = time.Unix(20_000, 0)
	for i := range stepUpMax + 50 {
		m.challenged(tok("x", 1, fmt.Sprint("u", i), "c"), []string{"mcp:a"})
	}
	if len(m.m) > stepUpMax {
		t.Fatalf("%d entries, bound %d", len(m.m), stepUpMax)
	}
}

// TestScopeHierarchyAndAdvice through a real client: a broad scope reaches
// the narrow tools (call and list); a scope the advisor says cannot be
// granted is answered as a tool error, not a 403, so the client never
// re-authorizes; one that can be granted is challenged with every scope of
// the operation.
func TestScopeHierarchyAndAdvice(t *testing.T) {
	required := func(kind, name string) string {
		switch name {
		case "echo":
			return "mcp:bq.read.echo"
		case "whoami":
			return "mcp:admin"
		}
		return "mcp:bq.write"
	}
	covers := func(held, need string) bool {
		return held == need || held == "mcp:bq" && strings.HasPrefix(need, "mcp:bq.")
	}
	var asked [][]string
	advise := func(_ context.Context, server string, who *tokens.Claims, scopes []string) ScopeAdvice {
		asked = append(asked, scopes)
		if slices.Contains(scopes, "mcp:admin") {
			return ScopeAdvice{Unobtainable: []string{"mcp:admin"}, Why: map[string]string{"mcp:admin": "only the admins group gets it"}}
		}
		return ScopeAdvice{}
	}
	up, calls := countingUpstream(t, "a")
	_, base := newTestGateway(t, []ServerSpec{{Name: "bq", Upstreams: []UpstreamSpec{up},
		Auth: &AuthSpec{Resource: "http://x/mcp/bq", MetadataURL: "http://x/m", Scopes: []string{"mcp:bq"}, Required: required, Covers: covers}}},
		&Options{Verify: fakeVerify, Advise: advise})
	url := base + "/mcp/bq"

	broad := connectWithToken(t, url, "scopes:mcp:bq")
	res, err := broad.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	if !slices.Contains(names, "echo") || !slices.Contains(names, "test_simple_text") || slices.Contains(names, "whoami") {
		t.Errorf("the broad scope lists %v", names)
	}
	if got := toolText(t, callTool(t, broad, "echo", map[string]any{"text": "ok"})); got != "ok" {
		t.Errorf("narrow tool through the broad scope: %q", got)
	}

	before := calls.Load()
	r, err := broad.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil {
		t.Fatalf("a scope that cannot be granted must be answered, not refused: %v", err)
	}
	if !r.IsError || !strings.Contains(toolText(t, r), "mcp:admin") || !strings.Contains(toolText(t, r), "only the admins group") {
		t.Errorf("answer: %+v", r)
	}
	if calls.Load() != before {
		t.Error("the upstream saw the refused call")
	}
	// The model retries: the same answer, from the advisor's cached word.
	asks := len(asked)
	if r, err := broad.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}}); err != nil || !r.IsError {
		t.Errorf("retry: %v %+v", err, r)
	}
	if len(asked) != asks {
		t.Errorf("a retry within %v asked the advisor again", adviceTTL)
	}

	// Step-up can help: one 403 naming every scope the batch needs.
	body := `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}},` +
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"test_simple_text","arguments":{}}}]`
	resp := postJSON(t, url, "scopes:mcp:bq.read.echo", body)
	wa := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != 403 || !strings.Contains(wa, `scope="mcp:bq.read.echo mcp:bq.write"`) {
		t.Errorf("batch challenge: %d %q", resp.StatusCode, wa)
	}
	if last := asked[len(asked)-1]; !slices.Equal(last, []string{"mcp:bq.write"}) {
		t.Errorf("the advisor was asked about %v, want only the missing scope", last)
	}
}

// postJSON posts body to url with a bearer token, outside any session
// (the scope check comes before the session lookup).
func postJSON(t *testing.T, url, token, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", "whatever")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// FuzzScopeShortfall checks the scope check of a whole POST.
//
// Property: for any body the gateway's parse accepts, check finds nothing
// exactly when the token covers every scope every message needs; otherwise
// it names every scope the POST needs (the challenge's scope parameter),
// marks refused exactly the messages that need a scope the token lacks, and
// the answer in words answers every request once.
func FuzzScopeShortfall(f *testing.F) {
	for _, s := range scopeSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"alpha"}},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"beta"}},{"jsonrpc":"2.0","method":"tools/call","params":{"name":"gamma"}}]`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a/../b"}}`))
	required := func(kind, name string) string {
		if name == "" || strings.HasPrefix(name, "e") {
			return ""
		}
		return "mcp:" + kind + "." + name[:1]
	}
	covers := func(held, need string) bool {
		return held == need || held == "mcp:tool" && strings.HasPrefix(need, "mcp:tool.")
	}
	principal := &tokens.Claims{Scope: "mcp:tool mcp:resource.f"}
	auth := &AuthSpec{MetadataURL: "http://x/m", Required: required, Covers: covers}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, batch, err := mcpwire.Parse(bytes.Clone(body))
		if err != nil {
			return
		}
		fr := &frontRequest{body: body, msgs: msgs, batch: batch}
		filter := newScopeFilter(auth, principal)
		sf := filter.check(fr)
		lacking := make([]bool, len(msgs))
		lacks := false
		for i, tg := range fr.callTargets() {
			if tg.kind == "" {
				continue
			}
			filter.needs(tg.kind, tg.name, func(s string) {
				if !filter.has(s) {
					lacking[i], lacks = true, true
				}
			})
		}
		if (sf == nil) != !lacks {
			t.Fatalf("check found %v, but a message lacks a scope: %v", sf, lacks)
		}
		if sf == nil {
			return
		}
		refused := 0
		for i := range msgs {
			if sf.refused[i] != lacking[i] {
				t.Fatalf("message %d refused %v, lacks a scope %v", i, sf.refused[i], lacking[i])
			}
			if sf.refused[i] {
				refused++
			}
		}
		if refused != len(sf.phrases) {
			t.Fatalf("%d refused messages, %d phrases", refused, len(sf.phrases))
		}
		for _, m := range sf.missing {
			if !slices.Contains(sf.need, m) || filter.has(m) {
				t.Fatalf("missing %q: not among the needed %v, or held", m, sf.need)
			}
		}
		e := insufficientScopes(nil, auth, sf)
		if !strings.Contains(e.Header.Get("WWW-Authenticate"), `scope="`+strings.Join(sf.need, " ")+`"`) {
			t.Fatalf("challenge %q does not name %v", e.Header.Get("WWW-Authenticate"), sf.need)
		}
		words := scopeDenied(fr, sf, "s", " why")
		requests := 0
		for _, m := range msgs {
			if m.IsRequest() {
				requests++
			}
		}
		if requests > 0 && len(words.Answers) != requests || requests == 0 && words.Status != http.StatusForbidden {
			t.Fatalf("%d requests, %d answers (status %d)", requests, len(words.Answers), words.Status)
		}
	})
}
