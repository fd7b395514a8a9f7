package policy

import (
	"fmt"
	"slices"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
)

// memberFields are the user fields whose membership tests say who a policy
// is for, in words.
var memberFields = map[string]string{"groups": "group", "roles": "role", "permissions": "permission", "tenantIds": "tenant"}

// requirements reads a condition for the memberships it tests — `"x" in
// user.groups`, `sets.intersects(user.roles, ["a", "b"])` — and returns
// them in words (`group "x"`), in order, each once. They tell a person who
// lacks a scope what would give it to them, without showing the condition
// itself (which may name people, addresses or other internals). Other
// tests are not described; an empty result says nothing about the
// condition.
func requirements(src string) []string {
	e, err := env()
	if err != nil || src == "" {
		return nil
	}
	ast, iss := e.Compile(src)
	if iss.Err() != nil {
		return nil
	}
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	walk(ast.NativeRep().Expr(), add)
	return out
}

// walk visits calls, lists and selections below x.
func walk(x celast.Expr, add func(string)) {
	switch x.Kind() {
	case celast.CallKind:
		c := x.AsCall()
		describeCall(c, add)
		if c.IsMemberFunction() {
			walk(c.Target(), add)
		}
		for _, a := range c.Args() {
			walk(a, add)
		}
	case celast.ListKind:
		for _, el := range x.AsList().Elements() {
			walk(el, add)
		}
	case celast.SelectKind:
		walk(x.AsSelect().Operand(), add)
	}
}

// describeCall describes one membership test, if c is one.
func describeCall(c celast.CallExpr, add func(string)) {
	args := c.Args()
	switch c.FunctionName() {
	case "@in": // "x" in user.groups
		if len(args) == 2 {
			if what, ok := userList(args[1]); ok {
				if s, ok := stringLit(args[0]); ok {
					add(fmt.Sprintf("%s %q", what, s))
				}
			}
		}
	case "sets.intersects", "sets.contains": // sets.intersects(user.groups, ["a", "b"])
		if len(args) != 2 {
			return
		}
		what, ok := userList(args[0])
		list := args[1]
		if !ok && c.FunctionName() == "sets.intersects" {
			what, ok = userList(args[1])
			list = args[0]
		}
		if !ok || list.Kind() != celast.ListKind {
			return
		}
		for _, el := range list.AsList().Elements() {
			if s, ok := stringLit(el); ok {
				add(fmt.Sprintf("%s %q", what, s))
			}
		}
	}
}

// userList names the membership list x selects (user.groups: "group").
func userList(x celast.Expr) (string, bool) {
	if x.Kind() != celast.SelectKind {
		return "", false
	}
	sel := x.AsSelect()
	op := sel.Operand()
	if op.Kind() != celast.IdentKind || op.AsIdent() != "user" {
		return "", false
	}
	what, ok := memberFields[sel.FieldName()]
	return what, ok
}

func stringLit(x celast.Expr) (string, bool) {
	if x.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := x.AsLiteral().(types.String)
	return string(s), ok
}
