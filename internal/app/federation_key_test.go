package app

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/grants"
	"github.com/mcpgate/mcpgate/internal/idp/oidc"
	"github.com/mcpgate/mcpgate/internal/seal"
	"github.com/mcpgate/mcpgate/internal/store"
)

// TestUnreadableProviderTokenIsNotBlamedOnTheIdP: when the stored
// provider refresh token no longer opens (the session key changed), the
// user must sign in again, and the log says the key changed, not that the
// identity provider refused (audit finding 13).
func TestUnreadableProviderTokenIsNotBlamedOnTheIdP(t *testing.T) {
	before, _ := seal.New([]byte("an old session key, long enough......"), "identity provider refresh token")
	now, _ := seal.New([]byte("the new session key, long enough......"), "identity provider refresh token")
	sealed, err := before.Seal("refresh-token", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	f := &federation{providers: map[string]*oidc.Provider{"acme": {}}, box: now, log: slog.New(slog.NewTextHandler(&logs, nil))}
	_, err = f.refreshUser(context.Background(), store.User{ID: "u1", Source: "acme", UpstreamToken: sealed})
	if !errors.Is(err, grants.ErrUserRefused) {
		t.Fatalf("err = %v, want ErrUserRefused (sign in again)", err)
	}
	if !strings.Contains(err.Error(), "session key changed") || !strings.Contains(logs.String(), "session key changed") ||
		!strings.Contains(logs.String(), "provider was not asked") {
		t.Errorf("the cause is not named: err %q, log %q", err, logs.String())
	}
}
