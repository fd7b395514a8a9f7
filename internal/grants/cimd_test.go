package grants

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/registration"
	"github.com/mcpgate/mcpgate/internal/safefetch"
	"github.com/mcpgate/mcpgate/internal/store"
)

// TestMetadataDocumentClientGetsNoMachineToken (issue 8, finding 2): the
// audit's probe end to end — a client known only by its metadata document
// (served here on loopback, with the test's explicit allowance) declares
// client_credentials with its own jwks and asks for a machine token. The
// document is refused, so the client is unknown (invalid_client); a
// document without the grant resolves, but client_credentials is still
// refused (unauthorized_client).
func TestMetadataDocumentClientGetsNoMachineToken(t *testing.T) {
	key := newClientKey(t)
	var jwks any
	_ = json.Unmarshal(key.jwks, &jwks)
	var base string
	docs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		grantTypes := []string{"authorization_code"}
		if r.URL.Path == "/machine.json" {
			grantTypes = append(grantTypes, "client_credentials")
		}
		doc, _ := json.Marshal(map[string]any{"client_id": base + r.URL.Path, "client_name": "robot",
			"redirect_uris": []string{"http://127.0.0.1/cb"}, "grant_types": grantTypes,
			"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(docs.Close)
	base = docs.URL
	f, err := safefetch.New(&safefetch.Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		TLSConfig: docs.Client().Transport.(*http.Transport).TLSClientConfig})
	if err != nil {
		t.Fatal(err)
	}
	allow, err := registration.ParseAllowlist([]string{"loopback"})
	if err != nil {
		t.Fatal(err)
	}
	resolver, err := registration.NewResolver(&registration.ResolverOptions{Fetcher: f, Allowlist: allow})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil, func(o *Options) { o.Clients = resolverClients{resolver} })
	ask := func(id string) (int, map[string]any) {
		return e.post(t, "/oauth/token", assertionForm(key.assertion(t, goodClaims(id, time.Now())),
			url.Values{"grant_type": {"client_credentials"}, "resource": {testResource}}), "", "")
	}
	if code, out := ask(base + "/machine.json"); code != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Errorf("document declaring client_credentials: %d %v", code, out)
	}
	if code, out := ask(base + "/app.json"); code != http.StatusBadRequest || out["error"] != "unauthorized_client" {
		t.Errorf("metadata-document client asking for client_credentials: %d %v", code, out)
	}
}

// resolverClients is oauth.Clients over a metadata document resolver.
type resolverClients struct{ r *registration.Resolver }

func (c resolverClients) Client(ctx context.Context, id string) (store.Client, error) {
	return c.r.Resolve(ctx, id)
}
