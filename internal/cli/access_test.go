package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
)

// TestUserCommandsFindUsers: user and grant commands find a user by id,
// username or e-mail (SSO users have no username), including users the
// config declares; they write through the access state, so a disabled
// config user stays disabled; a declared user cannot be deleted or
// replaced here.
func TestUserCommandsFindUsers(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	cfgPath := filepath.Join(dir, "mcpgate.yaml")
	yaml := `store: {sqlite: "` + db + `"}
users:
  - {username: alice, email: alice@example.com, password_hash: "$2a$04$abcdefghijklmnopqrstuuJ5nnuNTC2nzlXbKXjF8j.MkkfUUN3aK"}
servers:
  - {name: demo, upstream: {url: "http://127.0.0.1:1/mcp"}}
`
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []store.User{
		{ID: "oidc|123", Email: "Sam@Acme.example", Source: "acme"},
		{ID: "oidc|456", Email: "shared@acme.example", Source: "acme"},
		{ID: "oidc|789", Email: "shared@acme.example", Source: "acme"},
	} {
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	for _, s := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"disable an SSO user by e-mail, any case", []string{"user", "disable", "--user", "sam@acme.example"}, ExitOK, "user oidc|123 disabled"},
		{"disable a config user by e-mail", []string{"user", "disable", "--user", "alice@example.com"}, ExitOK, "user alice disabled"},
		{"revoke by id", []string{"grant", "revoke", "--user", "oidc|123"}, ExitOK, "of oidc|123"},
		{"revoke by username", []string{"grant", "revoke", "--user", "alice"}, ExitOK, "of alice"},
		{"ambiguous e-mail", []string{"user", "disable", "--user", "shared@acme.example"}, ExitFailure, "oidc|456, oidc|789"},
		{"nobody", []string{"grant", "revoke", "--user", "nobody@example.com"}, ExitFailure, "no such user"},
		{"delete a config user", []string{"user", "delete", "--user", "alice"}, ExitFailure, "declared in the config"},
		{"replace a config user", []string{"user", "add", "--username", "alice", "--email", "a@example.com"}, ExitFailure, "read-only"},
		{"enable the SSO user", []string{"user", "enable", "--user", "oidc|123"}, ExitOK, "enabled"},
		{"delete an SSO user by e-mail", []string{"user", "delete", "--user", "shared@acme.example"}, ExitFailure, "name one by id"},
	} {
		args := append(append([]string{}, s.args[:2]...), append([]string{"--config", cfgPath}, s.args[2:]...)...)
		stdin := ""
		if s.args[1] == "add" {
			stdin = "correct horse battery\n"
		}
		code, out := run(t, stdin, args...)
		if code != s.code || !strings.Contains(out, s.want) {
			t.Errorf("%s: exit %d, output:\n%s\nwant exit %d and %q", s.name, code, out, s.code, s.want)
		}
	}
	// What the commands did is in the access state every replica reads.
	st, err = sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ac := access.New(st, nil)
	if err := ac.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if !ac.Disabled("alice") || ac.Disabled("oidc|123") {
		t.Errorf("disabled: alice %v (want true), oidc|123 %v (want false: enabled again)", ac.Disabled("alice"), ac.Disabled("oidc|123"))
	}
	revs, err := st.ListGrantRevocations(ctx, time.Time{})
	if err != nil || len(revs) != 2 {
		t.Errorf("grant revocations: %+v %v", revs, err)
	}
}
