package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
	"github.com/mcpgate/mcpgate/internal/vault"
)

// run invokes the command line with stdin.
func run(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	old := os.Stdin
	r, w, _ := os.Pipe()
	_, _ = w.WriteString(stdin)
	w.Close()
	os.Stdin = r
	defer func() { os.Stdin = old }()
	code := Main(args, &out, &out)
	return code, out.String()
}

func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mcpgate.yaml")
	yaml := `store: {sqlite: "` + filepath.Join(dir, "db") + `"}
vault: {key_file: "` + filepath.Join(dir, "vault.key") + `"}
tenants:
  - {name: tenant-a, domains: [tenant-a.example], groups: {Schedulers: {permissions: [scheduler]}}}
policies:
  - {name: scheduler write, when: '"tenant-a" in user.tenantIds && "scheduler" in user.permissions', allow: [{servers: [calendar], scopes: [mcp:calendar.write, mcp:calendar.readonly]}]}
  - {name: everyone else, when: "true", allow: [{servers: [calendar], scopes: [mcp:calendar.readonly]}]}
connections:
  - {name: api, authorize_url: "http://127.0.0.1:1/a", token_url: "http://127.0.0.1:1/t", client_id: x}
  - {name: legacy, kind: api_key}
servers:
  - {name: calendar, scopes: [mcp:calendar.readonly, mcp:calendar.write], upstream: {url: "http://127.0.0.1:1/mcp"}}
`
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"migrate", "", []string{"migrate", "--config", cfgPath}, ExitOK, "up to date"},
		{"user add", "correct horse battery\n", []string{"user", "add", "--config", cfgPath, "--username", "bob", "--email", "bob@tenant-a.example", "--tenant", "tenant-a"}, ExitOK, "user bob saved"},
		{"short password", "short\n", []string{"user", "add", "--config", cfgPath, "--username", "eve", "--email", "eve@example.com"}, ExitInvalidConfig, "at least 8"},
		{"hash", "correct horse battery\n", []string{"user", "hash-password"}, ExitOK, "$2a$"},
		{"policy: bob can't write", "", []string{"policy", "test", "--config", cfgPath, "--user", `{"sub":"bob","tenant":"tenant-a"}`, "--client", "claude", "--server", "calendar"}, ExitOK, "DENIED   mcp:calendar.write"},
		{"policy: a scheduler can", "", []string{"policy", "test", "--config", cfgPath, "--user", `{"sub":"sam","tenant":"tenant-a","groups":["Schedulers"]}`, "--client", "claude", "--server", "calendar"}, ExitOK, "GRANTED  mcp:calendar.write"},
		{"keys rotate", "", []string{"keys", "rotate", "--config", cfgPath}, ExitOK, "new signing key"},
		{"grant revoke", "", []string{"grant", "revoke", "--config", cfgPath, "--user", "bob"}, ExitOK, "revoked 0"},
		{"user disable", "", []string{"user", "disable", "--config", cfgPath, "--user", "bob"}, ExitOK, "disabled"},
		{"secret put", "Bearer legacy-key\n", []string{"secret", "put", "--config", cfgPath, "--name", "legacy", "--tenant", "tenant-a"}, ExitOK, "stored for tenant"},
		{"secret put: not an api_key connection", "x\n", []string{"secret", "put", "--config", cfgPath, "--name", "api"}, ExitInvalidConfig, "kind api_key"},
	}
	for _, s := range steps {
		code, out := run(t, s.stdin, s.args...)
		if code != s.code || !strings.Contains(out, s.want) {
			t.Fatalf("%s: exit %d, output:\n%s\nwant exit %d and %q", s.name, code, out, s.code, s.want)
		}
	}
	// A connection sealed with the first vault key survives rotation.
	ctx := context.Background()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := vault.LoadKey(cfg.Vault.KeyFile, "") // created by secret put
	if err != nil {
		t.Fatal(err)
	}
	v, _ := vault.New(key)
	if err := v.Check(ctx, st); err != nil {
		t.Fatal(err)
	}
	rec := store.Connection{UserID: "bob", Name: "api"}
	if err := v.SealConnection(&rec, []byte(`{"access_token":"tok"}`)); err != nil {
		t.Fatal(err)
	}
	if err := st.PutConnection(ctx, rec); err != nil {
		t.Fatal(err)
	}
	st.Close()
	newKey := filepath.Join(dir, "vault2.key")
	code, out := run(t, "", "keys", "rotate-vault", "--config", cfgPath, "--new-key-file", newKey)
	if code != ExitOK || !strings.Contains(out, "re-encrypted 2 connection") {
		t.Fatalf("rotate-vault: %d %s", code, out)
	}
	// The signing keys and the session key moved to the new vault key too,
	// so the old key file can go.
	k2, err := vault.LoadKey(newKey, "")
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := vault.New(k2)
	st, err = sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	sks, _ := st.ListSigningKeys(ctx)
	for _, k := range sks {
		if !v2.SealedWithCurrent(k.Private) {
			t.Errorf("signing key %s not sealed with the new vault key", k.ID)
		}
	}
	if _, err := v2.Secret(ctx, st, "session", 32); err != nil {
		t.Errorf("session key does not open with the new vault key alone: %v", err)
	}
	st.Close()
	code, out = run(t, "", "user", "delete", "--config", cfgPath, "--user", "bob")
	if code != ExitOK || !strings.Contains(out, "1 connection(s) deleted") {
		t.Fatalf("user delete: %d %s", code, out)
	}
}
