package policy

import (
	"slices"
	"strings"
	"testing"
)

func bqHierarchy(t *testing.T) *Hierarchy {
	t.Helper()
	h, err := NewHierarchy("bq", map[string][]string{
		"mcp:bq":      {"mcp:bq.read", "mcp:bq.write.*"},
		"mcp:bq.read": {"mcp:bq.read.*"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHierarchyCovers(t *testing.T) {
	h := bqHierarchy(t)
	for _, tc := range []struct {
		held, need string
		want       bool
	}{
		{"mcp:bq", "mcp:bq", true},
		{"mcp:bq", "mcp:bq.read", true},
		{"mcp:bq", "mcp:bq.read.tables", true}, // transitive, through mcp:bq.read
		{"mcp:bq", "mcp:bq.write.rows", true},
		{"mcp:bq", "mcp:bq.write", false}, // "mcp:bq.write.*" needs the dot
		{"mcp:bq", "mcp:bqx", false},
		{"mcp:bq.read", "mcp:bq.read.tables", true},
		{"mcp:bq.read", "mcp:bq", false}, // narrower never covers broader
		{"mcp:bq.read", "mcp:bq.write.rows", false},
		{"mcp:other", "mcp:other", true},
		{"mcp:other", "mcp:bq.read", false},
		{"", "", false},
		{"mcp:bq", "", false},
	} {
		if got := h.Covers(tc.held, tc.need); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tc.held, tc.need, got, tc.want)
		}
	}
	var none *Hierarchy
	if !none.Covers("a", "a") || none.Covers("a", "a.b") {
		t.Error("a nil hierarchy covers exactly each scope itself")
	}
	if got := h.Covering("mcp:bq.read.tables"); !slices.Equal(got, []string{"mcp:bq", "mcp:bq.read"}) {
		t.Errorf("Covering = %v", got)
	}
	if got := h.Reduce([]string{"mcp:bq.read.x", "mcp:bq", "mcp:other", "mcp:bq"}); !slices.Equal(got, []string{"mcp:bq", "mcp:other"}) {
		t.Errorf("Reduce = %v", got)
	}
}

func TestNewHierarchyRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    map[string][]string
		want string
	}{
		{"glob key", map[string][]string{"mcp:*": {"mcp:a"}}, "not a valid scope"},
		{"empty list", map[string][]string{"mcp:a": nil}, "at least one"},
		{"inner star", map[string][]string{"mcp:a": {"mcp:*.x"}}, "only allowed at the end"},
		{"bad token", map[string][]string{"mcp:a": {"mcp: b"}}, "not a valid scope"},
		{"cycle", map[string][]string{"mcp:a": {"mcp:b"}, "mcp:b": {"mcp:a"}}, "circular"},
		{"long cycle", map[string][]string{"a": {"b"}, "b": {"c*"}, "c1": {"a"}}, "circular"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewHierarchy("s", tc.m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if h, err := NewHierarchy("s", nil); h != nil || err != nil {
		t.Fatalf("empty: %v %v", h, err)
	}
}

// A policy written for the broad scope grants the narrow scopes it covers,
// and a narrow scope is offered when its broad scope is.
func TestGrantWithinHierarchy(t *testing.T) {
	h := bqHierarchy(t)
	set := mustCompile(t, []Spec{
		{Name: "analysts", When: `"analysts" in user.groups`, Allow: []Allow{{Servers: []string{"bq"}, Scopes: []string{"mcp:bq"}}}},
		{Name: "readers", Allow: []Allow{{Servers: []string{"bq"}, Scopes: []string{"mcp:bq.read"}}}},
	})
	offered := []string{"mcp:bq", "mcp:bq.read"}
	analyst := Input{User: User{Sub: "a", Groups: []string{"analysts"}}, Server: Server{Name: "bq"}}
	reader := Input{User: User{Sub: "r"}, Server: Server{Name: "bq"}}
	for _, tc := range []struct {
		name      string
		in        Input
		requested []string
		h         *Hierarchy
		want      []string
	}{
		{"analyst gets a narrow write scope through mcp:bq", analyst, []string{"mcp:bq.write.rows"}, h, []string{"mcp:bq.write.rows"}},
		{"reader gets read tables through mcp:bq.read", reader, []string{"mcp:bq.read.tables"}, h, []string{"mcp:bq.read.tables"}},
		{"reader never gets write", reader, []string{"mcp:bq.write.rows", "mcp:bq"}, h, nil},
		{"without the hierarchy narrow scopes are not offered", analyst, []string{"mcp:bq.write.rows"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := set.GrantWithin(tc.in, tc.requested, offered, tc.h)
			if !slices.Equal(d.Granted, tc.want) {
				t.Fatalf("granted %v, want %v (%+v)", d.Granted, tc.want, d.PerScope)
			}
		})
	}
	g := set.Grantors("bq", "mcp:bq.write.rows", h)
	if len(g) != 1 || g[0].Name != "analysts" || g[0].When != `"analysts" in user.groups` {
		t.Fatalf("Grantors = %+v", g)
	}
	if g := set.Grantors("other", "mcp:bq.write.rows", h); len(g) != 0 {
		t.Fatalf("Grantors on another server = %+v", g)
	}
}

// TestRequirements: the memberships a condition tests, in words; nothing
// else of the condition.
func TestRequirements(t *testing.T) {
	for _, tc := range []struct {
		when string
		want []string
	}{
		{`"analysts" in user.groups`, []string{`group "analysts"`}},
		{`"admin" in user.roles || "ops" in user.permissions`, []string{`role "admin"`, `permission "ops"`}},
		{`sets.intersects(user.groups, ["a", "b"]) && user.email.endsWith("@corp.example")`, []string{`group "a"`, `group "b"`}},
		{`sets.intersects(["x"], user.groups)`, []string{`group "x"`}},
		{`"t1" in user.tenantIds && "analysts" in user.groups && "analysts" in user.groups`, []string{`tenant "t1"`, `group "analysts"`}},
		{`user.email == "ceo@corp.example"`, nil},
		{`client.group == "bots"`, nil},
		{`true`, nil},
		{``, nil},
	} {
		if got := requirements(tc.when); !slices.Equal(got, tc.want) {
			t.Errorf("requirements(%s) = %q, want %q", tc.when, got, tc.want)
		}
	}
}

// TestNarrowerIsTransitive: what the consent page says a broad scope
// includes is everything it covers, below the broad scopes it covers too.
func TestNarrowerIsTransitive(t *testing.T) {
	h := bqHierarchy(t)
	got := h.Narrower("mcp:bq")
	for _, want := range []string{"mcp:bq.read", "mcp:bq.write.*", "mcp:bq.read.*"} {
		if !slices.Contains(got, want) {
			t.Errorf("Narrower(mcp:bq) = %v, want it to include %s", got, want)
		}
	}
	if got := h.Narrower("mcp:bq.read"); !slices.Equal(got, []string{"mcp:bq.read.*"}) {
		t.Errorf("Narrower(mcp:bq.read) = %v", got)
	}
	if h.Narrower("mcp:bq.read.x") != nil {
		t.Error("a scope that is not broad includes something")
	}
}
