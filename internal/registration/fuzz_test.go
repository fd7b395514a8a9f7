package registration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
)

var metadataSeeds = []string{
	`{"redirect_uris":["https://app.example/cb"]}`,
	`{"redirect_uris":["http://127.0.0.1:3000/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`,
	`{"redirect_uris":["https://app.example/cb"],"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"EC"}]}}`,
	`{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://app.example/jwks"}`,
	`{"redirect_uris":["https://app.example/%63b","myapp:/cb"],"scope":"a b","client_name":"x"}`,
	`{"redirect_uris":["javascript:alert(1)"],"Grant_Types":["client_credentials"]}`,
	`{"grant_types":["urn:ietf:params:oauth:grant-type:token-exchange"]}`,
	`{"redirect_uris":null,"response_types":["code"],"grant_types":[]}`,
	`[]`, `null`, `{`, `{"redirect_uris":["https://a/cb"]} {}`,
	`{"redirect_uris":["https://app.example/cb"],"grant_types":["client_credentials"],"grant_types":["authorization_code"]}`,
	`{"redirect_uris":["https://app.example/cb"],"grant_types":["authorization_code"],"grant_types":["client_credentials"]}`,
	`{"redirect_uris":["https://app.example/cb"],"Grant_Types":["client_credentials"],"Token_Endpoint_Auth_Method":"none"}`,
}

// checkAccepted is the property shared by both fuzz targets: an accepted
// client has only the grant types a client nobody registered may have
// (authorization_code, refresh_token), no keys unless it authenticates
// with private_key_jwt, and redirect URIs that parse as absolute URIs.
func checkAccepted(t *testing.T, c store.Client) {
	t.Helper()
	for _, g := range c.GrantTypes {
		if g != grantAuthorizationCode && g != grantRefreshToken {
			t.Fatalf("accepted grant type %q", g)
		}
	}
	if c.TokenEndpointAuthMethod != authPrivateKeyJWT && (len(c.JWKS) > 0 || c.JWKSURI != "") {
		t.Fatalf("accepted keys with %s", c.TokenEndpointAuthMethod)
	}
	for _, u := range c.RedirectURIs {
		p, err := url.Parse(u)
		if err != nil || !p.IsAbs() || strings.ContainsAny(u, "#\\ ") {
			t.Fatalf("accepted redirect URI %q", u)
		}
	}
}

// FuzzRegister feeds arbitrary bodies to the registration endpoint.
// Property: it never panics and answers 201 or a 4xx OAuth error; what it
// accepts passes checkAccepted and round-trips through the store (the
// stored metadata, validated again, gives the same client).
func FuzzRegister(f *testing.F) {
	for _, s := range metadataSeeds {
		f.Add(s)
	}
	// The real (embedded) store, so the round trip covers its encoding.
	s, err := sqlite.Open(f.Context(), ":memory:")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	h, err := New(s, &Options{Policy: PolicyOpen, PerAddressPerMinute: 1 << 20, GlobalPerMinute: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	f.Fuzz(func(t *testing.T, body string) {
		rec, out := register(t, mux, body, map[string]string{"Content-Type": "application/json"})
		if rec.Code != http.StatusCreated {
			if rec.Code < 400 || rec.Code >= 500 || out["error"] == nil {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			return
		}
		id, _ := out["client_id"].(string)
		c, err := s.GetClient(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		checkAccepted(t, c)
		fields, err := decodeObject(c.Metadata)
		if err != nil {
			t.Fatalf("stored metadata does not parse: %v", err)
		}
		md, oerr := parseMetadata(fields, h.rules())
		if oerr != nil {
			t.Fatalf("stored metadata no longer validates: %v", oerr)
		}
		if !slices.Equal(md.redirectURIs, c.RedirectURIs) || !slices.Equal(md.grantTypes, c.GrantTypes) ||
			md.authMethod != c.TokenEndpointAuthMethod || md.scope != c.Scope {
			t.Fatalf("round trip: %+v vs %+v", md, c)
		}
	})
}

// FuzzMetadataDocument feeds arbitrary documents to the metadata document
// validation. Property: it never panics; what it accepts is a
// store.ClientMetadata client for exactly that URL that passes
// checkAccepted, lists redirect URIs, and validates again from its stored
// metadata.
func FuzzMetadataDocument(f *testing.F) {
	const id = "https://app.example/client.json"
	for _, s := range metadataSeeds {
		f.Add(s)
		if strings.HasPrefix(s, "{") && len(s) > 2 {
			f.Add(`{"client_id":"` + id + `",` + s[1:])
		}
	}
	r, err := NewResolver(&ResolverOptions{Allowlist: Allowlist{patterns: []pattern{{raw: "loopback", loopback: true}, {raw: "https://app.example/cb", uri: mustParse("https://app.example/cb")}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		c, err := r.parseDocument(id, []byte(doc))
		if err != nil {
			if _, ok := err.(*ResolveError); !ok {
				t.Fatalf("error %T is not a *ResolveError", err)
			}
			return
		}
		if c.ID != id || c.Kind != store.ClientMetadata || len(c.RedirectURIs) == 0 || c.SecretHash != "" {
			t.Fatalf("accepted %+v", c)
		}
		checkAccepted(t, c)
		var again map[string]json.RawMessage
		if json.Unmarshal(c.Metadata, &again) != nil {
			t.Fatal("stored metadata is not a JSON object")
		}
		if _, err := r.parseDocument(id, c.Metadata); err != nil {
			t.Fatalf("stored metadata no longer validates: %v", err)
		}
	})
}

func mustParse(s string) parsedURI {
	p, err := parseURI(s, true)
	if err != nil {
		panic(err)
	}
	return p
}
