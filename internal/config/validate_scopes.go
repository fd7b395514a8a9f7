package config

import (
	"slices"
	"sort"

	"github.com/mcpgate/mcpgate/internal/policy"
)

// scopeHierarchy checks a server's scope_hierarchy: each broad scope is
// one the server offers (a broad scope no token can carry would cover
// nothing), and the whole compiles (patterns, no cycles).
func (v *validator) scopeHierarchy(p string, s Server) {
	if len(s.ScopeHierarchy) == 0 {
		return
	}
	if len(s.Tools) == 0 {
		v.add(p+".scope_hierarchy", "has no effect without tools rules (without them a token reaches every tool)")
	}
	broad := make([]string, 0, len(s.ScopeHierarchy))
	for b := range s.ScopeHierarchy {
		broad = append(broad, b)
	}
	sort.Strings(broad)
	for _, b := range broad {
		if !slices.Contains(s.Scopes, b) {
			v.add(p+".scope_hierarchy", "broad scope %q is not in scopes (no token could carry it)", b)
		}
	}
	if _, err := policy.NewHierarchy(s.Name, s.ScopeHierarchy); err != nil {
		v.add(p+".scope_hierarchy", "%v", err)
	}
}
