package oauth

import (
	"net/url"
	"strings"
)

// Lookup returns the resource a resource indicator names (RFC 8707 §2),
// or nil. The URI as published (Resource.URI, the "resource" of the
// server's RFC 9728 metadata) always matches; so does a spelling that
// differs only in ways that cannot name anything else (see resourceKey):
// clients that build the URI with a URL library (ChatGPT, anything using
// the WHATWG URL serialiser) add "/" to an empty path or write the host
// in another case. Whatever was sent, the caller uses the returned
// Resource's URI (the canonical one) as the token's audience.
func (rs Resources) Lookup(uri string) *Resource {
	if r := rs[uri]; r != nil {
		return r
	}
	key, ok := resourceKey(uri)
	if !ok {
		return nil
	}
	for _, r := range rs {
		if k, ok := resourceKey(r.URI); ok && k == key {
			return r
		}
	}
	return nil
}

// SameResource reports whether a and b name the same resource as Lookup
// reads them (for checks that must agree with it, such as the config's
// refusal of upstream audiences that are servers of this gateway).
func SameResource(a, b string) bool {
	if a == b {
		return a != ""
	}
	ka, oka := resourceKey(a)
	kb, okb := resourceKey(b)
	return oka && okb && ka == kb
}

// maxResourceLen bounds a resource indicator we try to normalise.
const maxResourceLen = 2048

// resourceKey is uri with the differences that do not change which
// server it names removed:
//   - scheme and host case (RFC 3986 §6.2.2.1: they are case-insensitive);
//   - the scheme's default port (RFC 3986 §6.2.3);
//   - one trailing "/" of the path. RFC 3986 §6.2.3 makes "" and "/"
//     equivalent; for a longer path "/mcp/a/" and "/mcp/a" are different
//     URIs in general, but mcpgate's config refuses two servers whose paths
//     differ only by a trailing slash (config: "path … is already used"),
//     so here the slashed spelling can only mean the one server, and
//     refusing it would only break clients that echo the URL their user
//     typed.
//
// Anything else stays significant: path case, percent-encoding, and a
// query or fragment (RFC 8707 §2: the indicator must not have a fragment
// and should not have a query; no server of ours has one) make the URI
// name nothing. ok is false for what is not an absolute http(s) URI.
func resourceKey(uri string) (string, bool) {
	if len(uri) > maxResourceLen || strings.ContainsAny(uri, "#?\\ \t\r\n") {
		return "", false
	}
	u, err := url.Parse(uri)
	if err != nil || u.Opaque != "" || u.User != nil || u.Hostname() == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && !(scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		host += ":" + port
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	return scheme + "://" + host + path, true
}
