package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestParseRunArgs(t *testing.T) {
	const u = "http://127.0.0.1:9/mcp"
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" = valid
		check   func(t *testing.T, c runConfig)
	}{
		{name: "defaults", args: []string{"-url", u}, check: func(t *testing.T, c runConfig) {
			if c.Sessions != 32 || c.Duration != 10*time.Second || c.Requests != 0 || c.Tool != "echo" ||
				string(c.Args) != `{"text":"hi"}` || c.Warmup != time.Second || c.Timeout != 10*time.Second || c.SSE {
				t.Errorf("unexpected defaults: %+v", c)
			}
		}},
		{name: "all flags", args: []string{"-url", "http://localhost:1/x", "-sessions", "4", "-duration", "2s", "-requests", "100",
			"-tool", "t", "-args", `{"a":1}`, "-bearer", "tok", "-warmup", "0", "-timeout", "1s", "-protocol", "2025-11-25", "-sse"},
			check: func(t *testing.T, c runConfig) {
				if c.Sessions != 4 || c.Duration != 2*time.Second || c.Requests != 100 || c.Tool != "t" || c.Bearer != "tok" ||
					c.Warmup != 0 || c.Timeout != time.Second || c.Protocol != "2025-11-25" || !c.SSE {
					t.Errorf("flags not applied: %+v", c)
				}
			}},
		{name: "requests only", args: []string{"-url", u, "-duration", "0", "-requests", "10"}},
		{name: "ipv6 loopback", args: []string{"-url", "http://[::1]:8080/mcp"}},
		{name: "127/8", args: []string{"-url", "http://127.1.2.3:8080/mcp"}},
		{name: "LOCALHOST", args: []string{"-url", "https://LOCALHOST/mcp"}},
		{name: "duration at cap", args: []string{"-url", u, "-duration", "10m"}},

		{name: "missing url", args: nil, wantErr: "-url is required"},
		{name: "remote host", args: []string{"-url", "http://example.com/mcp"}, wantErr: "not loopback"},
		{name: "remote ip", args: []string{"-url", "http://10.0.0.1:80/mcp"}, wantErr: "not loopback"},
		{name: "all interfaces", args: []string{"-url", "http://0.0.0.0:80/mcp"}, wantErr: "not loopback"},
		{name: "localhost suffix", args: []string{"-url", "http://localhost.example.com/mcp"}, wantErr: "not loopback"},
		{name: "ipv6 non-loopback", args: []string{"-url", "http://[2001:db8::1]/mcp"}, wantErr: "not loopback"},
		{name: "bad scheme", args: []string{"-url", "ftp://127.0.0.1/mcp"}, wantErr: "scheme"},
		{name: "user info", args: []string{"-url", "http://u:p@127.0.0.1/mcp"}, wantErr: "user info"},
		{name: "neither bound", args: []string{"-url", u, "-duration", "0"}, wantErr: "unbounded"},
		{name: "duration over cap", args: []string{"-url", u, "-duration", "11m"}, wantErr: "exceeds the cap"},
		{name: "negative duration", args: []string{"-url", u, "-duration", "-1s"}, wantErr: "negative"},
		{name: "negative requests", args: []string{"-url", u, "-requests", "-1"}, wantErr: "negative"},
		{name: "zero sessions", args: []string{"-url", u, "-sessions", "0"}, wantErr: "-sessions"},
		{name: "zero timeout", args: []string{"-url", u, "-timeout", "0"}, wantErr: "-timeout"},
		{name: "long warmup", args: []string{"-url", u, "-warmup", "2m"}, wantErr: "-warmup"},
		{name: "args not object", args: []string{"-url", u, "-args", `[1]`}, wantErr: "JSON object"},
		{name: "args invalid", args: []string{"-url", u, "-args", `{`}, wantErr: "JSON object"},
		{name: "empty tool", args: []string{"-url", u, "-tool", ""}, wantErr: "-tool"},
		{name: "unknown flag", args: []string{"-url", u, "-nope"}, wantErr: "not defined"},
		{name: "positional", args: []string{"-url", u, "extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cfg, err := parseRunArgs(tt.args, &stderr)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, cfg)
				}
				return
			}
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error = %v, want a usage error containing %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no args", nil, exitUsage},
		{"unknown subcommand", []string{"bogus"}, exitUsage},
		{"help", []string{"help"}, exitOK},
		{"run help", []string{"run", "-h"}, exitOK},
		{"run remote", []string{"run", "-url", "http://192.0.2.1/mcp"}, exitUsage},
		{"run unbounded", []string{"run", "-url", "http://127.0.0.1:1/mcp", "-duration", "0"}, exitUsage},
		// Nothing listens on port 1: usage is fine, the run fails.
		{"run cannot connect", []string{"run", "-url", "http://127.0.0.1:1/mcp", "-sessions", "2", "-timeout", "2s"}, exitFail},
		{"proxy remote target", []string{"proxy", "-target", "http://example.com/mcp"}, exitUsage},
		{"proxy remote listen", []string{"proxy", "-listen", "0.0.0.0:0", "-target", "http://127.0.0.1:1/mcp"}, exitUsage},
		{"proxy missing target", []string{"proxy"}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := realMain(context.Background(), tt.args, &stdout, &stderr); got != tt.want {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", got, tt.want, stderr.String())
			}
		})
	}
}

// newTestServer serves a trivial MCP server with an "echo" tool and a "fail"
// tool (which always returns isError). If token is set, requests must carry
// it as a bearer token. calls counts tool calls.
func newTestServer(t *testing.T, token string, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	type echoIn struct {
		Text string `json:"text"`
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "mcpload-test", Version: "0"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "echo", Description: "echoes text"},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			calls.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "fail", Description: "always fails"},
		func(_ context.Context, _ *mcp.CallToolRequest, _ echoIn) (*mcp.CallToolResult, any, error) {
			calls.Add(1)
			return nil, nil, errors.New("deliberate failure")
		})
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	if token != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// lastJSON parses the last line of out as the run summary.
func lastJSON(t *testing.T, out string) summary {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var s summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("last line is not the JSON summary: %v\n%s", err, out)
	}
	// All documented keys are present.
	var m map[string]any
	_ = json.Unmarshal([]byte(lines[len(lines)-1]), &m)
	for _, k := range []string{"url", "sessions", "duration_s", "requests", "errors", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON summary lacks %q: %s", k, lines[len(lines)-1])
		}
	}
	return s
}

func TestRunEndToEnd(t *testing.T) {
	var calls atomic.Int64
	plain := newTestServer(t, "", &calls)
	authed := newTestServer(t, "s3cret", &calls)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantErrors bool
		wantExact  uint64 // exact request count, if non-zero
	}{
		{name: "duration bound", args: []string{"-url", plain.URL, "-sessions", "4", "-duration", "300ms", "-warmup", "50ms"}},
		{name: "request bound", args: []string{"-url", plain.URL, "-sessions", "3", "-duration", "0", "-requests", "50", "-warmup", "0"}, wantExact: 50},
		{name: "requests before duration", args: []string{"-url", plain.URL, "-sessions", "2", "-duration", "1m", "-requests", "20", "-warmup", "0"}, wantExact: 20},
		{name: "legacy protocol with sse", args: []string{"-url", plain.URL, "-sessions", "2", "-duration", "200ms", "-warmup", "0", "-protocol", "2025-11-25", "-sse"}},
		{name: "bearer", args: []string{"-url", authed.URL, "-sessions", "2", "-duration", "200ms", "-warmup", "0", "-bearer", "s3cret"}},
		{name: "wrong bearer", args: []string{"-url", authed.URL, "-sessions", "2", "-duration", "200ms", "-bearer", "nope"}, wantCode: exitFail},
		{name: "tool errors", args: []string{"-url", plain.URL, "-sessions", "2", "-requests", "10", "-warmup", "0", "-tool", "fail"}, wantCode: exitFail, wantErrors: true, wantExact: 10},
		{name: "unknown tool", args: []string{"-url", plain.URL, "-sessions", "1", "-requests", "5", "-warmup", "0", "-tool", "missing"}, wantCode: exitFail, wantErrors: true, wantExact: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := realMain(context.Background(), append([]string{"run"}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout.String(), stderr.String())
			}
			if tt.wantCode == exitFail && stdout.Len() == 0 {
				return // failed before measuring: no report
			}
			s := lastJSON(t, stdout.String())
			if s.Requests == 0 {
				t.Errorf("requests = 0\n%s", stdout.String())
			}
			if tt.wantExact != 0 && s.Requests != tt.wantExact {
				t.Errorf("requests = %d, want exactly %d", s.Requests, tt.wantExact)
			}
			if tt.wantErrors {
				if s.Errors != s.Requests {
					t.Errorf("errors = %d, want all %d", s.Errors, s.Requests)
				}
				return
			}
			if s.Errors != 0 {
				t.Errorf("errors = %d, want 0; stderr:\n%s", s.Errors, stderr.String())
			}
			if s.RPS <= 0 || s.P50ms <= 0 || s.P50ms > s.P99ms || s.P99ms > s.MaxMs || s.DurationS <= 0 {
				t.Errorf("implausible summary: %+v", s)
			}
			if !strings.Contains(stdout.String(), "throughput:") {
				t.Errorf("no human-readable report:\n%s", stdout.String())
			}
		})
	}
	if calls.Load() == 0 {
		t.Error("the server saw no calls")
	}
}

func TestToolErrorsVsTransportErrors(t *testing.T) {
	var calls atomic.Int64
	ts := newTestServer(t, "", &calls)
	cfg, err := parseRunArgs([]string{"-url", ts.URL, "-sessions", "1", "-requests", "4", "-warmup", "0", "-tool", "fail"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := runLoad(context.Background(), cfg, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ToolErrors != 4 || res.CallErrors != 0 {
		t.Errorf("tool errors = %d, call errors = %d; want 4, 0", res.ToolErrors, res.CallErrors)
	}
	if !strings.Contains(res.FirstError, "deliberate failure") {
		t.Errorf("first error = %q", res.FirstError)
	}

	cfg.Tool = "missing" // an unknown tool is a JSON-RPC error
	res, err = runLoad(context.Background(), cfg, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ToolErrors+res.CallErrors != 4 {
		t.Errorf("tool errors = %d, call errors = %d; want 4 in all", res.ToolErrors, res.CallErrors)
	}
}

func TestInterruptedRun(t *testing.T) {
	var calls atomic.Int64
	ts := newTestServer(t, "", &calls)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := realMain(ctx, []string{"run", "-url", ts.URL, "-sessions", "2", "-duration", "1m", "-warmup", "0"}, &stdout, &stderr)
	if code != exitFail {
		t.Errorf("exit code = %d, want %d", code, exitFail)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("interrupt took %v", time.Since(start))
	}
	if s := lastJSON(t, stdout.String()); s.Requests == 0 || s.Errors != 0 {
		t.Errorf("partial results: %+v", s)
	}
}
