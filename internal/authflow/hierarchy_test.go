package authflow

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/store"
)

func bqHierarchy(t *testing.T) *policy.Hierarchy {
	t.Helper()
	h, err := policy.NewHierarchy("h", map[string][]string{"bq": {"bq.read.*", "bq.write.*"}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestConsentCoversHierarchy: a remembered broad scope covers the narrow
// scopes it includes, on its own server only.
func TestConsentCoversHierarchy(t *testing.T) {
	const a, b = "https://gw.example/mcp/a", "https://gw.example/mcp/b"
	h := bqHierarchy(t)
	c := store.Consent{Resources: []string{a, b}, Scopes: []string{a + " bq", b + " other"}}
	for _, tc := range []struct {
		name     string
		resource string
		scopes   []string
		want     bool
	}{
		{"narrow under the broad scope", a, []string{"bq.read.tables", "bq"}, true},
		{"not under it", a, []string{"bqx"}, false},
		{"the broad scope was allowed on another server", b, []string{"bq.read.tables"}, false},
	} {
		if got := consentCovers(c, tc.resource, tc.scopes, h); got != tc.want {
			t.Errorf("%s: consentCovers = %v, want %v", tc.name, got, tc.want)
		}
	}
	legacy := store.Consent{Resources: []string{a}, Scopes: []string{"bq"}}
	if !consentCovers(legacy, a, []string{"bq.write.rows"}, h) {
		t.Error("a legacy single-server consent to the broad scope covers the narrow ones")
	}
}

// TestConsentPageHierarchy: the consent page asks for each permission
// once (the broad scope, saying what it includes), and after it a client
// stepping up for a narrow scope the broad one covers is not asked again.
func TestConsentPageHierarchy(t *testing.T) {
	e := newFlowEnv(t)
	e.h.o.Resources[e.base+"/mcp/h"] = &oauth.Resource{URI: e.base + "/mcp/h", ServerName: "h", Scopes: []string{"bq", "other"}, Hierarchy: bqHierarchy(t)}
	b := e.browser()
	login := e.do(b, http.MethodGet, e.authorizeURL("h", "bq.read.tables bq"), nil)
	a := e.signInBob(b, login.body)
	if a.status != http.StatusOK || !strings.Contains(a.body, `action="/oauth/consent"`) {
		t.Fatalf("consent page: %d %s", a.status, a.body)
	}
	if !strings.Contains(a.body, "(bq; includes bq.read.*, bq.write.*)") {
		t.Errorf("the broad scope does not say what it includes:\n%s", a.body)
	}
	if strings.Contains(a.body, "(bq.read.tables)") {
		t.Errorf("a narrow scope the broad one covers is asked for again:\n%s", a.body)
	}
	f := hiddenFields(a.body)
	f.Set("decision", "allow")
	if a := e.do(b, http.MethodPost, e.base+"/oauth/consent", f); a.status != http.StatusSeeOther || !strings.Contains(a.location, "code=") {
		t.Fatalf("allow: %d %q", a.status, a.location)
	}
	// Step-up for a narrow scope: no page, straight back with a code.
	if a := e.do(b, http.MethodGet, e.authorizeURL("h", "bq.write.rows"), nil); a.status != http.StatusSeeOther || !strings.Contains(a.location, "code=") {
		t.Errorf("step-up for a covered scope asked again: %d %q", a.status, a.location)
	}
	// A scope outside the broad one is asked for; what was allowed before
	// is said, not asked again.
	a = e.do(b, http.MethodGet, e.authorizeURL("h", "other bq.write.rows"), nil)
	if a.status != http.StatusOK || !strings.Contains(a.body, `action="/oauth/consent"`) {
		t.Fatalf("a scope not covered: %d %q", a.status, a.location)
	}
	asked, already, _ := strings.Cut(a.body, "You already allowed it to:")
	if !strings.Contains(asked, "(other)") || strings.Contains(asked, "(bq.write.rows)") || !strings.Contains(already, "(bq.write.rows)") {
		t.Errorf("step-up page should ask for other only and say bq.write.rows was allowed:\n%s", a.body)
	}
}
