package policy

import (
	"strings"
	"testing"
)

func TestCompileProblems(t *testing.T) {
	ok := []Allow{{Scopes: []string{"mcp:read"}}}
	tests := []struct {
		name  string
		specs []Spec
		want  []Problem // Message is matched as substrings separated by "|"
	}{
		{
			name:  "typo in field name",
			specs: []Spec{{Name: "p", When: `"scheduler" in user.permision`, Allow: ok}},
			want:  []Problem{{0, "when", "1:20: undefined field 'permision'|user.permision"}},
		},
		{
			name:  "undeclared variable",
			specs: []Spec{{Name: "p", When: `usr.sub == "x"`, Allow: ok}},
			want:  []Problem{{0, "when", "1:1: undeclared reference to 'usr'"}},
		},
		{
			name:  "syntax error",
			specs: []Spec{{Name: "p", When: `client.id == `, Allow: ok}},
			want:  []Problem{{0, "when", "1:14: Syntax error"}},
		},
		{
			name:  "type mismatch",
			specs: []Spec{{Name: "p", When: `user.roles == "admin"`, Allow: ok}},
			want:  []Problem{{0, "when", "found no matching overload for '_==_'"}},
		},
		{
			name:  "non-bool result",
			specs: []Spec{{Name: "p", When: `user.email`, Allow: ok}},
			want:  []Problem{{0, "when", "must be a bool expression, but its type is string"}},
		},
		{
			name:  "dyn result is not bool",
			specs: []Spec{{Name: "p", When: `dyn(true)`, Allow: ok}},
			want:  []Problem{{0, "when", "but its type is dyn"}},
		},
		{
			name: "names",
			specs: []Spec{
				{Name: "", Allow: ok},
				{Name: "a", Allow: ok},
				{Name: "a", Allow: ok},
			},
			want: []Problem{
				{0, "name", "must not be empty"},
				{2, "name", `"a" is also the name of policy 1`},
			},
		},
		{
			name: "allow entries",
			specs: []Spec{
				{Name: "no allow"},
				{Name: "bad", Allow: []Allow{
					{Scopes: []string{"ok", "mcp:*:write", "two words", ""}},
					{Servers: []string{"crm", "", "a*b"}},
				}},
			},
			want: []Problem{
				{0, "allow", "at least one entry"},
				{1, "allow[0].scopes[1]", `"*" is only allowed at the end`},
				{1, "allow[0].scopes[2]", "not a valid scope"},
				{1, "allow[0].scopes[3]", "must not be empty"},
				{1, "allow[1].servers[1]", "must not be empty"},
				{1, "allow[1].servers[2]", `"*" is only allowed at the end`},
				{1, "allow[1].scopes", "at least one scope"},
			},
		},
		{
			name: "every problem at once",
			specs: []Spec{
				{Name: "fine", When: "true", Allow: ok},
				{Name: "typo", When: "client.grup == 'x'", Allow: ok},
				{Name: "number", When: "1 + 1", Allow: ok},
			},
			want: []Problem{
				{1, "when", "undefined field 'grup'"},
				{2, "when", "but its type is int"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, got := Compile(tt.specs)
			if set != nil {
				t.Errorf("Compile returned a Set despite problems")
			}
			if len(got) != len(tt.want) {
				t.Fatalf("problems = %v, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Index != w.Index || g.Field != w.Field {
					t.Errorf("problem %d at %d %q, want %d %q", i, g.Index, g.Field, w.Index, w.Field)
				}
				for part := range strings.SplitSeq(w.Message, "|") {
					if !strings.Contains(g.Message, part) {
						t.Errorf("problem %d message %q does not contain %q", i, g.Message, part)
					}
				}
			}
		})
	}
}

func TestProblemError(t *testing.T) {
	p := Problem{Index: 2, Field: "allow[0].scopes[1]", Message: "bad"}
	if got, want := p.Error(), "policy 2: allow[0].scopes[1]: bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestCheckExpression(t *testing.T) {
	tests := []struct {
		expr    string
		wantErr string // "" means valid
	}{
		{`"tenant-a" in user.tenantIds && "scheduler" in user.permissions`, ""},
		{`client.type == "machine" && client.id == "env-bot"`, ""},
		{`client.group == "partners" && server.name == "tenant-a-crm"`, ""},
		{`server.labels["env"] == "prod" || "staging" in server.labels`, ""},
		{`server.labels[?"env"].orValue("dev") == "dev"`, ""},
		{`user.email.endsWith("@tenant-a.example") && has(user.sub)`, ""},
		{`user.groups.exists(g, g.startsWith("cs-"))`, ""},
		{`sets.intersects(user.roles, ["admin", "owner"])`, ""},
		{`user.email.lowerAscii().split("@")[1] == "tenant-a.example"`, ""},
		{`type(user) == mcpgate.User`, ""},
		{`user.permision == "x"`, "undefined field 'permision'"},
		{`user.sub`, "must be a bool expression"},
		{`user.sub ==`, "Syntax error"},
		{`mcpgate.User{sub: "x"}.sub == "x"`, ""}, // type-checks; fails at run time
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			err := CheckExpression(tt.expr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestConditions checks what the CEL variables hold at run time, through
// the typed fields, dynamic access and presence tests.
func TestConditions(t *testing.T) {
	in := Input{
		User: User{
			Sub: "sam", Email: "Sam@Tenant-A.example",
			TenantIDs: []string{"tenant-a", "tenant-c"}, Roles: []string{"admin", "dev"},
			Permissions: []string{"scheduler"}, Groups: []string{"cs-engineering"},
		},
		Client: Client{ID: "claude", Name: "Claude", Group: "agents", Type: ClientUserDelegated},
		Server: Server{Name: "calendar", Tenant: "tenant-a", Labels: map[string]string{"env": "prod"}},
	}
	tests := []struct {
		expr    string
		want    bool
		wantErr string
	}{
		{`user.sub == "sam" && user.email == "Sam@Tenant-A.example"`, true, ""},
		{`user.email.lowerAscii().endsWith("@tenant-a.example")`, true, ""},
		{`server.tenant in user.tenantIds`, true, ""},
		{`"tenant-b" in user.tenantIds`, false, ""},
		{`size(user.roles) == 2 && user.roles[1] == "dev"`, true, ""},
		{`user.roles == ["admin", "dev"] && ["admin", "dev"] == user.roles`, true, ""},
		{`user.roles + ["x"] == ["admin", "dev", "x"]`, true, ""},
		{`user.groups.exists(g, g.startsWith("cs-"))`, true, ""},
		{`user.roles.all(r, r != "root")`, true, ""},
		{`sets.contains(user.permissions, ["scheduler"])`, true, ""},
		{`sets.intersects(user.groups, ["csm"])`, false, ""},
		{`client.id == "claude" && client.name == "Claude" && client.group == "agents"`, true, ""},
		{`client.type == "user-delegated"`, true, ""},
		{`server.name == "calendar" && server.labels["env"] == "prod"`, true, ""},
		{`"env" in server.labels && !("region" in server.labels)`, true, ""},
		{`server.labels[?"region"].orValue("eu") == "eu"`, true, ""},
		{`has(user.email) && has(server.labels) && has(user.tenantIds) && has(client.name)`, true, ""},
		{`dyn(user).sub == "sam" && has(dyn(client).group)`, true, ""},
		{`type(user) == mcpgate.User && type(client) != mcpgate.User`, true, ""},
		{`server.labels["region"] == "eu"`, false, "no such key"},
		{`dyn(user).nope == "x"`, false, "no such field"},
		{`mcpgate.User{sub: "x"}.sub == "x"`, false, "cannot be constructed"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			set := mustCompile(t, []Spec{{Name: "p", When: tt.expr, Allow: []Allow{{Scopes: []string{"s"}}}}})
			d := set.Grant(in, nil, []string{"s"})
			r := d.Evaluated[0]
			if r.Matched != tt.want {
				t.Errorf("Matched = %v, want %v (err %q)", r.Matched, tt.want, r.Err)
			}
			switch {
			case tt.wantErr == "" && r.Err != "":
				t.Errorf("unexpected error %q", r.Err)
			case tt.wantErr != "" && !strings.Contains(r.Err, tt.wantErr):
				t.Errorf("Err = %q, want one containing %q", r.Err, tt.wantErr)
			}
			if got := len(d.Granted) == 1; got != tt.want {
				t.Errorf("granted = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEmptyInput makes sure that absent values (nil lists and maps) are
// empty, not errors.
func TestEmptyInput(t *testing.T) {
	set := mustCompile(t, []Spec{{
		Name:  "p",
		When:  `size(user.roles) == 0 && !("x" in user.groups) && size(server.labels) == 0 && !has(user.sub) && client.id == ""`,
		Allow: []Allow{{Scopes: []string{"s"}}},
	}})
	d := set.Grant(Input{}, nil, []string{"s"})
	if r := d.Evaluated[0]; !r.Matched {
		t.Errorf("Evaluated = %+v, want matched", r)
	}
}
