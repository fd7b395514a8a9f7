// Package discovery publishes what clients fetch before anything else:
// RFC 8414 authorization server metadata (and the same document at the
// OpenID discovery path), RFC 9728 protected resource metadata for every
// protected MCP server, and the JWKS that verifies our tokens.
package discovery

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/mcpgate/mcpgate/internal/oauth"
)

// Options configures the documents.
type Options struct {
	Issuer    string
	Resources oauth.Resources
	// Paths maps each resource URI to its server's path (e.g. /mcp/x),
	// which names its path-suffixed metadata URL.
	Registration bool // whether /oauth/register is offered
	CIMD         bool // whether client ID metadata documents are accepted
	// JWKS returns the current public keys.
	JWKS func() jose.JSONWebKeySet
}

// Handler serves the discovery documents.
type Handler struct{ o Options }

// New returns a handler.
func New(o Options) *Handler { return &Handler{o: o} }

// Mount registers the routes.
//
// An issuer with a path (public_url https://host/gate behind a proxy that
// strips /gate) is also served where RFC 8414 §3.1 puts its metadata: the
// well-known segment between host and path
// (/.well-known/oauth-authorization-server/gate), and at the OpenID path
// with the issuer path appended (RFC 8414 §5), which the TypeScript SDK
// tries first; a proxy that forwards /.well-known/ unchanged reaches them.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", h.asMetadata)
	mux.HandleFunc("GET /.well-known/openid-configuration", h.asMetadata)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server/", h.asMetadataAtIssuerPath)
	mux.HandleFunc("GET /.well-known/openid-configuration/", h.asMetadataAtIssuerPath)
	mux.HandleFunc("GET /oauth/jwks", h.jwks)
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/", h.resourceMetadata)
	mux.HandleFunc("GET /.well-known/oauth-protected-resource", h.resourceMetadata)
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server/",
		"/.well-known/openid-configuration", "/.well-known/openid-configuration/", "/oauth/jwks",
		"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/"} {
		mux.HandleFunc("OPTIONS "+p, preflight)
	}
}

// corsHeaders lets browser-based clients (the MCP Inspector's web UI) read
// the public documents from any origin: they hold nothing secret and are
// never sent with credentials.
func corsHeaders(w http.ResponseWriter) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
}

// preflight answers a browser's CORS preflight for the documents. The
// TypeScript SDK sends MCP-Protocol-Version with its discovery requests,
// which is not a CORS-safelisted header, so a browser asks first; without
// an answer it fails and the SDK retries without the header. Only GET and
// that header are allowed, never credentials (Fetch standard, CORS protocol).
func preflight(w http.ResponseWriter, r *http.Request) {
	corsHeaders(w)
	w.Header().Set("Access-Control-Allow-Methods", "GET")
	w.Header().Set("Access-Control-Allow-Headers", "MCP-Protocol-Version")
	w.Header().Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// MetadataURL is the metadata URL of a resource, named in its 401
// challenges: the well-known segment inserted between the issuer and the
// server's path. For an issuer at its host's root that is the RFC 9728 §3.1
// URL; for one with a path (behind a proxy that strips it) it stays under
// that path, which such a proxy forwards — the §3.1 form is served too.
func MetadataURL(issuer, path string) string {
	return strings.TrimRight(issuer, "/") + "/.well-known/oauth-protected-resource" + path
}

func writeDoc(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	corsHeaders(w)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// GrantTypes are the grant types the token endpoint serves (RFC 8414 §2
// grant_types_supported), token exchange (RFC 8693 §2.1) included: which
// clients may use each is the token endpoint's business.
var GrantTypes = []string{"authorization_code", "refresh_token", "client_credentials",
	"urn:ietf:params:oauth:grant-type:token-exchange"}

// setList sets an optional list member only when it has entries: an
// empty optional member is left out, never published as null or [].
func setList(doc map[string]any, key string, l []string) {
	if len(l) > 0 {
		doc[key] = l
	}
}

// asMetadata is RFC 8414 §2 (also served at the OpenID path for clients
// that only look there).
func (h *Handler) asMetadata(w http.ResponseWriter, r *http.Request) {
	iss := h.o.Issuer
	var scopes []string
	seen := map[string]bool{}
	for _, res := range h.o.Resources {
		for _, s := range res.Scopes {
			if !seen[s] {
				seen[s] = true
				scopes = append(scopes, s)
			}
		}
	}
	sort.Strings(scopes)
	doc := map[string]any{
		"issuer":                                           iss,
		"authorization_endpoint":                           iss + "/oauth/authorize",
		"token_endpoint":                                   iss + "/oauth/token",
		"revocation_endpoint":                              iss + "/oauth/revoke",
		"introspection_endpoint":                           iss + "/oauth/introspect",
		"jwks_uri":                                         iss + "/oauth/jwks",
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query"},
		"grant_types_supported":                            GrantTypes,
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{"none", "client_secret_basic", "client_secret_post", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES256", "RS256", "PS256", "EdDSA"},
		"revocation_endpoint_auth_methods_supported":       []string{"none", "client_secret_basic", "client_secret_post", "private_key_jwt"},
		"introspection_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		"authorization_response_iss_parameter_supported":   true,
		// OpenID discovery fields, for clients that fetch that document.
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
	}
	if h.o.Registration {
		doc["registration_endpoint"] = iss + "/oauth/register"
	}
	if h.o.CIMD {
		doc["client_id_metadata_document_supported"] = true
	}
	setList(doc, "scopes_supported", scopes)
	writeDoc(w, doc)
}

// issuerPath is the path of the issuer without a trailing slash ("" for
// an issuer at the root of its host).
func (h *Handler) issuerPath() string {
	u, err := url.Parse(h.o.Issuer)
	if err != nil {
		return ""
	}
	return strings.TrimRight(u.EscapedPath(), "/")
}

// asMetadataAtIssuerPath serves the metadata at the path-inserted
// well-known URLs (RFC 8414 §3.1), for this issuer's path only.
func (h *Handler) asMetadataAtIssuerPath(w http.ResponseWriter, r *http.Request) {
	p := h.issuerPath()
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.EscapedPath(), "/.well-known/oauth-authorization-server"), "/.well-known/openid-configuration")
	if p == "" || rest != p {
		http.NotFound(w, r)
		return
	}
	h.asMetadata(w, r)
}

func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	corsHeaders(w)
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(h.o.JWKS())
}

// lookup finds the resource base+suffix, with or without a trailing slash.
func (h *Handler) lookup(base, suffix string) *oauth.Resource {
	if res := h.o.Resources[base+suffix]; res != nil {
		return res
	}
	return h.o.Resources[base+strings.TrimSuffix(suffix, "/")]
}

// resourceMetadata is RFC 9728 §3: one document per protected server at
// the path-suffixed URL; the bare URL answers only when a single server is
// protected (several servers sharing one document confuses clients).
func (h *Handler) resourceMetadata(w http.ResponseWriter, r *http.Request) {
	suffix := strings.TrimPrefix(r.URL.Path, "/.well-known/oauth-protected-resource")
	var res *oauth.Resource
	if suffix == "" || suffix == "/" {
		if len(h.o.Resources) == 1 {
			for _, only := range h.o.Resources {
				res = only
			}
		}
	} else {
		res = h.lookup(strings.TrimRight(h.o.Issuer, "/"), suffix)
		if res == nil && h.issuerPath() != "" {
			// RFC 9728 §3.1: the well-known segment goes between host and
			// path, so for an issuer with a path the suffix starts with it
			// (reached through a proxy that forwards /.well-known/ as is).
			res = h.lookup(strings.TrimSuffix(strings.TrimRight(h.o.Issuer, "/"), h.issuerPath()), suffix)
		}
	}
	if res == nil {
		http.NotFound(w, r)
		return
	}
	doc := map[string]any{
		"resource":                 res.URI,
		"authorization_servers":    []string{h.o.Issuer},
		"bearer_methods_supported": []string{"header"},
		"jwks_uri":                 h.o.Issuer + "/oauth/jwks",
	}
	if res.ServerName != "" {
		doc["resource_name"] = res.ServerName
	}
	setList(doc, "scopes_supported", res.Scopes)
	writeDoc(w, doc)
}
