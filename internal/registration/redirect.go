package registration

import "strings"

// MatchRedirectURI picks the redirect URI of an authorization request
// (OAuth 2.1 §4.1.1) against the client's registered ones. got must equal
// a registered URI by simple string comparison (OAuth 2.1 §2.3.1, RFC 9700
// §4.1.3: no normalisation, so "/%63b" is not "/cb"), with one exception:
// for an http loopback redirect URI the port may differ (RFC 8252 §7.3: a
// native app picks its port at request time). Loopback here is 127.0.0.1,
// [::1] and — because mcpgate already admits it at registration, see
// isLoopbackHost — localhost; the host itself must match as registered.
// An empty got is the sole registered URI, if there is exactly one
// (RFC 6749 §3.1.2.3).
func MatchRedirectURI(registered []string, got string) (string, bool) {
	if got == "" {
		if len(registered) == 1 {
			return registered[0], true
		}
		return "", false
	}
	for _, r := range registered {
		if r == got {
			return got, true
		}
	}
	gHost, gRest, ok := splitLoopback(got)
	if !ok {
		return "", false
	}
	for _, r := range registered {
		if rHost, rRest, ok := splitLoopback(r); ok && rHost == gHost && rRest == gRest {
			return got, true
		}
	}
	return "", false
}

// splitLoopback splits an http loopback URI into its host (as written)
// and everything after the port; ok is false for anything else, including
// a URI with userinfo, a fragment, or a port that is not 1–5 digits.
func splitLoopback(uri string) (host, rest string, ok bool) {
	after, found := strings.CutPrefix(uri, "http://")
	if !found || strings.ContainsAny(uri, "#\\") {
		return "", "", false
	}
	end := strings.IndexAny(after, "/?")
	if end < 0 {
		end = len(after)
	}
	authority, rest := after[:end], after[end:]
	host, port := authority, ""
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.HasSuffix(authority, "]") {
		host, port = authority[:i], authority[i+1:]
		if len(port) == 0 || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return "", "", false
		}
	}
	switch host {
	case "127.0.0.1", "[::1]", "localhost":
		return host, rest, true
	}
	return "", "", false
}
