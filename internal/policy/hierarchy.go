package policy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Hierarchy says which scopes of one server a broader scope covers: a token
// holding the broad scope passes every check for the narrower ones, a policy
// allowing the broad scope allows the narrower ones, and a consent to the
// broad scope is a consent to them. MCP 2026-07-28 authorization §"Step-Up
// Authorization Flow": "Servers MUST account for scope hierarchies, where a
// broader scope implies narrower ones, when deciding whether a token is
// sufficient for an operation."
//
// Covering is transitive ("mcp:bq" covers "mcp:bq.read", which covers
// "mcp:bq.read.tables": "mcp:bq" covers "mcp:bq.read.tables") and never
// circular. A nil Hierarchy covers nothing but each scope itself.
type Hierarchy struct {
	// covers maps each broad scope to the patterns it covers, its own and
	// those of every broad scope it covers (the closure), in a stable order.
	covers map[string][]pattern
}

// NewHierarchy checks and compiles the hierarchy of server: each key is a
// broad scope, each value lists what it covers, as scopes or prefixes
// ending in "*" ("mcp:bq.*"), the policy's pattern syntax. Every problem is
// reported at once. An empty map gives a nil Hierarchy.
func NewHierarchy(server string, m map[string][]string) (*Hierarchy, error) {
	if len(m) == 0 {
		return nil, nil
	}
	var errs []error
	bad := func(broad, format string, args ...any) {
		errs = append(errs, fmt.Errorf("server %q: scope hierarchy %q: %s", server, broad, fmt.Sprintf(format, args...)))
	}
	h := &Hierarchy{covers: map[string][]pattern{}}
	direct := map[string][]pattern{}
	for _, broad := range sortedKeys(m) {
		if !validScopeToken(broad) || strings.Contains(broad, "*") {
			bad(broad, "is not a valid scope (RFC 6749 section 3.3, no \"*\")")
			continue
		}
		if len(m[broad]) == 0 {
			bad(broad, "must list at least one narrower scope")
			continue
		}
		for i, s := range m[broad] {
			p, err := parsePattern(s)
			switch {
			case err != nil:
				bad(broad, "entry %d: %s", i, err)
				continue
			case s != "*" && !validScopeToken(s):
				bad(broad, "entry %d: %q is not a valid scope", i, s)
				continue
			}
			direct[broad] = append(direct[broad], p)
		}
	}
	for broad := range direct {
		if h.reaches(direct, broad, broad) {
			bad(broad, "is circular: it covers a scope that covers it back")
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for broad := range direct {
		h.covers[broad] = h.closure(direct, broad)
	}
	return h, nil
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// children are the other broad scopes broad covers directly.
func children(direct map[string][]pattern, broad string) []string {
	var out []string
	for other := range direct {
		if other == broad {
			continue
		}
		for _, p := range direct[broad] {
			if p.match(other) {
				out = append(out, other)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// reaches reports whether target is reachable from broad through other
// broad scopes (a path of one or more steps).
func (h *Hierarchy) reaches(direct map[string][]pattern, broad, target string) bool {
	seen := map[string]bool{}
	stack := children(direct, broad)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == target {
			return true
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		stack = append(stack, children(direct, n)...)
	}
	return false
}

// closure gathers the patterns of broad and of every broad scope below it.
func (h *Hierarchy) closure(direct map[string][]pattern, broad string) []pattern {
	out := slices.Clone(direct[broad])
	seen := map[string]bool{broad: true}
	stack := children(direct, broad)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, direct[n]...)
		stack = append(stack, children(direct, n)...)
	}
	return out
}

// Covers reports whether a token holding held may do what need allows:
// held is need, or held is a broad scope covering need.
func (h *Hierarchy) Covers(held, need string) bool {
	if held == need {
		return need != ""
	}
	if h == nil || need == "" {
		return false
	}
	for _, p := range h.covers[held] {
		if p.match(need) {
			return true
		}
	}
	return false
}

// Satisfied reports whether any of held covers need.
func (h *Hierarchy) Satisfied(held []string, need string) bool {
	for _, s := range held {
		if h.Covers(s, need) {
			return true
		}
	}
	return false
}

// Covering returns the broad scopes that cover need (need itself
// excluded), sorted.
func (h *Hierarchy) Covering(need string) []string {
	if h == nil {
		return nil
	}
	var out []string
	for broad := range h.covers {
		if broad != need && h.Covers(broad, need) {
			out = append(out, broad)
		}
	}
	sort.Strings(out)
	return out
}

// Narrower returns everything broad covers, as patterns in the
// configuration's syntax: its own entries and, since covering is
// transitive, those of the broad scopes below it ("mcp:all" covering
// "mcp:bq" also includes "mcp:bq.write.*"). The consent page shows it:
// a person allowing a broad scope must see all it grants, not one level.
// nil when broad is no broad scope.
func (h *Hierarchy) Narrower(broad string) []string {
	if h == nil || h.covers[broad] == nil {
		return nil
	}
	var out []string
	for _, p := range h.covers[broad] {
		s := p.s
		if p.prefix {
			s += "*"
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Reduce drops from scopes those another of them covers, keeping order:
// what a person must be asked for, each permission once.
func (h *Hierarchy) Reduce(scopes []string) []string {
	if h == nil {
		return scopes
	}
	out := make([]string, 0, len(scopes))
	for i, s := range scopes {
		covered := false
		for j, other := range scopes {
			if i != j && other != s && h.Covers(other, s) {
				covered = true
				break
			}
		}
		if !covered && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
