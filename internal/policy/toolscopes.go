package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Kind is what a [ToolRule] applies to.
type Kind string

// Kinds of [ToolRule]. The zero value means KindTool.
const (
	KindTool     Kind = "tool"     // matched against the tool name
	KindResource Kind = "resource" // matched against the resource URI
	KindPrompt   Kind = "prompt"   // matched against the prompt name
)

// ToolRule says which scope calling a tool (or reading a resource, or getting
// a prompt) requires.
type ToolRule struct {
	Kind Kind // "" is KindTool
	// Pattern is an exact name (or URI), or a glob in which each "*" matches
	// any run of characters, "/" included. There are no other wildcards.
	Pattern string
	// Scope is the required scope; "" means no scope is needed beyond a
	// token for the server.
	Scope string
}

// ToolScopes answers which scope a tool, resource or prompt of one server
// requires. The first matching rule wins. A tool no rule matches requires
// defaultScope(tool); a resource or prompt no rule matches requires no scope
// (add a rule with Pattern "*" to change that). It is safe for concurrent
// use.
type ToolScopes struct {
	server string
	tables [3]scopeTable // indexed by kindIndex
}

// cacheLimit bounds the cached answers per kind: names come from requests, so
// an unbounded cache would be a memory leak any client could drive.
const cacheLimit = 4096

type scopeTable struct {
	exact    map[string]string // answers for exact patterns, rule order applied
	globs    []globRule        // glob rules, in rule order
	fallback func(name string) string
	cache    sync.Map // name → string, for names without an exact rule
	cached   atomic.Int64
}

type globRule struct {
	pattern string
	scope   string
}

func kindIndex(k Kind) (int, bool) {
	switch k {
	case "", KindTool:
		return 0, true
	case KindResource:
		return 1, true
	case KindPrompt:
		return 2, true
	}
	return 0, false
}

// NewToolScopes checks and indexes the rules of one server. defaultScope
// gives the scope of a tool no rule matches (the configuration passes
// "mcp:"+tool); it must not be nil. A rule that can never match because an
// earlier rule matches everything it would is an error, since its scope would
// silently not apply.
func NewToolScopes(server string, rules []ToolRule, defaultScope func(tool string) string) (*ToolScopes, error) {
	if defaultScope == nil {
		return nil, fmt.Errorf("server %q: tool scopes: no default scope function", server)
	}
	t := &ToolScopes{server: server}
	for i := range t.tables {
		t.tables[i].exact = map[string]string{}
	}
	t.tables[0].fallback = defaultScope
	var errs []error
	bad := func(i int, r ToolRule, format string, args ...any) {
		errs = append(errs, fmt.Errorf("server %q: scope rule %d (%s %q): %s",
			server, i, r.kindName(), r.Pattern, fmt.Sprintf(format, args...)))
	}
	for i, r := range rules {
		k, ok := kindIndex(r.Kind)
		if !ok {
			bad(i, r, "unknown kind %q (want tool, resource or prompt)", string(r.Kind))
			continue
		}
		if r.Pattern == "" {
			bad(i, r, "empty pattern")
			continue
		}
		if r.Scope != "" && (!validScopeToken(r.Scope) || strings.Contains(r.Scope, "*")) {
			bad(i, r, "%q is not a valid scope", r.Scope)
			continue
		}
		tb := &t.tables[k]
		if by := tb.shadowedBy(r.Pattern); by != "" {
			bad(i, r, "never applies: an earlier rule %q matches first", by)
			continue
		}
		if strings.Contains(r.Pattern, "*") {
			tb.globs = append(tb.globs, globRule{pattern: r.Pattern, scope: r.Scope})
		} else {
			tb.exact[r.Pattern] = r.Scope
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func (r ToolRule) kindName() string {
	if r.Kind == "" {
		return string(KindTool)
	}
	return string(r.Kind)
}

// shadowedBy returns the pattern of an earlier rule that matches every name
// p matches, or "". It is exact for exact patterns and catches the common
// glob cases (identical globs, "*", nested prefixes "a*" before "ab*").
func (tb *scopeTable) shadowedBy(p string) string {
	if _, dup := tb.exact[p]; dup {
		return p
	}
	isGlob := strings.Contains(p, "*")
	for _, g := range tb.globs {
		switch {
		case !isGlob && globMatch(g.pattern, p):
			return g.pattern
		case g.pattern == p || g.pattern == "*":
			return g.pattern
		case isPrefixGlob(g.pattern) && isPrefixGlob(p) &&
			strings.HasPrefix(p[:len(p)-1], g.pattern[:len(g.pattern)-1]):
			return g.pattern
		}
	}
	return ""
}

// isPrefixGlob reports whether p is "prefix*" with no other "*".
func isPrefixGlob(p string) bool {
	return strings.IndexByte(p, '*') == len(p)-1
}

// Server returns the name of the server the rules belong to.
func (t *ToolScopes) Server() string { return t.server }

// Required returns the scope calling tool requires; "" means none.
func (t *ToolScopes) Required(tool string) string { return t.tables[0].lookup(tool) }

// RequiredResource returns the scope reading the resource at uri requires;
// "" means none.
func (t *ToolScopes) RequiredResource(uri string) string { return t.tables[1].lookup(uri) }

// RequiredPrompt returns the scope getting prompt requires; "" means none.
func (t *ToolScopes) RequiredPrompt(prompt string) string { return t.tables[2].lookup(prompt) }

func (tb *scopeTable) lookup(name string) string {
	if s, ok := tb.exact[name]; ok {
		return s
	}
	if len(tb.globs) == 0 && tb.fallback == nil {
		return ""
	}
	if v, ok := tb.cache.Load(name); ok {
		return v.(string)
	}
	s := tb.resolve(name)
	if tb.cached.Load() < cacheLimit {
		if _, loaded := tb.cache.LoadOrStore(name, s); !loaded {
			tb.cached.Add(1)
		}
	}
	return s
}

// resolve finds the answer for a name no exact rule covers.
func (tb *scopeTable) resolve(name string) string {
	for _, g := range tb.globs {
		if globMatch(g.pattern, name) {
			return g.scope
		}
	}
	if tb.fallback != nil {
		return tb.fallback(name)
	}
	return ""
}

// globMatch reports whether name matches pattern, where each "*" matches any
// run of bytes. It runs in O(len(pattern)·len(name)) at worst, without
// recursion.
func globMatch(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0 // position of the last "*" and the name index it resumes at
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			mark++
			p, n = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
