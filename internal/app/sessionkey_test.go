package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store/sqlite"
)

// TestSessionKeySealedInStore: the generated session key is kept in the
// store sealed, not in the clear, and a restart reads the same one.
func TestSessionKeySealedInStore(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mcpgate.db")
	first := startAppEnv(t, oauthConfig, map[string]string{"DB": db})
	key := first.app.current().cfg.SessionKey
	first.stop(t)
	second := startAppEnv(t, oauthConfig, map[string]string{"DB": db})
	if got := second.app.current().cfg.SessionKey; got != key || key == "" {
		t.Errorf("session key after restart differs (or is empty)")
	}
	second.stop(t)
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	row, err := st.GetSealedSecret(context.Background(), sessionSecretName)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(row.Value), key) {
		t.Error("the session key is stored in the clear")
	}
}

// TestConfiguredSessionKeyWins: a configured session_key is used as is.
func TestConfiguredSessionKeyWins(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef-configured"
	as := startApp(t, oauthConfig+"session_key: "+key+"\n")
	if as.app.current().cfg.SessionKey != key {
		t.Errorf("session key %q, want the configured one", as.app.current().cfg.SessionKey)
	}
}
