package discovery

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/internal/oauth"
)

func get(t *testing.T, h *Handler, path string) map[string]any {
	t.Helper()
	mux := http.NewServeMux()
	h.Mount(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d", path, rec.Code)
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// noEmpty fails for a member that is null, an empty list or an empty
// string: optional members are left out instead.
func noEmpty(t *testing.T, name string, doc map[string]any) {
	t.Helper()
	for k, v := range doc {
		switch v := v.(type) {
		case nil:
			t.Errorf("%s: %s is null", name, k)
		case []any:
			if len(v) == 0 {
				t.Errorf("%s: %s is an empty list", name, k)
			}
		case string:
			if v == "" {
				t.Errorf("%s: %s is empty", name, k)
			}
		}
	}
}

// TestMetadataDocuments (issue 8): the authorization server metadata lists
// the token-exchange grant the token endpoint serves, and no published
// document has null or empty optional members.
func TestMetadataDocuments(t *testing.T) {
	jwks := func() jose.JSONWebKeySet { return jose.JSONWebKeySet{} }
	unscoped := &oauth.Resource{URI: "https://as.example/mcp/x", ServerName: "x"}
	h := New(Options{Issuer: "https://as.example", Resources: oauth.Resources{unscoped.URI: unscoped}, JWKS: jwks})
	as := get(t, h, "/.well-known/oauth-authorization-server")
	noEmpty(t, "AS metadata", as)
	grants, _ := as["grant_types_supported"].([]any)
	if !slices.Contains(grants, any("urn:ietf:params:oauth:grant-type:token-exchange")) {
		t.Errorf("grant_types_supported = %v lacks token exchange", grants)
	}
	for _, k := range []string{"scopes_supported", "registration_endpoint", "client_id_metadata_document_supported"} {
		if _, ok := as[k]; ok {
			t.Errorf("%s published although empty or off: %v", k, as[k])
		}
	}
	prm := get(t, h, "/.well-known/oauth-protected-resource/mcp/x")
	noEmpty(t, "resource metadata", prm)
	if _, ok := prm["scopes_supported"]; ok {
		t.Errorf("scopes_supported published for a server without scopes: %v", prm["scopes_supported"])
	}

	scoped := &oauth.Resource{URI: "https://as.example/mcp/y", ServerName: "y", Scopes: []string{"b", "a"}}
	h = New(Options{Issuer: "https://as.example", Resources: oauth.Resources{scoped.URI: scoped}, Registration: true, CIMD: true, JWKS: jwks})
	as = get(t, h, "/.well-known/oauth-authorization-server")
	noEmpty(t, "AS metadata", as)
	if as["client_id_metadata_document_supported"] != true || as["registration_endpoint"] != "https://as.example/oauth/register" {
		t.Errorf("AS metadata: %v", as)
	}
	if s, _ := json.Marshal(as["scopes_supported"]); string(s) != `["a","b"]` {
		t.Errorf("scopes_supported = %s", s)
	}
}

// TestIssuerWithPath: with public_url https://as.example/gate (behind a
// proxy that strips /gate), the metadata is also where RFC 8414 §3.1 and
// RFC 9728 §3.1 put it — the well-known segment between host and path —
// which is where the TypeScript SDK looks first; nothing else answers.
func TestIssuerWithPath(t *testing.T) {
	jwks := func() jose.JSONWebKeySet { return jose.JSONWebKeySet{} }
	res := &oauth.Resource{URI: "https://as.example/gate/mcp/x", ServerName: "x", Scopes: []string{"a"}}
	withPath := New(Options{Issuer: "https://as.example/gate", Resources: oauth.Resources{res.URI: res}, JWKS: jwks})
	rootRes := &oauth.Resource{URI: "https://as.example/mcp/x", ServerName: "x"}
	atRoot := New(Options{Issuer: "https://as.example", Resources: oauth.Resources{rootRes.URI: rootRes}, JWKS: jwks})
	for _, tc := range []struct {
		h        *Handler
		path     string
		want     int
		resource string // for resource metadata
	}{
		{withPath, "/.well-known/oauth-authorization-server", 200, ""},
		{withPath, "/.well-known/oauth-authorization-server/gate", 200, ""},
		{withPath, "/.well-known/openid-configuration/gate", 200, ""},
		{withPath, "/.well-known/openid-configuration", 200, ""},
		{withPath, "/.well-known/oauth-authorization-server/other", 404, ""},
		{withPath, "/.well-known/oauth-authorization-server/gate/x", 404, ""},
		{withPath, "/.well-known/oauth-protected-resource/mcp/x", 200, res.URI},
		{withPath, "/.well-known/oauth-protected-resource/gate/mcp/x", 200, res.URI},
		{withPath, "/.well-known/oauth-protected-resource/gate/mcp/y", 404, ""},
		{withPath, "/.well-known/oauth-protected-resource/gate/gate/mcp/x", 404, ""},
		{atRoot, "/.well-known/oauth-authorization-server/gate", 404, ""},
		{atRoot, "/.well-known/oauth-protected-resource/mcp/x", 200, rootRes.URI},
	} {
		mux := http.NewServeMux()
		tc.h.Mount(mux)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if rec.Code != tc.want {
			t.Errorf("issuer %s: GET %s: %d, want %d", tc.h.o.Issuer, tc.path, rec.Code, tc.want)
			continue
		}
		if tc.want != 200 {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if tc.resource != "" && doc["resource"] != tc.resource {
			t.Errorf("GET %s: resource %v, want %s", tc.path, doc["resource"], tc.resource)
		}
		if tc.resource == "" && doc["issuer"] != tc.h.o.Issuer {
			t.Errorf("GET %s: issuer %v, want %s", tc.path, doc["issuer"], tc.h.o.Issuer)
		}
	}
}

// TestCORS: a browser-based client (the Inspector's web UI) may read every
// document from any origin, including the JWKS, and its preflight for the
// SDK's MCP-Protocol-Version header is answered (GET and that header only).
func TestCORS(t *testing.T) {
	jwks := func() jose.JSONWebKeySet { return jose.JSONWebKeySet{} }
	res := &oauth.Resource{URI: "https://as.example/mcp/x", ServerName: "x"}
	mux := http.NewServeMux()
	New(Options{Issuer: "https://as.example", Resources: oauth.Resources{res.URI: res}, JWKS: jwks}).Mount(mux)
	paths := []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration",
		"/.well-known/oauth-protected-resource/mcp/x", "/.well-known/oauth-protected-resource", "/oauth/jwks"}
	for _, p := range paths {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, p, nil)
		req.Header.Set("Origin", "http://localhost:6274")
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("GET %s: %d, Access-Control-Allow-Origin %q", p, rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
		rec = httptest.NewRecorder()
		req = httptest.NewRequest(http.MethodOptions, p, nil)
		req.Header.Set("Origin", "http://localhost:6274")
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "mcp-protocol-version")
		mux.ServeHTTP(rec, req)
		h := rec.Header()
		if rec.Code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" ||
			h.Get("Access-Control-Allow-Methods") != "GET" || h.Get("Access-Control-Allow-Headers") != "MCP-Protocol-Version" ||
			h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("OPTIONS %s: %d %v", p, rec.Code, h)
		}
	}
}
