package mcpoauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Challenge is what a resource server's WWW-Authenticate said (RFC 6750
// §3, RFC 9728 §5.1).
type Challenge struct {
	ResourceMetadata string   // resource_metadata: where its metadata is
	Scope            []string // scope: what the request needs
	Error            string   // error: invalid_token, insufficient_scope...
}

// ParseChallenge reads the Bearer challenge of h's WWW-Authenticate
// headers; an unreadable header gives the zero Challenge (discovery then
// falls back to the well-known locations).
func ParseChallenge(h http.Header) Challenge {
	cs, err := oauthex.ParseWWWAuthenticate(h.Values("WWW-Authenticate"))
	if err != nil {
		return Challenge{}
	}
	var out Challenge
	for _, c := range cs {
		if c.Scheme != "bearer" {
			continue
		}
		if rm := c.Params["resource_metadata"]; len(rm) <= maxChallengeURL {
			out.ResourceMetadata = rm
		}
		for _, s := range strings.Fields(c.Params["scope"]) {
			if len(out.Scope) < maxChallengeScopes && validScope(s) && !slices.Contains(out.Scope, s) {
				out.Scope = append(out.Scope, s)
			}
		}
		if e := c.Params["error"]; validScope(e) {
			out.Error = e
		}
		break
	}
	return out
}

// Bounds of what an upstream's challenge may make mcpgate keep, ask for
// and show: its scopes end up in the vault (a step-up's), in the
// authorization request and in the tool error a model reads, and the
// challenge is remembered per user connection, so a hostile upstream's
// megabyte of header must not go there.
const (
	maxChallengeScopes = 32
	maxChallengeScope  = 128
	maxChallengeURL    = 2048
)

// validScope: a scope token (RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E)
// of at most maxChallengeScope bytes.
func validScope(s string) bool {
	if s == "" || len(s) > maxChallengeScope {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// Discovery is what mcpgate learnt about an upstream's authorization.
type Discovery struct {
	// Resource is the upstream's resource identifier, from its protected
	// resource metadata, checked against the upstream URL (RFC 9728 §3.3).
	Resource string
	// ResourceScopes is the metadata's scopes_supported (may be empty).
	ResourceScopes []string
	// AS is the authorization server's metadata; its issuer was checked
	// against the identifier the resource named (RFC 8414 §3.3).
	AS *oauthex.AuthServerMeta
}

// ErrDiscovery wraps every reason discovery fails.
var ErrDiscovery = errors.New("authorization discovery failed")

// Discover finds the upstream's authorization server: protected resource
// metadata from the challenge's resource_metadata, else at the path-aware
// and then the root well-known location (RFC 9728 §3.1, MCP 2025-11-25
// "Protected Resource Metadata Discovery Requirements"); then the first
// authorization server's metadata, trying RFC 8414 and OpenID Connect
// discovery with the path-insertion rules (MCP "Authorization Server
// Metadata Discovery"). upstream fetches from the upstream's own origin
// (operator-configured); guarded fetches anything else.
func Discover(ctx context.Context, upstreamURL string, ch Challenge, upstream, guarded *http.Client, allowHTTP bool) (*Discovery, error) {
	prm, err := resourceMetadata(ctx, upstreamURL, ch, upstream, guarded)
	if err != nil {
		return nil, err
	}
	issuer := prm.AuthorizationServers[0]
	if err := checkURL(issuer, allowHTTP); err != nil {
		return nil, fmt.Errorf("%w: authorization server %q: %v", ErrDiscovery, issuer, err)
	}
	asm, err := auth.GetAuthServerMetadata(ctx, issuer, guarded)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata of %s: %v", ErrDiscovery, issuer, err)
	}
	if asm == nil {
		return nil, fmt.Errorf("%w: %s publishes no authorization server metadata", ErrDiscovery, issuer)
	}
	// RFC 8414 §3.3: the issuer must be identical to the one the metadata
	// was looked up for (simple string comparison, no normalization).
	if asm.Issuer != issuer {
		return nil, fmt.Errorf("%w: metadata issuer %q is not %q", ErrDiscovery, asm.Issuer, issuer)
	}
	// MCP authorization "Authorization Code Protection": PKCE with S256,
	// and a server that does not say it supports S256 is not used (the
	// SDK only checks that some method is listed; "plain" protects
	// nothing against a stolen code).
	if !slices.Contains(asm.CodeChallengeMethodsSupported, "S256") {
		return nil, fmt.Errorf("%w: %s does not support PKCE with S256 (code_challenge_methods_supported: %v)", ErrDiscovery, issuer, asm.CodeChallengeMethodsSupported)
	}
	for _, u := range []string{asm.AuthorizationEndpoint, asm.TokenEndpoint} {
		if err := checkURL(u, allowHTTP); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrDiscovery, issuer, err)
		}
	}
	if asm.RegistrationEndpoint != "" && checkURL(asm.RegistrationEndpoint, allowHTTP) != nil {
		asm.RegistrationEndpoint = "" // unusable: behave as if not offered
	}
	return &Discovery{Resource: prm.Resource, ResourceScopes: prm.ScopesSupported, AS: asm}, nil
}

// resourceMetadata fetches and checks the protected resource metadata.
func resourceMetadata(ctx context.Context, upstreamURL string, ch Challenge, upstream, guarded *http.Client) (*oauthex.ProtectedResourceMetadata, error) {
	ru, err := url.Parse(upstreamURL)
	if err != nil || ru.Host == "" {
		return nil, fmt.Errorf("%w: upstream URL %q", ErrDiscovery, upstreamURL)
	}
	type candidate struct{ url, resource string }
	var tries []candidate
	if ch.ResourceMetadata != "" {
		tries = append(tries, candidate{ch.ResourceMetadata, upstreamURL})
	}
	pathBased := *ru
	pathBased.RawQuery, pathBased.Fragment = "", ""
	pathBased.Path = "/.well-known/oauth-protected-resource/" + strings.TrimLeft(ru.Path, "/")
	pathBased.RawPath = ""
	root := pathBased
	root.Path = "/.well-known/oauth-protected-resource"
	origin := url.URL{Scheme: ru.Scheme, Host: ru.Host}
	if strings.Trim(ru.Path, "/") != "" {
		tries = append(tries, candidate{pathBased.String(), upstreamURL})
	}
	// At the root, the metadata describes the origin (RFC 9728 §3.1).
	tries = append(tries, candidate{root.String(), origin.String()}, candidate{root.String(), upstreamURL})
	var last error
	for _, t := range tries {
		c := guarded
		if sameOrigin(t.url, ru) {
			c = upstream
		}
		prm, err := oauthex.GetProtectedResourceMetadata(ctx, t.url, t.resource, c)
		if err != nil {
			last = err
			continue
		}
		// Found: from here on the spec's rules apply; no further guessing.
		if len(prm.AuthorizationServers) == 0 {
			return nil, fmt.Errorf("%w: %s names no authorization server", ErrDiscovery, t.url)
		}
		return prm, nil
	}
	return nil, fmt.Errorf("%w: no usable protected resource metadata for %s: %v", ErrDiscovery, upstreamURL, last)
}

func sameOrigin(raw string, u *url.URL) bool {
	v, err := url.Parse(raw)
	return err == nil && strings.EqualFold(v.Scheme, u.Scheme) && strings.EqualFold(v.Host, u.Host)
}
