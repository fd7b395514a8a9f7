package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// Spec is one policy as written in the configuration.
type Spec struct {
	Name string
	// When is a CEL expression over user, client and server that must
	// evaluate to bool; "" means always.
	When  string
	Allow []Allow
}

// Allow lists scopes a matching policy allows on some servers.
type Allow struct {
	// Servers are server names; "*" is any server, and a name ending in "*"
	// is a prefix ("tenant-a-*"). No servers means any server.
	Servers []string
	// Scopes are scopes or prefixes ending in "*", e.g. "mcp:calendar.*".
	Scopes []string
}

// Problem is one error in a [Spec], located well enough for the config
// loader to point at it.
type Problem struct {
	Index   int    // which spec
	Field   string // "name", "when", "allow", "allow[0].scopes[1]", …
	Message string // for "when", CEL's own message with line and column
}

// Error formats the problem as "policy <index>: <field>: <message>".
func (p Problem) Error() string {
	return fmt.Sprintf("policy %d: %s: %s", p.Index, p.Field, p.Message)
}

// Set is a compiled, immutable set of policies, safe for concurrent use.
type Set struct {
	policies []compiled
}

type compiled struct {
	name     string
	when     string      // the condition as written, for explanations
	requires []string    // the memberships it tests, in words (requirements)
	prg      cel.Program // nil: the condition is constant (absent, true or false)
	never    bool        // the condition is the literal false
	allows   []compiledAllow
}

type compiledAllow struct {
	servers []pattern // empty: any server
	scopes  []pattern
}

// pattern is an exact name or, when prefix is set, every name starting with s
// (the written form is s + "*").
type pattern struct {
	s      string
	prefix bool
}

func (p pattern) match(name string) bool {
	if p.prefix {
		return strings.HasPrefix(name, p.s)
	}
	return name == p.s
}

func parsePattern(s string) (pattern, error) {
	if s == "" {
		return pattern{}, errors.New("must not be empty")
	}
	body, prefix := strings.CutSuffix(s, "*")
	if strings.Contains(body, "*") {
		return pattern{}, fmt.Errorf("%q: \"*\" is only allowed at the end", s)
	}
	return pattern{s: body, prefix: prefix}, nil
}

// validScopeToken reports whether s is a scope-token of RFC 6749 section 3.3.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

func (a *compiledAllow) appliesTo(server string) bool {
	if len(a.servers) == 0 {
		return true
	}
	for _, p := range a.servers {
		if p.match(server) {
			return true
		}
	}
	return false
}

func (c *compiled) appliesTo(server string) bool {
	for i := range c.allows {
		if c.allows[i].appliesTo(server) {
			return true
		}
	}
	return false
}

// permits reports whether the policy allows scope on server.
func (c *compiled) permits(server, scope string) bool {
	for i := range c.allows {
		a := &c.allows[i]
		if !a.appliesTo(server) {
			continue
		}
		for _, p := range a.scopes {
			if p.match(scope) {
				return true
			}
		}
	}
	return false
}

// eval runs the condition; an error counts as false and is returned as text.
func (c *compiled) eval(a *activation) (matched bool, errText string) {
	if c.prg == nil {
		return !c.never, ""
	}
	out, _, err := c.prg.Eval(a)
	if err != nil {
		return false, err.Error()
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Sprintf("condition evaluated to %s, not bool", out.Type().TypeName())
	}
	return bool(b), ""
}

// env is the typed CEL environment, built once per process.
var env = sync.OnceValues(func() (*cel.Env, error) {
	p, err := newProvider()
	if err != nil {
		return nil, err
	}
	return cel.NewEnv(
		cel.CustomTypeAdapter(p.Registry),
		cel.CustomTypeProvider(p),
		cel.Variable("user", userDef.typ),
		cel.Variable("client", clientDef.typ),
		cel.Variable("server", serverDef.typ),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
	)
})

// compileWhen type-checks a condition and plans it for evaluation. A
// condition that is the literal true or false needs no program: prg is nil
// and constant holds its value.
func compileWhen(src string) (prg cel.Program, constant bool, err error) {
	e, err := env()
	if err != nil {
		return nil, false, fmt.Errorf("policy environment: %w", err)
	}
	ast, iss := e.Compile(src)
	if iss.Err() != nil {
		return nil, false, iss.Err()
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) {
		return nil, false, fmt.Errorf("condition must be a bool expression, but its type is %s", t)
	}
	if root := ast.NativeRep().Expr(); root.Kind() == celast.LiteralKind {
		if b, ok := root.AsLiteral().(types.Bool); ok {
			return nil, bool(b), nil
		}
	}
	prg, err = e.Program(ast, cel.EvalOptions(cel.OptOptimize))
	return prg, false, err
}

// CheckExpression reports whether expr is a valid policy condition: it must
// parse, type-check against the policy input and evaluate to bool. The error
// carries CEL's message, with line and column.
func CheckExpression(expr string) error {
	_, _, err := compileWhen(expr)
	return err
}

// Compile checks and compiles every spec. It reports every problem at once;
// when there is any, the returned Set is nil, so a broken policy file never
// runs half loaded.
func Compile(specs []Spec) (*Set, []Problem) {
	var problems []Problem
	report := func(i int, field, format string, args ...any) {
		problems = append(problems, Problem{Index: i, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	set := &Set{policies: make([]compiled, 0, len(specs))}
	names := make(map[string]int, len(specs))
	for i, spec := range specs {
		c := compiled{name: spec.Name, when: strings.TrimSpace(spec.When)}
		switch first, dup := names[spec.Name]; {
		case strings.TrimSpace(spec.Name) == "":
			report(i, "name", "must not be empty")
		case dup:
			report(i, "name", "%q is also the name of policy %d", spec.Name, first)
		default:
			names[spec.Name] = i
		}
		if strings.TrimSpace(spec.When) != "" {
			prg, constant, err := compileWhen(spec.When)
			if err != nil {
				report(i, "when", "%s", err)
			}
			c.prg, c.never = prg, prg == nil && !constant
			c.requires = requirements(spec.When)
		}
		if len(spec.Allow) == 0 {
			report(i, "allow", "must list at least one entry")
		}
		for j, a := range spec.Allow {
			var ca compiledAllow
			for k, s := range a.Servers {
				p, err := parsePattern(s)
				if err != nil {
					report(i, fmt.Sprintf("allow[%d].servers[%d]", j, k), "%s", err)
				}
				ca.servers = append(ca.servers, p)
			}
			if len(a.Scopes) == 0 {
				report(i, fmt.Sprintf("allow[%d].scopes", j), "must list at least one scope")
			}
			for k, s := range a.Scopes {
				field := fmt.Sprintf("allow[%d].scopes[%d]", j, k)
				p, err := parsePattern(s)
				switch {
				case err != nil:
					report(i, field, "%s", err)
				case s != "*" && !validScopeToken(s):
					report(i, field, "%q is not a valid scope (RFC 6749 section 3.3)", s)
				}
				ca.scopes = append(ca.scopes, p)
			}
			c.allows = append(c.allows, ca)
		}
		set.policies = append(set.policies, c)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return set, nil
}

// Len returns the number of policies in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.policies)
}
