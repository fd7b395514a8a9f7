package app

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store/sqlite"
)

// stop ends a test app now (its cleanup still runs).
func (s *testAS) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	err := <-s.done
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	s.done <- nil // for the cleanup
}

// TestSignInSurvivesRestart: without session_key, the key behind the
// sign-in cookie is generated once and kept in the store (sealed), so a
// browser signed in before a restart is still signed in after it (audit
// finding 13).
func TestSignInSurvivesRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mcpgate.db")
	env := map[string]string{"DB": db}
	first := startAppEnv(t, oauthConfig, env)
	clientID := register(t, first.base)
	_, challenge := pkce()
	b := newBrowser(t, "alice", "alice-password")
	if loc := b.authorize(authURL(first.base, clientID, challenge, first.base+"/mcp/demo", "mcp:read")); loc.Query().Get("code") == "" {
		t.Fatalf("first sign-in: %s", loc)
	}
	first.stop(t)

	second := startAppEnv(t, oauthConfig, env)
	// The client and the consent live in the store; the sign-in lives in
	// the browser's cookie, sealed with the session key.
	resp, err := b.client.Get(authURL(second.base, clientID, challenge, second.base+"/mcp/demo", "mcp:read"))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(page), `action="/oauth/login"`) {
		t.Fatalf("after a restart the browser must sign in again: the session key changed")
	}
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther && !strings.Contains(string(page), `action="/oauth/consent"`) {
		t.Fatalf("after restart: %d %s %s", resp.StatusCode, loc, page)
	}
}

// TestSigningKeysSealedInStore: the token-signing private key is not
// stored as a clear JWK (audit finding 11).
func TestSigningKeysSealedInStore(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mcpgate.db")
	as := startAppEnv(t, oauthConfig, map[string]string{"DB": db})
	as.stop(t)
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := st.ListSigningKeys(context.Background())
	if err != nil || len(keys) == 0 {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
	for _, k := range keys {
		if strings.HasPrefix(string(k.Private), "{") || strings.Contains(string(k.Private), `"d":`) {
			t.Errorf("signing key %s is stored in the clear", k.ID)
		}
	}
}
