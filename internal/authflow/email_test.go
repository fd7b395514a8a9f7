package authflow

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/idp/oidc"
	"github.com/mcpgate/mcpgate/internal/testidp"
)

// TestIdPSpeaksForItsOwnDomainsOnly: a tenant's IdP that asserts an
// e-mail address in a domain another tenant owns (its admin made a user
// "ceo@tenant-b.example") got a user record with that address: shown as
// the signed-in person, matched by policies on user.email, found by the
// CLI's e-mail lookup. The address is dropped; the sign-in goes on.
func TestIdPSpeaksForItsOwnDomainsOnly(t *testing.T) {
	e := newFlowEnv(t)
	if err := e.idp.AddUser(testidp.User{Username: "mallory", Password: "mallory-password", Email: "ceo@tenant-b.example"}); err != nil {
		t.Fatal(err)
	}
	realms, err := oidc.NewRealms([]oidc.RealmConfig{
		{Domains: []string{"tenant-a.example"}, Provider: "tenant-a"},
		{Domains: []string{"tenant-b.example"}, Provider: "tenant-b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.h.o.Federation.Realms = realms
	b := e.browser()
	back, err := e.idp.Login(context.Background(), b, e.toIdP(b, e.authorizeURL("a", "read")), "mallory", "mallory-password")
	if err != nil {
		t.Fatal(err)
	}
	a := e.do(b, http.MethodGet, back.String(), nil)
	if a.status != http.StatusOK || !strings.Contains(a.body, `action="/oauth/consent"`) {
		t.Fatalf("callback: %d %s", a.status, a.body)
	}
	if strings.Contains(a.body, "ceo@tenant-b.example") {
		t.Error("the consent page names mallory by another tenant's address")
	}
	users, err := e.st.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Email == "ceo@tenant-b.example" {
			t.Errorf("user %s (tenant %q) was stored with another tenant's address", u.ID, u.Tenant)
		}
	}
}
