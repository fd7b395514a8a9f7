package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(removeCLIAfter{m}) }

// TestGracefulShutdown: a call in flight when shutdown starts completes;
// the server then stops and new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	ms := fixture.NewServer(nil)
	up := httptest.NewServer(fixture.NewStreamableHandler(ms, nil))
	defer func() {
		up.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	}()
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\nstore: {sqlite: %q}\nservers:\n  - name: s\n    auth: none\n    upstream: {url: %q}\n", t.TempDir()+"/db", up.URL+"/mcp")
	cfg, err := config.Parse([]byte(yaml), "test.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()

	eps := a.Endpoints()
	if len(eps) != 1 || !strings.HasSuffix(eps[0], "/mcp/s") {
		t.Fatalf("endpoints = %v", eps)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).
		Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: eps[0], DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"ms": 700}})
		if err == nil && res.IsError {
			err = fmt.Errorf("tool error")
		}
		done <- err
	}()
	time.Sleep(200 * time.Millisecond) // the call is in flight
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("in-flight call during shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight call did not finish")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	cs.Close()
	if c, err := net.DialTimeout("tcp", a.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("still accepting connections after shutdown")
	}
}
