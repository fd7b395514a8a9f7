package registration

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// LoopbackPattern is the allowlist keyword admitting the loopback redirect
// URIs of native apps: http://127.0.0.1, http://[::1] and http://localhost,
// with any port, path and query (RFC 8252 §7.3: the authorization server
// MUST allow any port for loopback redirects, since the app picks an
// ephemeral one at request time).
const LoopbackPattern = "loopback"

// maxURILen bounds every redirect URI and pattern.
const maxURILen = 2048

// Allowlist is a parsed set of redirect URI patterns. The zero value admits
// nothing.
//
// A pattern is either the keyword "loopback" (LoopbackPattern) or an
// absolute URI that a redirect URI must equal, except that each "*" in the
// pattern's path matches any run of characters of the redirect URI's path
// (including "/"; the redirect URI cannot climb out with ".." or encoded
// separators, which are refused). Scheme and host compare
// case-insensitively (RFC 3986 §3.1, §3.2.2); port, path and query compare
// exactly (OAuth 2.1 §2.3.1 wants simple string comparison; a pattern
// without a query admits no query).
type Allowlist struct {
	patterns []pattern
}

type pattern struct {
	raw      string
	loopback bool
	uri      parsedURI
}

// ParseAllowlist parses patterns (see Allowlist). It refuses a pattern with
// "*" outside the path, a fragment, userinfo, a dangerous scheme
// (javascript:, data:, file:, …), or plain http for a host other than a
// loopback one. "preset:NAME" stands for a named client's redirect URIs
// (see Preset); an unknown name is an error.
func ParseAllowlist(patterns []string) (Allowlist, error) {
	var expanded []string
	for _, raw := range patterns {
		p, err := expandPreset(raw)
		if err != nil {
			return Allowlist{}, fmt.Errorf("redirect URI pattern %q: %w", raw, err)
		}
		expanded = append(expanded, p...)
	}
	var a Allowlist
	for _, raw := range expanded {
		if strings.EqualFold(strings.TrimSpace(raw), LoopbackPattern) {
			a.patterns = append(a.patterns, pattern{raw: raw, loopback: true})
			continue
		}
		p, err := parseURI(raw, true)
		if err != nil {
			return Allowlist{}, fmt.Errorf("redirect URI pattern %q: %w", raw, err)
		}
		a.patterns = append(a.patterns, pattern{raw: raw, uri: p})
	}
	return a, nil
}

// Allows reports whether uri is a safe redirect URI matched by one of the
// patterns.
func (a Allowlist) Allows(uri string) bool {
	if len(a.patterns) == 0 {
		return false
	}
	u, err := parseURI(uri, false)
	if err != nil {
		return false
	}
	for _, p := range a.patterns {
		if p.matches(u) {
			return true
		}
	}
	return false
}

// Len reports how many patterns the allowlist holds.
func (a Allowlist) Len() int { return len(a.patterns) }

func (p pattern) matches(u parsedURI) bool {
	if p.loopback {
		return u.scheme == "http" && u.authority && isLoopbackHost(u.host)
	}
	q := p.uri
	return u.scheme == q.scheme &&
		u.authority == q.authority &&
		u.host == q.host &&
		u.port == q.port &&
		u.hasQuery == q.hasQuery &&
		u.query == q.query &&
		globMatch(q.path, u.path)
}

// parsedURI is a redirect URI (or pattern) split into the parts we compare.
// path and query are exactly as written (still percent-encoded), cut out of
// the raw string rather than re-serialised, so what we compare is what the
// client will send.
type parsedURI struct {
	scheme    string // lower case
	authority bool   // "//" follows the scheme
	host      string // lower case, without brackets
	port      string
	path      string
	hasQuery  bool
	query     string
}

// deniedSchemes can never be redirect targets: they run code or read
// local data in the user agent (RFC 9700 §4.1; RFC 6749 §10.6 and OAuth
// 2.1 §7.12 on redirect URI manipulation), or are not navigations at all.
var deniedSchemes = map[string]bool{
	"javascript": true, "vbscript": true, "data": true, "file": true,
	"blob": true, "about": true, "filesystem": true, "view-source": true,
	"ws": true, "wss": true, "ftp": true, "mailto": true,
}

var (
	errNotAbsolute = errors.New("must be an absolute URI")
	errFragment    = errors.New("must not contain a fragment")
	errUserinfo    = errors.New("must not contain userinfo")
)

// parseURI validates raw as a redirect URI (or, with isPattern, a pattern)
// and splits it. Rules, for both:
//   - printable ASCII only, no whitespace or backslash (parsers disagree on
//     "\" and on non-ASCII; refusing them avoids differentials);
//   - absolute and hierarchical (RFC 6749 §3.1.2: an absolute URI);
//   - no fragment (RFC 6749 §3.1.2), no userinfo (https://good@evil/ is a
//     classic open-redirect disguise);
//   - no "." or ".." segments and no percent-encoded ".", "/" or "\"
//     (RFC 3986 §5.2.4 removal would otherwise let a prefix pattern be
//     escaped);
//   - https for web URIs; plain http only for loopback hosts (RFC 8252
//     §7.3, §8.3); other (private-use) schemes allowed (RFC 8252 §7.1);
//   - no percent-encoding in the host;
//   - "*" only in a pattern's path.
func parseURI(raw string, isPattern bool) (parsedURI, error) {
	var p parsedURI
	if raw == "" {
		return p, errors.New("empty")
	}
	if len(raw) > maxURILen {
		return p, fmt.Errorf("longer than %d bytes", maxURILen)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c <= 0x20 || c >= 0x7f:
			return p, errors.New("contains whitespace, control or non-ASCII characters")
		case c == '\\':
			return p, errors.New(`contains "\"`)
		case c == '#':
			return p, errFragment
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return p, errors.New("not a valid URI")
	}
	if u.Scheme == "" {
		return p, errNotAbsolute
	}
	p.scheme = strings.ToLower(u.Scheme)
	if deniedSchemes[p.scheme] {
		return p, fmt.Errorf("scheme %q is not allowed", p.scheme)
	}
	if u.Opaque != "" {
		return p, errors.New("must be a hierarchical URI (scheme://… or scheme:/…)")
	}
	if u.User != nil {
		return p, errUserinfo
	}
	rest := raw[len(u.Scheme)+1:]
	if strings.HasPrefix(rest, "//") {
		p.authority = true
		rest = rest[2:]
		end := strings.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		auth := rest[:end]
		rest = rest[end:]
		if strings.Contains(auth, "*") {
			return p, errors.New(`"*" is only allowed in the path`)
		}
		if strings.Contains(auth, "%") {
			// net/url decodes a percent-encoded host; refusing it keeps
			// "what we compared" and "what was written" the same.
			return p, errors.New("must not percent-encode the host")
		}
		if strings.HasSuffix(auth, ":") {
			return p, errors.New("empty port")
		}
		p.host = strings.ToLower(u.Hostname())
		p.port = u.Port()
	}
	if strings.Contains(p.scheme, "*") {
		return p, errors.New(`"*" is only allowed in the path`)
	}
	p.path = rest
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		p.path, p.query, p.hasQuery = rest[:i], rest[i+1:], true
	}
	if p.hasQuery && strings.Contains(p.query, "*") && isPattern {
		return p, errors.New(`"*" is only allowed in the path`)
	}
	lower := strings.ToLower(p.path)
	if strings.Contains(lower, "%2e") || strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return p, errors.New(`must not percent-encode ".", "/" or "\" in the path`)
	}
	for seg := range strings.SplitSeq(p.path, "/") {
		if seg == "." || seg == ".." {
			return p, errors.New(`must not contain "." or ".." path segments`)
		}
	}
	switch p.scheme {
	case "https", "http":
		if !p.authority || p.host == "" {
			return p, errors.New("web URI without a host")
		}
		if p.scheme == "http" && !isLoopbackHost(p.host) {
			return p, errors.New("plain http is only allowed for loopback hosts; use https")
		}
	}
	return p, nil
}

// isLoopbackHost: the loopback hosts of RFC 8252 §7.3 (literal addresses)
// and "localhost", which the brief admits although RFC 8252 §8.3 calls it
// NOT RECOMMENDED. Only these exact spellings: "127.1" or
// "localhost.evil.example" are not loopback here.
func isLoopbackHost(h string) bool {
	return h == "127.0.0.1" || h == "::1" || h == "localhost"
}

// checkRedirectURI applies the safety rules of parseURI without any
// allowlist (registration policies "open" and "token").
func checkRedirectURI(raw string) error {
	_, err := parseURI(raw, false)
	return err
}

// globMatch reports whether s matches pat, where each "*" in pat matches
// any run of bytes (possibly empty). It backtracks only to the last star,
// so the cost is at most len(pat)·len(s), never exponential.
func globMatch(pat, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pat) && pat[px] == '*':
			starP, starS = px, sx
			px++
		case px < len(pat) && pat[px] == s[sx]:
			px++
			sx++
		case starP >= 0:
			starS++
			px, sx = starP+1, starS
		default:
			return false
		}
	}
	for px < len(pat) && pat[px] == '*' {
		px++
	}
	return px == len(pat)
}
