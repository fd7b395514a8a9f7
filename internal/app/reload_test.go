package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// reloadApp runs mcpgate from a config file it returns, so a test can
// rewrite the file and reload.
func reloadApp(t *testing.T, servers string) (*testAS, string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "mcpgate.yaml")
	as := startAppEnv(t, "listen: 127.0.0.1:0\nstore: {sqlite: \"${DB}\"}\n"+servers, map[string]string{"DB": filepath.Join(dir, "db")})
	// The file a reload reads: the same config, with the values filled in.
	env := map[string]string{"DB": filepath.Join(dir, "db"), "UP": upstreamOf(as)}
	return as, path, env
}

// upstreamOf is the fixture upstream URL the test app forwards to.
func upstreamOf(as *testAS) string {
	for _, s := range as.app.current().cfg.Servers {
		if s.Upstream != nil && s.Upstream.URL != "" {
			return s.Upstream.URL
		}
	}
	return ""
}

func writeConfig(t *testing.T, path, yaml string, env map[string]string) {
	t.Helper()
	for k, v := range env {
		yaml = strings.ReplaceAll(yaml, "${"+k+"}", v)
	}
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// initStatus posts an initialize to an MCP endpoint and returns the status.
func initStatus(t *testing.T, url string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReload: SIGHUP's reload swaps in a changed valid config (a new
// server appears, a call in flight on the old one completes) and refuses
// an invalid one, which leaves the old config serving (audit finding 14).
func TestReload(t *testing.T) {
	const one = "servers:\n  - {name: open, auth: none, upstream: {url: \"${UP}\"}}\n"
	as, path, env := reloadApp(t, one)
	base := as.base
	if initStatus(t, base+"/mcp/extra") != http.StatusNotFound {
		t.Fatal("setup: /mcp/extra exists before the reload")
	}

	// A slow call in flight on the old config.
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).
		Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: base + "/mcp/open", DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	done := make(chan error, 1)
	go func() {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"ms": 500}})
		if err == nil && res.IsError {
			err = fmt.Errorf("tool error")
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)

	writeConfig(t, path, "listen: 127.0.0.1:0\nstore: {sqlite: \"${DB}\"}\n"+one+
		"  - {name: extra, auth: none, upstream: {url: \"${UP}\"}}\n", env)
	if err := as.app.ReloadFile(context.Background(), path); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := initStatus(t, base+"/mcp/extra"); got != http.StatusOK {
		t.Errorf("new server after reload: %d, want 200", got)
	}
	if got := initStatus(t, base+"/mcp/open"); got != http.StatusOK {
		t.Errorf("old server after reload: %d, want 200", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("call in flight during the reload: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("call in flight during the reload did not finish")
	}
	// The session that started before the reload goes on (passthrough
	// sessions travel sealed with the kept session key).
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}}); err != nil {
		t.Errorf("session begun before the reload: %v", err)
	}

	// An invalid file: refused, one log line, the running config stays.
	writeConfig(t, path, "listen: 127.0.0.1:0\nstore: {sqlite: \"${DB}\"}\nservers:\n  - {name: broken, no_such_key: 1}\n", env)
	if err := as.app.ReloadFile(context.Background(), path); err == nil {
		t.Fatal("an invalid config was accepted")
	}
	if got := initStatus(t, base+"/mcp/extra"); got != http.StatusOK {
		t.Errorf("after a refused reload: %d, want the previous config serving", got)
	}
	if n := strings.Count(as.logs.String(), "config reload refused"); n != 1 {
		t.Errorf("%d log lines about the refused reload, want 1:\n%s", n, as.logs)
	}

	// A config that passes validation but cannot be built (here an
	// upstream URL the gateway refuses, set behind the validator's back):
	// refused, the running config stays.
	bad, err := config.Parse([]byte("servers: [{name: other, auth: none, upstream: {url: \"http://127.0.0.1:1/mcp\"}}]\n"), "bad.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	bad.Servers[0].Upstream.URL = "ftp://127.0.0.1/mcp"
	if err := as.app.Reload(context.Background(), bad); err == nil {
		t.Error("a config that does not build was accepted")
	}
	if got := initStatus(t, base+"/mcp/extra"); got != http.StatusOK {
		t.Errorf("after a failed reload: %d, want the previous config serving", got)
	}
}

// TestReloadKeepsProcessSettings: what needs a restart keeps its running
// value, and the log says so.
func TestReloadKeepsProcessSettings(t *testing.T) {
	const one = "servers:\n  - {name: open, auth: none, upstream: {url: \"${UP}\"}}\n"
	as, path, env := reloadApp(t, one)
	other := filepath.Join(t.TempDir(), "other.db")
	writeConfig(t, path, "listen: 127.0.0.1:0\nstore: {sqlite: \""+other+"\"}\n"+one, env)
	if err := as.app.ReloadFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	if cfg := as.app.current().cfg; cfg.Store.SQLite == other {
		t.Error("a reload switched the store")
	}
	if !strings.Contains(as.logs.String(), "need a restart") || !strings.Contains(as.logs.String(), "store") {
		t.Errorf("no warning about the store change:\n%s", as.logs)
	}
}
