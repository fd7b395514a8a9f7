package authflow

import (
	"net/url"
	"strings"
)

// DefaultReturn is where a sign-in for mcpgate's own pages goes when the
// requested return path is missing or not safe.
const DefaultReturn = "/connections"

// LocalReturn returns ret when a browser would resolve it, against
// mcpgate's own origin, to a URL on that same origin; else DefaultReturn.
//
// It decides as a browser parses (WHATWG URL), not as a server does:
// browsers drop tabs and newlines anywhere in a URL and strip leading and
// trailing control characters and spaces, read `\` as `/` in http(s)
// URLs, and take "//host" (so also "/\thost" and "/\host") as another
// host. Rather than imitate each rule, anything a browser would rewrite
// is refused: only printable ASCII without spaces or backslashes, a single
// leading slash, no scheme and no host. What is returned is re-encoded
// from the parse (dot segments resolved), and checked again.
func LocalReturn(ret string) string {
	if out, ok := localReturn(ret); ok {
		return out
	}
	return DefaultReturn
}

// returnBase stands in for mcpgate's origin: only the path is kept, so
// any origin would do; what matters is that the result stays on it.
var returnBase = &url.URL{Scheme: "https", Host: "mcpgate.invalid", Path: "/"}

func localReturn(ret string) (string, bool) {
	if !isLocalPath(ret) {
		return "", false
	}
	u, err := url.Parse(ret)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil {
		return "", false
	}
	abs := returnBase.ResolveReference(u)
	if abs.Scheme != returnBase.Scheme || abs.Host != returnBase.Host {
		return "", false
	}
	out := abs.EscapedPath()
	if abs.RawQuery != "" {
		out += "?" + abs.RawQuery
	}
	if abs.Fragment != "" {
		out += "#" + abs.EscapedFragment()
	}
	if !isLocalPath(out) {
		return "", false
	}
	return out, true
}

// isLocalPath: one leading slash, then printable ASCII with no space and
// no backslash, and not a second slash (a network-path reference).
func isLocalPath(s string) bool {
	if len(s) == 0 || len(s) > 2048 || s[0] != '/' || strings.HasPrefix(s, "//") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
