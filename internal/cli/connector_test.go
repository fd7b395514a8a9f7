package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
)

func TestConnectorsStatus(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mcpgate.yaml")
	yaml := `store: {sqlite: "` + filepath.Join(dir, "db") + `"}
vault: {key_file: "` + filepath.Join(dir, "vault.key") + `"}
oauth: {clients: [{id: edge-client, jwks: '{"keys":[]}'}, {id: core-client, jwks: '{"keys":[]}'}]}
connectors: [{name: edge, client_id: edge-client}, {name: core, client_id: core-client}]
servers: [{name: m, upstream: {connector: edge, url: "http://10.0.0.5:9000/mcp"}}]
`
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := run(t, "", "migrate", "--config", cfgPath); code != 0 {
		t.Fatalf("migrate: %d %s", code, out)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	var cs store.ConnectorStatus = st
	now := time.Now()
	for _, r := range []store.ConnectorInstance{
		{Connector: "edge", Instance: "host-1", Version: "v9", ClientID: "edge-client", RemoteAddr: "192.0.2.7", Upstreams: []string{"metrics=10.0.0.5:9000"}, ConnectedAt: now.Add(-time.Hour), LastSeen: now},
		{Connector: "core", Instance: "gone-1", Version: "v8", ClientID: "core-client", ConnectedAt: now.Add(-time.Hour), LastSeen: now.Add(-time.Hour)},
	} {
		if err := cs.PutConnectorInstance(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	code, out := run(t, "", "connectors", "status", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("status: %d %s", code, out)
	}
	for _, want := range []string{"edge", "host-1", "v9", "metrics=10.0.0.5:9000", "192.0.2.7", "(stale)", "connector core: no live instance"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "connector edge: no live instance") {
		t.Errorf("edge has a live instance:\n%s", out)
	}
	code, out = run(t, "", "connectors", "status", "--config", cfgPath, "--json")
	if code != 0 || !strings.Contains(out, `"Instance": "host-1"`) || !strings.Contains(out, `"stale": true`) {
		t.Fatalf("json: %d %s", code, out)
	}
}

func TestConnectorCheckAndKeygen(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "c.pem")
	code, out := run(t, "", "connector", "keygen", "--key", key, "--kid", "k9")
	if code != 0 || !strings.Contains(out, `"kid":"k9"`) || !strings.Contains(out, `"crv":"P-256"`) || strings.Contains(out, `"d":`) {
		t.Fatalf("keygen: %d %s", code, out)
	}
	if code, _ := run(t, "", "connector", "keygen", "--key", key); code == 0 {
		t.Fatal("keygen overwrote an existing key")
	}
	cfg := filepath.Join(dir, "connector.yaml")
	yaml := "gateway: https://gw.example\nname: edge\nclient_id: c\nprivate_key_file: " + key + "\nupstreams: [{name: m, url: 'http://10.0.0.5:9000/mcp'}]\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := run(t, "", "connector", "--config", cfg, "--check"); code != 0 || !strings.Contains(out, "ok (connector edge, 1 upstreams)") {
		t.Fatalf("check: %d %s", code, out)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(yaml, key, filepath.Join(dir, "missing.pem"), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := run(t, "", "connector", "--config", cfg, "--check"); code != ExitInvalidConfig {
		t.Fatalf("check with a missing key: %d", code)
	}
}
