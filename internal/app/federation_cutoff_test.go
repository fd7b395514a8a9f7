package app

import (
	"context"
	"net/url"
	"testing"

	"github.com/mcpgate/mcpgate/internal/testidp"
)

// TestDisabledSSOUserGetsNoCode: a user an admin disabled in mcpgate, who
// signs in again through their company's IdP (which still knows them),
// gets no authorization code, not even with the consent remembered, and
// is not left signed in. The token endpoint refused such a code, but the
// callback signed the browser in and sent a fresh code to the client.
func TestDisabledSSOUserGetsNoCode(t *testing.T) {
	idp, idpSrv, err := testidp.NewHTTPTest([]testidp.User{
		{Username: "sam", Password: "sam-password", Email: "sam@tenant-a.example", Groups: []string{"Schedulers"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer idpSrv.Close()
	calURL, _ := startCalendar(t)
	as := startAppEnv(t, federatedConfig, map[string]string{"IDP": idp.Issuer(), "CALENDAR": calURL})
	if err := idp.AddClient(testidp.Client{ID: "mcpgate", Secret: "idp-client-secret-0123", RedirectURIs: []string{as.base + "/oauth/callback/tenant-a"}}); err != nil {
		t.Fatal(err)
	}
	resource := as.base + "/mcp/calendar"
	clientID := register(t, as.base)
	_, challenge := pkce()
	authz := authURL(as.base, clientID, challenge, resource, "mcp:calendar.readonly")
	if loc := fedAuthorize(t, idp, newBrowser(t, "", ""), authz, "sam@tenant-a.example", "sam-password"); loc.Query().Get("code") == "" {
		t.Fatalf("sam's first sign-in: %s", loc)
	}
	users, err := as.app.store.ListUsers(context.Background())
	if err != nil || len(users) != 1 {
		t.Fatalf("users after sam's sign-in: %v %v", users, err)
	}
	if err := as.app.current().auth.access.DisableUser(context.Background(), users[0].ID); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, "", "")
	loc := fedAuthorizeEnd(t, idp, b, authz, "sam@tenant-a.example", "sam-password")
	if loc != nil && loc.Query().Get("code") != "" {
		t.Errorf("disabled sam got a code through the IdP: %s", loc)
	}
	if b2 := silentCode(t, b, authz); b2 != "" {
		t.Errorf("disabled sam's browser is signed in: %s", b2)
	}
}

// fedAuthorizeEnd is fedAuthorize up to where our callback answers: the
// redirect it sends (nil for a page).
func fedAuthorizeEnd(t *testing.T, idp *testidp.Server, b *browser, authURL, email, password string) *url.URL {
	t.Helper()
	back := fedToCallback(t, idp, b, authURL, email, password)
	resp, err := b.client.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "" {
		u, _ := url.Parse(loc)
		return u
	}
	return nil
}
