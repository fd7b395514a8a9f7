package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mcpgate/mcpgate/internal/fixture"
)

// seenCall is what the server saw of one tools/call POST.
type seenCall struct {
	session, version, method, name string
	metaVersion                    string
}

// recordingFixture serves the fixture (both eras) and records every
// tools/call POST and every initialize.
func recordingFixture(t *testing.T) (*httptest.Server, func() ([]seenCall, int)) {
	t.Helper()
	h := fixture.NewStreamableHandler(fixture.NewServer(&fixture.Options{Name: "f"}), nil)
	var mu sync.Mutex
	var calls []seenCall
	inits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var m struct {
			Method string `json:"method"`
			Params struct {
				Meta map[string]json.RawMessage `json:"_meta"`
			} `json:"params"`
		}
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		switch m.Method {
		case "initialize":
			inits++
		case "tools/call":
			var mv string
			_ = json.Unmarshal(m.Params.Meta["io.modelcontextprotocol/protocolVersion"], &mv)
			calls = append(calls, seenCall{r.Header.Get("Mcp-Session-Id"), r.Header.Get("MCP-Protocol-Version"),
				r.Header.Get("Mcp-Method"), r.Header.Get("Mcp-Name"), mv})
		}
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() ([]seenCall, int) {
		mu.Lock()
		defer mu.Unlock()
		return append([]seenCall(nil), calls...), inits
	}
}

// TestEras: -era 2026-07-28 sends stateless calls (no session, no
// initialize; the version in the header and in params._meta; Mcp-Method
// and Mcp-Name), -era 2025-11-25 session calls; the summary names the
// protocol negotiated.
func TestEras(t *testing.T) {
	for _, era := range []string{era20251125, era20260728} {
		t.Run(era, func(t *testing.T) {
			srv, seen := recordingFixture(t)
			var stdout, stderr bytes.Buffer
			code := realMain(context.Background(), []string{"run", "-url", srv.URL + "/mcp", "-era", era, "-sessions", "2",
				"-requests", "10", "-duration", "0", "-warmup", "0"}, &stdout, &stderr)
			if code != exitOK {
				t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
			}
			if s := lastJSON(t, stdout.String()); s.Protocol != era || s.Errors != 0 {
				t.Errorf("summary protocol %q, errors %d; want %s, 0", s.Protocol, s.Errors, era)
			}
			calls, inits := seen()
			if len(calls) < 10 {
				t.Fatalf("the server saw %d calls", len(calls))
			}
			for _, c := range calls {
				stateless := c.session == "" && c.version == era20260728 && c.metaVersion == era20260728 && c.method == "tools/call" && c.name == "echo"
				if (era == era20260728) != stateless || (era == era20251125 && (c.session == "" || c.version != era20251125)) {
					t.Fatalf("call %+v in era %s", c, era)
				}
			}
			if wantInits := map[string]int{era20251125: 2, era20260728: 0}[era]; inits != wantInits {
				t.Errorf("%d initialize requests, want %d", inits, wantInits)
			}
		})
	}
}

// TestEraRefusedFallback: a target that cannot serve the pinned era fails
// the run at connect time instead of measuring the other era.
func TestEraRefusedFallback(t *testing.T) {
	var calls atomic.Int64
	inner := newTestServer(t, "", &calls)
	// A server of the session era only: server/discover is a method it
	// does not know, so the client falls back to initialize.
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"server/discover"`)) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"method not found"}}`)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		inner.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(old.Close)
	var stdout, stderr bytes.Buffer
	code := realMain(context.Background(), []string{"run", "-url", old.URL, "-era", era20260728, "-sessions", "1",
		"-requests", "1", "-duration", "0", "-warmup", "0"}, &stdout, &stderr)
	if code != exitFail || !strings.Contains(stderr.String(), `-era 2026-07-28: the target negotiated protocol "2025-11-25"`) {
		t.Fatalf("exit %d, want %d naming the era:\n%s%s", code, exitFail, stdout.String(), stderr.String())
	}
	if calls.Load() != 0 {
		t.Errorf("%d calls measured in the wrong era", calls.Load())
	}
}

func TestEraFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-era", "2024-11-05"}, "-era must be"},
		{[]string{"-era", era20260728, "-protocol", era20260728}, "exclude each other"},
		{[]string{"-era", era20260728, "-sse"}, "-sse needs a session"},
	} {
		_, err := parseRunArgs(append([]string{"-url", "http://127.0.0.1:9/mcp"}, tc.args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if c, err := parseRunArgs([]string{"-url", "http://127.0.0.1:9/mcp", "-era", era20251125, "-sse"}, io.Discard); err != nil || c.Era != era20251125 {
		t.Errorf("-era 2025-11-25 -sse: %v", err)
	}
}
