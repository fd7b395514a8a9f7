package app

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// TestUpgradeDropsCopiedConfigRows: a database from a version that copied
// the config's users and clients into the store: at start the copies are
// deleted (the config layer serves what is still declared), and the ones
// no longer declared are cut off — tokens issued to them before the start
// are refused.
func TestUpgradeDropsCopiedConfigRows(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "mcpgate.db")
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []store.User{
		{ID: "alice", Username: "alice", Email: "stale@example.com", Source: "config"},
		{ID: "carol", Username: "carol", Email: "carol@example.com", Source: "config"}, // removed from the config
		{ID: "sso-1", Email: "sam@example.com", Source: "acme"},
	} {
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateClient(ctx, store.Client{ID: "old-agent", Kind: store.ClientStatic, SecretHash: "x"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	before := time.Now().Add(-time.Minute)
	as := startAppEnv(t, oauthConfig, map[string]string{"DB": db})

	if u, err := as.app.store.GetUser(ctx, "alice"); err != nil || u.Email != "alice@example.com" {
		t.Errorf("alice comes from the config: %+v %v", u, err)
	}
	for _, id := range []string{"carol"} {
		if _, err := as.app.store.GetUser(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("removed user %s still found: %v", id, err)
		}
	}
	if _, err := as.app.store.GetClient(ctx, "old-agent"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removed client still found: %v", err)
	}
	if u, err := as.app.store.GetUser(ctx, "sso-1"); err != nil || u.Email != "sam@example.com" {
		t.Errorf("a stored user is kept: %+v %v", u, err)
	}
	issuer := tokens.NewIssuer(as.app.auth.keys.Signing, as.base, nil)
	resource := as.base + "/mcp/demo"
	for _, tc := range []struct {
		sub, client string
		want        int
	}{
		{"carol", "some-client", 401},   // a user the config no longer declares
		{"old-agent", "old-agent", 401}, // a client the config no longer declares
		{"bob", "some-client", 200},     // still declared
	} {
		tok, err := issuer.Mint(tokens.Claims{Subject: tc.sub, ClientID: tc.client, Audience: resource, IssuedAt: before, ExpiresAt: before.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if got := callMCP(t, resource, tok); got != tc.want {
			t.Errorf("token of %s/%s issued before the start: %d, want %d", tc.sub, tc.client, got, tc.want)
		}
	}
}

// TestReloadDeclared: a config reload that drops a user cuts them off at
// once, without a restart (the hook a SIGHUP reload calls).
func TestReloadDeclared(t *testing.T) {
	ctx := context.Background()
	as := startApp(t, oauthConfig)
	resource := as.base + "/mcp/demo"
	issuer := tokens.NewIssuer(as.app.auth.keys.Signing, as.base, nil)
	tok, err := issuer.Mint(tokens.Claims{Subject: "bob", ClientID: "some-client", Audience: resource})
	if err != nil {
		t.Fatal(err)
	}
	if got := callMCP(t, resource, tok); got != 200 {
		t.Fatalf("bob before the reload: %d", got)
	}
	next := *as.app.cfg
	next.Users = nil
	for _, u := range as.app.cfg.Users {
		if u.Username != "bob" {
			next.Users = append(next.Users, u)
		}
	}
	if err := as.app.auth.reloadDeclared(ctx, &next, as.app.auth.store.Store, as.app.log); err != nil {
		t.Fatal(err)
	}
	if got := callMCP(t, resource, tok); got != 401 {
		t.Errorf("bob's token after the reload dropped him: %d, want 401", got)
	}
	if _, err := as.app.store.GetUser(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("bob after the reload: %v", err)
	}
	if _, err := as.app.store.GetUser(ctx, "alice"); err != nil {
		t.Errorf("alice after the reload: %v", err)
	}
}
