package mcpoauth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// MetadataPath is where mcpgate serves its own client ID metadata
// document, under its public URL.
const MetadataPath = "/oauth/upstream-client.json"

// MetadataURL is the document's URL for publicURL, or "" when it cannot
// be a client ID: the draft requires an https URL with a path
// (draft-ietf-oauth-client-id-metadata-document §3), so a development
// gateway on plain http falls back to the other ways of registering.
func MetadataURL(publicURL string) string {
	u, err := url.Parse(strings.TrimRight(publicURL, "/") + MetadataPath)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return ""
	}
	return u.String()
}

// ClientMetadata is mcpgate's client ID metadata document: a public
// client (it proves itself with PKCE and its fixed redirect URI, not a
// secret) that wants refresh tokens.
func ClientMetadata(clientID, redirectURI, name string) []byte {
	doc, _ := json.Marshal(map[string]any{
		"client_id":                  clientID,
		"client_name":                name,
		"redirect_uris":              []string{redirectURI},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": AuthNone,
		"application_type":           "web",
	})
	return doc
}

// MetadataHandler serves the document (cacheable: it changes only with
// the configuration).
func MetadataHandler(clientID, redirectURI, name string) http.Handler {
	doc := ClientMetadata(clientID, redirectURI, name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(doc)
	})
}
