package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSignInSessionCutOff: a cut-off ends the browser sign-ins made
// before it too. access.DisableUser promises that enabling a user again
// "does not revive what was cut", yet the sealed sign-in cookie of a
// browser signed in before the disable (a stolen laptop, the reason for
// the disable) was still accepted after the enable: with the consent
// remembered, /oauth/authorize issued a fresh code without anybody
// typing a password. The same holds for a user-wide grant revocation.
func TestSignInSessionCutOff(t *testing.T) {
	r := newCutoffRig(t)
	cfg := r.writeConfig()
	_, challenge := pkce()
	authz := authURL(r.as.base, r.clientID, challenge, r.as.base+"/mcp/demo", "")
	old := newBrowser(t, "alice", "alice-password")
	if loc := old.authorize(authz); loc.Query().Get("code") == "" {
		t.Fatalf("first sign-in: %s", loc)
	}
	// The consent is remembered: the signed-in browser gets a code at once.
	if loc := silentCode(t, old, authz); loc == "" {
		t.Fatal("a signed-in browser with remembered consent got no code (the probe below would prove nothing)")
	}
	mcpgateCLI(t, "user", "disable", "--config", cfg, "--user", "alice")
	mcpgateCLI(t, "user", "enable", "--config", cfg, "--user", "alice")
	time.Sleep(3 * 200 * time.Millisecond) // revocation_refresh: the gateway reads the enable
	if loc := silentCode(t, old, authz); loc != "" {
		t.Errorf("the browser signed in before the disable got a code after the enable: %s", loc)
	}
	// Alice herself signs in again and gets on with it.
	fresh := newBrowser(t, "alice", "alice-password")
	if loc := fresh.authorize(authz); loc.Query().Get("code") == "" {
		t.Errorf("sign-in after the enable: %s", loc)
	}
}

// silentCode requests authz in b and returns the redirect it answers with
// when that carries a code without any page shown, else "".
func silentCode(t *testing.T, b *browser, authz string) string {
	t.Helper()
	resp, err := b.client.Get(authz)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if (resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther) && strings.Contains(loc, "code=") {
		return loc
	}
	return ""
}
