package config

import (
	"github.com/mcpgate/mcpgate/internal/policy"

	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

var (
	serverNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	prefixRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	hostnameRE   = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$`)
	headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// reservedPaths are served by the gateway itself.
var reservedPaths = []string{"/healthz", "/readyz", "/.well-known"}

// Validate checks c and returns every problem found as Problems, or nil.
// For a configuration from Parse or Load the problems carry file positions;
// for one built in code they carry paths only. Parse and Load already call
// it; it is exported for configurations built or changed in code.
func (c *Config) Validate() error {
	if ps := c.validate(); len(ps) > 0 {
		return ps.sorted()
	}
	return nil
}

type validator struct {
	c        *Config
	src      *source
	problems Problems
	// checkCEL type-checks a policy condition.
	checkCEL func(expr string) error
}

func (c *Config) validate() Problems {
	src := c.src
	if src == nil {
		src = &source{pos: map[string]position{}, bad: map[string]bool{}}
	}
	v := &validator{c: c, src: src, checkCEL: policy.CheckExpression}
	v.top()
	v.servers()
	v.authServer()
	v.clientLimits()
	v.identity()
	v.connections()
	v.ownAudiences()
	v.connectors()
	v.metrics()
	return v.problems
}

// add reports a problem at path, located at the value written there or, for
// a value that was not written, at the nearest enclosing mapping. Problems
// at or inside a value that could not be decoded are dropped: that value
// was already reported.
func (v *validator) add(p, format string, args ...any) {
	for q := p; ; q = parentPath(q) {
		if v.src.bad[q] {
			return
		}
		if q == "" {
			break
		}
	}
	pos, ok := v.src.pos[p]
	for q := p; !ok && q != ""; {
		q = parentPath(q)
		pos, ok = v.src.pos[q]
	}
	v.problems = append(v.problems, Problem{
		File: v.src.file, Line: pos.line, Column: pos.col, Path: p,
		Message: fmt.Sprintf(format, args...),
	})
}

// written reports whether a value was written at p in the file (even null
// or an empty list).
func (v *validator) written(p string) bool {
	_, ok := v.src.pos[p]
	return ok
}

func (v *validator) top() {
	c := v.c
	if c.Listen != "" {
		if msg := checkListen(c.Listen); msg != "" {
			v.add("listen", "%s", msg)
		}
	}
	if c.PublicURL != "" {
		listen := defaultString(c.Listen, DefaultListen)
		derived := c.PublicURL == defaultPublicURL(listen)
		if msg := checkPublicURL(c.PublicURL, derived); msg != "" {
			v.add("public_url", "%s", msg)
		}
	}
	for i, h := range c.AllowedHosts {
		if msg := checkHost(h); msg != "" {
			v.add(fmt.Sprintf("allowed_hosts[%d]", i), "%s", msg)
		}
	}
	for i, o := range c.AllowedOrigins {
		if msg := checkOrigin(o); msg != "" {
			v.add(fmt.Sprintf("allowed_origins[%d]", i), "%s", msg)
		}
	}
	if c.SessionKey != "" && len(c.SessionKey) < MinSessionKeyLength {
		v.add("session_key", "must be at least %d characters long", MinSessionKeyLength)
	}

	l := c.Limits
	if l.MaxBodyBytes != 0 || v.written("limits.max_body_bytes") {
		if l.MaxBodyBytes <= 0 || l.MaxBodyBytes > MaxMaxBodyBytes {
			v.add("limits.max_body_bytes", "must be between 1 and %d (1 GiB), got %d", MaxMaxBodyBytes, l.MaxBodyBytes)
		}
	}
	if l.MaxSessions != 0 || v.written("limits.max_sessions") {
		if l.MaxSessions <= 0 {
			v.add("limits.max_sessions", "must be greater than 0, got %d", l.MaxSessions)
		}
	}
	v.duration("limits.upstream_timeout", l.UpstreamTimeout)
	v.duration("limits.session_idle_timeout", l.SessionIdleTimeout)
	v.duration("limits.shutdown_timeout", l.ShutdownTimeout)
	v.hardening()

	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		v.add("log.level", "must be one of debug, info, warn, error; got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		v.add("log.format", "must be text or json; got %q", c.Log.Format)
	}
}

// duration checks a Duration set in code; from a file, zero and negative
// values were already rejected while decoding.
func (v *validator) duration(p string, d Duration) {
	if d < 0 {
		v.add(p, "must be greater than 0")
	}
}

func (v *validator) servers() {
	c := v.c
	if len(c.Servers) == 0 {
		v.add("servers", "at least one server is required")
		return
	}
	names := map[string]int{} // name -> first index
	paths := map[string]int{} // path without trailing slash -> first index
	for i := range c.Servers {
		s := &c.Servers[i]
		p := fmt.Sprintf("servers[%d]", i)
		nameOK := false
		switch first, dup := names[s.Name]; {
		case s.Name == "":
			v.add(p+".name", "is required")
		case !serverNameRE.MatchString(s.Name):
			v.add(p+".name", "%q is not a valid server name: must match %s", s.Name, serverNameRE)
		case dup:
			v.add(p+".name", "duplicate server name %q (also servers[%d])", s.Name, first)
		default:
			names[s.Name] = i
			nameOK = true
		}

		if s.Path != "" || nameOK {
			ep := defaultString(s.Path, "/mcp/"+s.Name)
			if msg := checkServePath(ep); msg != "" {
				v.add(p+".path", "%s", msg)
			} else if first, dup := paths[strings.TrimSuffix(ep, "/")]; dup {
				v.add(p+".path", "path %q is already used by servers[%d]", ep, first)
			} else {
				paths[strings.TrimSuffix(ep, "/")] = i
			}
		}

		switch s.Auth {
		case "", AuthNone, AuthOAuth:
		default:
			v.add(p+".auth", "must be %q or %q; got %q", AuthOAuth, AuthNone, s.Auth)
		}
		for j, sc := range s.Scopes {
			if !scopeRE.MatchString(sc) {
				v.add(fmt.Sprintf("%s.scopes[%d]", p, j), "%q is not a valid scope (RFC 6749 §3.3: printable ASCII, no spaces, quotes or backslashes)", sc)
			}
		}
		v.redirectPatterns(p+".redirect_uris", s.RedirectURIs)
		if s.ToolPrefix != "" && !prefixRE.MatchString(s.ToolPrefix) {
			v.add(p+".tool_prefix", "%q is not a valid prefix: must match %s", s.ToolPrefix, prefixRE)
		}
		v.duration(p+".timeout", s.Timeout)
		v.serverUpstreams(s, p)
	}
}

func (v *validator) serverUpstreams(s *Server, p string) {
	one := s.Upstream != nil || v.src.bad[p+".upstream"] || v.written(p+".upstream")
	many := s.Upstreams != nil || v.src.bad[p+".upstreams"] || v.written(p+".upstreams")
	switch {
	case one && many:
		v.add(p+".upstreams", "cannot be combined with upstream: use upstream for one upstream or upstreams for several")
		return
	case !one && !many:
		v.add(p+".upstream", "one of upstream or upstreams is required")
		return
	case one:
		if s.Upstream == nil {
			v.add(p+".upstream", "must not be empty")
			return
		}
		v.upstream(s, s.Upstream, p+".upstream", true)
		return
	}
	if len(s.Upstreams) == 0 {
		v.add(p+".upstreams", "must list at least one upstream")
		return
	}
	names := map[string]int{}
	prefixes := map[string]int{}
	for j := range s.Upstreams {
		u := &s.Upstreams[j]
		up := fmt.Sprintf("%s.upstreams[%d]", p, j)
		v.upstream(s, u, up, false)

		if name := defaultString(u.Name, u.Server); name != "" {
			if first, dup := names[name]; dup {
				v.add(up+".name", "duplicate upstream name %q in this server (also upstreams[%d]); set name to tell them apart", name, first)
			} else {
				names[name] = j
			}
		}
		prefix, from := u.Prefix, ""
		if prefix == "" {
			if ref := v.c.ServerByName(u.Server); u.Server != "" && ref != nil {
				prefix, from = defaultString(ref.ToolPrefix, ref.Name), fmt.Sprintf("tool_prefix of server %q", u.Server)
			} else {
				prefix, from = u.Name, "name"
			}
		}
		if prefix == "" {
			continue
		}
		if from != "" && !prefixRE.MatchString(prefix) {
			v.add(up+".prefix", "default prefix %q (from %s) is not a valid prefix: must match %s; set prefix", prefix, from, prefixRE)
			continue
		}
		if first, dup := prefixes[prefix]; dup {
			v.add(up+".prefix", "duplicate prefix %q in this server (also upstreams[%d])", prefix, first)
		} else {
			prefixes[prefix] = j
		}
	}
	v.prefixesApart(p, prefixes)
}

// upstream checks one upstream of server s at path p; single is true for
// `upstream:` and false for an entry of `upstreams:`.
func (v *validator) upstream(s *Server, u *Upstream, p string, single bool) {
	has := func(key string, set bool) bool { return set || v.src.bad[p+"."+key] || v.written(p+"."+key) }
	isURL := has("url", u.URL != "")
	isCmd := has("command", len(u.Command) > 0)
	isRef := has("server", u.Server != "")

	var kinds []string
	if isURL {
		kinds = append(kinds, "url")
	}
	if isCmd {
		kinds = append(kinds, "command")
	}
	if isRef {
		if single {
			v.add(p+".server", "only allowed in upstreams (to aggregate another server); use url or command here")
		} else {
			kinds = append(kinds, "server")
		}
	}
	switch {
	case len(kinds) == 0 && !(single && isRef):
		if single {
			v.add(p, "one of url or command is required")
		} else {
			v.add(p, "one of url, command or server is required")
		}
	case len(kinds) > 1:
		for _, k := range kinds[1:] {
			v.add(p+"."+k, "cannot be combined with %s: an upstream is exactly one of url, command or server", kinds[0])
		}
	}

	if u.Name != "" && !serverNameRE.MatchString(u.Name) {
		v.add(p+".name", "%q is not a valid upstream name: must match %s", u.Name, serverNameRE)
	} else if !single && u.Name == "" && !isRef {
		v.add(p+".name", "is required (unless server is set)")
	}
	if u.Prefix != "" && !prefixRE.MatchString(u.Prefix) {
		v.add(p+".prefix", "%q is not a valid prefix: must match %s", u.Prefix, prefixRE)
	}
	v.duration(p+".timeout", u.Timeout)

	// url and its options
	if u.URL != "" {
		if msg := checkUpstreamURL(u.URL); msg != "" {
			v.add(p+".url", "%s", msg)
		}
	} else if isURL && !v.src.bad[p+".url"] {
		v.add(p+".url", "must not be empty")
	}
	if u.Transport != "" {
		switch {
		case !isURL:
			v.add(p+".transport", "only allowed with url")
		case u.Transport != TransportStreamableHTTP && u.Transport != TransportSSE:
			v.add(p+".transport", "must be %q or %q; got %q", TransportStreamableHTTP, TransportSSE, u.Transport)
		}
	}
	if len(u.Headers) > 0 || v.written(p+".headers") {
		if !isURL {
			v.add(p+".headers", "only allowed with url")
		} else {
			for _, k := range sortedKeys(u.Headers) {
				if !headerNameRE.MatchString(k) {
					v.add(keyPath(p+".headers", k), "%q is not a valid HTTP header name", k)
				} else if strings.ContainsAny(u.Headers[k], "\r\n\x00") {
					v.add(keyPath(p+".headers", k), "header value must not contain line breaks or NUL")
				}
			}
		}
	}

	// command and its options
	if isCmd && !v.src.bad[p+".command"] {
		switch {
		case len(u.Command) == 0:
			v.add(p+".command", "must not be empty: give the program and its arguments, e.g. [node, server.js]")
		case strings.TrimSpace(u.Command[0]) == "":
			v.add(p+".command[0]", "program name must not be empty")
		}
	}
	if len(u.Env) > 0 || v.written(p+".env") {
		if !isCmd {
			v.add(p+".env", "only allowed with command")
		} else {
			for _, k := range sortedKeys(u.Env) {
				if k == "" || strings.ContainsAny(k, "=\x00") {
					v.add(keyPath(p+".env", k), "%q is not a valid environment variable name", k)
				} else if strings.ContainsRune(u.Env[k], 0) {
					v.add(keyPath(p+".env", k), "value must not contain NUL")
				}
			}
		}
	}
	if (u.Cwd != "" || v.written(p+".cwd")) && !isCmd {
		v.add(p+".cwd", "only allowed with command")
	}

	// server reference
	if u.Server != "" && !single {
		ref := v.c.ServerByName(u.Server)
		switch {
		case ref == nil:
			v.add(p+".server", "unknown server %q", u.Server)
		case ref == s:
			v.add(p+".server", "a server cannot aggregate itself")
		case ref.Upstream == nil:
			v.add(p+".server", "server %q has no single upstream: only a server with `upstream:` can be aggregated", u.Server)
		}
	}
}

func checkListen(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return `must be host:port, e.g. "127.0.0.1:8080" or ":8080"`
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("port %q must be a number from 0 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && !hostnameRE.MatchString(host) {
		return fmt.Sprintf("%q is not a valid host", host)
	}
	return ""
}

// checkPublicURL checks public_url. derived is true for the value that
// ApplyDefaults derives from listen, which may be plain http on any host.
func checkPublicURL(s string, derived bool) string {
	const want = "must be an absolute http(s) URL without query or fragment, e.g. https://mcp.example.com"
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return want
	}
	if strings.ContainsAny(s, "?#") {
		return want
	}
	if u.User != nil {
		return "must not contain user information"
	}
	if u.Scheme == "http" && !derived && !isLoopback(u.Hostname()) {
		return "must use https: plain http is only allowed for loopback hosts (127.0.0.1, ::1, localhost)"
	}
	return ""
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkUpstreamURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "must be an absolute http or https URL"
	}
	if u.Fragment != "" || strings.HasSuffix(s, "#") {
		return "must not have a fragment"
	}
	return ""
}

func checkHost(s string) string {
	const want = `must be "host" or "host:port" (IPv6 in brackets), without scheme or path`
	if s == "" || strings.ContainsAny(s, "/@?#") || strings.ContainsFunc(s, unicode.IsSpace) {
		return want
	}
	host := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return want
		}
		return ""
	}
	if strings.Contains(s, ":") {
		h, port, err := net.SplitHostPort(s)
		if err != nil {
			return want
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return want
		}
		host = h
		if strings.Contains(host, ":") { // bracketed IPv6 with port
			if net.ParseIP(host) == nil {
				return want
			}
			return ""
		}
	}
	if net.ParseIP(host) == nil && !hostnameRE.MatchString(host) {
		return want
	}
	return ""
}

func checkOrigin(s string) string {
	const want = "must be an origin: scheme://host[:port] with scheme http or https and nothing after, e.g. https://app.example"
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" ||
		u.User != nil || u.Path != "" || strings.ContainsAny(s, "?#") {
		return want
	}
	if checkHost(u.Host) != "" {
		return want
	}
	return ""
}

// checkServePath checks the HTTP path a server is served at.
func checkServePath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return fmt.Sprintf("path %q must start with /", p)
	}
	if strings.ContainsAny(p, "?#") {
		return fmt.Sprintf("path %q must not contain ? or #", p)
	}
	if strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Sprintf("path %q must not contain spaces or control characters", p)
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if clean != p {
		return fmt.Sprintf("path %q must be clean (no //, . or .. segments); did you mean %q?", p, clean)
	}
	for _, r := range reservedPaths {
		if p == r || strings.HasPrefix(p, r+"/") {
			return fmt.Sprintf("path %q collides with the gateway's own %s endpoint", p, r)
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
