package policy

import "strings"

// Decision is the answer of [Set.Grant] together with its explanation.
type Decision struct {
	// Granted are the scopes the token gets, in the order of PerScope.
	Granted []string
	// PerScope explains every scope that was requested or offered: requested
	// scopes first, in request order, then offered scopes not requested.
	PerScope []ScopeDecision
	// Evaluated lists, in configuration order, the policies that allow
	// anything on this server, and whether their condition held.
	Evaluated []PolicyResult
}

// ScopeDecision explains the decision for one scope.
type ScopeDecision struct {
	Scope   string
	Granted bool
	By      []string // names of the policies that allow it
	Reason  string   // why it was not granted; "" when granted
}

// PolicyResult is the outcome of one policy's condition.
type PolicyResult struct {
	Name    string
	Matched bool
	Err     string // evaluation error; the policy then counts as not matched
}

// Reasons in [ScopeDecision].Reason.
const (
	ReasonNotRequested = "not requested"
	ReasonNotOffered   = "not offered by server"
	reasonNoPolicy     = "no policy allows it"
)

// smallSet is the size up to which string sets are searched linearly.
const smallSet = 16

// strset answers membership for a short list without allocating, and builds
// a map only for long ones (a request may carry many scopes).
type strset struct {
	list []string
	m    map[string]struct{}
}

func newStrset(list []string) strset {
	s := strset{list: list}
	if len(list) > smallSet {
		s.m = make(map[string]struct{}, len(list))
		for _, v := range list {
			s.m[v] = struct{}{}
		}
	}
	return s
}

func (s strset) has(v string) bool {
	if s.m != nil {
		_, ok := s.m[v]
		return ok
	}
	for _, x := range s.list {
		if x == v {
			return true
		}
	}
	return false
}

// Grant decides which scopes a token for in.Server.Name gets:
//
//	requested ∩ (scopes allowed by every policy whose condition holds) ∩ available
//
// where available are the scopes the server offers. When requested is empty,
// every allowed scope the server offers is granted. With no matching policy
// nothing is granted, and a condition that fails to evaluate counts as false
// (its error is in Evaluated). A nil Set grants nothing.
func (s *Set) Grant(in Input, requested []string, available []string) Decision {
	return s.GrantWithin(in, requested, available, nil)
}

// GrantWithin is [Set.Grant] honouring the server's scope hierarchy h
// (nil: none): a scope is offered when the server offers it or a scope
// covering it, and allowed when a matching policy allows it or a scope
// covering it. A client stepping up for a narrow scope named in a
// challenge thus gets it from a policy written for the broad one.
func (s *Set) GrantWithin(in Input, requested []string, available []string, h *Hierarchy) Decision {
	var matchedBuf [16]*compiled
	evaluated, matched := s.evaluate(&in, matchedBuf[:0])

	candidates := requested
	if len(requested) == 0 {
		candidates = available
	}
	n := len(candidates)
	if len(requested) > 0 {
		n += len(available)
	}
	// One backing array for Granted and the By lists: Granted holds at most
	// len(candidates) names; the By lists start with room for every matched
	// policy on every scope, up to a bound, and grow beyond it.
	byCap := min(len(candidates)*len(matched), 256)
	names := make([]string, 0, len(candidates)+byCap)
	dc := decider{
		server:    in.Server.Name,
		hier:      h,
		evaluated: evaluated,
		offered:   newStrset(available),
		perScope:  make([]ScopeDecision, 0, n),
		granted:   names[:0:len(candidates)],
		byBuf:     names[len(candidates):len(candidates)],
	}
	if n > smallSet {
		dc.seen = make(map[string]struct{}, n)
	}
	for _, scope := range candidates {
		dc.decide(scope, true, matched)
	}
	if len(requested) > 0 {
		asked := newStrset(requested)
		for _, scope := range available {
			if !asked.has(scope) {
				dc.decide(scope, false, matched)
			}
		}
	}
	d := Decision{PerScope: dc.perScope, Evaluated: evaluated}
	if len(dc.granted) > 0 {
		d.Granted = dc.granted
	}
	return d
}

// evaluate runs the conditions of the policies that allow anything on the
// input's server (the others cannot contribute) and appends the ones that
// hold to matched.
func (s *Set) evaluate(in *Input, matched []*compiled) ([]PolicyResult, []*compiled) {
	if s == nil {
		return nil, matched
	}
	var results []PolicyResult
	var act *activation
	for i := range s.policies {
		p := &s.policies[i]
		if !p.appliesTo(in.Server.Name) {
			continue
		}
		if results == nil {
			results = make([]PolicyResult, 0, len(s.policies)-i)
		}
		if p.prg != nil && act == nil {
			act = getActivation(in)
		}
		r := PolicyResult{Name: p.name}
		r.Matched, r.Err = p.eval(act)
		if r.Matched {
			matched = append(matched, p)
		}
		results = append(results, r)
	}
	if act != nil {
		act.release()
	}
	return results, matched
}

// decider builds the per-scope part of a [Decision].
type decider struct {
	server    string
	hier      *Hierarchy // nil: none
	evaluated []PolicyResult
	offered   strset
	seen      map[string]struct{} // for long lists; short ones scan perScope
	perScope  []ScopeDecision
	granted   []string
	byBuf     []string // backing for the By lists
	denied    string   // the "no policy allows it" reason, built once
}

// decide explains one scope; matched are the policies whose condition held
// (an argument rather than a field, so that their list can stay on the
// caller's stack).
func (dc *decider) decide(scope string, requested bool, matched []*compiled) {
	if dc.seen != nil {
		if _, dup := dc.seen[scope]; dup {
			return
		}
		dc.seen[scope] = struct{}{}
	} else {
		for i := range dc.perScope {
			if dc.perScope[i].Scope == scope {
				return
			}
		}
	}
	sd := ScopeDecision{Scope: scope}
	switch {
	case !requested:
		sd.Reason = ReasonNotRequested
	case !dc.isOffered(scope):
		sd.Reason = ReasonNotOffered
	default:
		start := len(dc.byBuf)
		for _, p := range matched {
			if dc.permits(p, scope) {
				dc.byBuf = append(dc.byBuf, p.name)
			}
		}
		if len(dc.byBuf) == start {
			if dc.denied == "" {
				dc.denied = deniedReason(dc.server, dc.evaluated)
			}
			sd.Reason = dc.denied
			break
		}
		sd.Granted = true
		sd.By = dc.byBuf[start:len(dc.byBuf):len(dc.byBuf)]
		dc.granted = append(dc.granted, scope)
	}
	dc.perScope = append(dc.perScope, sd)
}

// isOffered: the server offers scope, or a scope covering it.
func (dc *decider) isOffered(scope string) bool {
	if dc.offered.has(scope) {
		return true
	}
	if dc.hier == nil {
		return false
	}
	for _, b := range dc.hier.Covering(scope) {
		if dc.offered.has(b) {
			return true
		}
	}
	return false
}

// permits: policy p allows scope on the server, or a scope covering it.
func (dc *decider) permits(p *compiled, scope string) bool {
	if p.permits(dc.server, scope) {
		return true
	}
	if dc.hier == nil {
		return false
	}
	for _, b := range dc.hier.Covering(scope) {
		if p.permits(dc.server, b) {
			return true
		}
	}
	return false
}

// Grantor is a policy that can allow a scope on a server: how a person
// could obtain a scope they lack.
type Grantor struct {
	Name string
	When string // its condition as written; "" means always
	// Requires are the memberships its condition tests, in words
	// (`group "analysts"`), safe to tell the person who lacks the scope;
	// empty when the condition tests none (or nothing at all).
	Requires []string
}

// Grantors lists, in configuration order, the policies that allow scope
// (or a scope covering it under h) on server, whatever their conditions:
// what an administrator would have to make true. Policies whose condition
// is the literal false are left out.
func (s *Set) Grantors(server, scope string, h *Hierarchy) []Grantor {
	if s == nil {
		return nil
	}
	dc := decider{server: server, hier: h}
	var out []Grantor
	for i := range s.policies {
		p := &s.policies[i]
		if !p.never && dc.permits(p, scope) {
			out = append(out, Grantor{Name: p.name, When: p.when, Requires: p.requires})
		}
	}
	return out
}

// deniedReason explains a scope that the server offers and was requested but
// that no matching policy allows, listing what each policy contributed.
func deniedReason(server string, evaluated []PolicyResult) string {
	if len(evaluated) == 0 {
		return reasonNoPolicy + ` (no policy applies to server "` + server + `")`
	}
	outcome := func(r PolicyResult) string {
		switch {
		case r.Err != "":
			return ": evaluation error"
		case !r.Matched:
			return ": condition false"
		}
		return ": scope not allowed"
	}
	const head = reasonNoPolicy + " (checked: "
	size := len(head) + 1
	for _, r := range evaluated {
		size += len(r.Name) + len(outcome(r)) + len("; ")
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString(head)
	for i, r := range evaluated {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.Name)
		b.WriteString(outcome(r))
	}
	b.WriteString(")")
	return b.String()
}
