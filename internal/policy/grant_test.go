package policy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

const (
	calRead  = "mcp:calendar.readonly"
	calWrite = "mcp:calendar.write"
)

var calendarScopes = []string{calRead, calWrite}

func mustCompile(t testing.TB, specs []Spec) *Set {
	t.Helper()
	set, problems := Compile(specs)
	if len(problems) > 0 {
		t.Fatalf("Compile: %v", problems)
	}
	return set
}

// s1 is scenario S1: the calendar server, "scheduler write" and "everyone else".
func s1(t testing.TB) *Set {
	return mustCompile(t, []Spec{
		{
			Name:  "scheduler write",
			When:  `"tenant-a" in user.tenantIds && "scheduler" in user.permissions`,
			Allow: []Allow{{Servers: []string{"calendar"}, Scopes: []string{calWrite, calRead}}},
		},
		{
			Name:  "everyone else",
			When:  "true",
			Allow: []Allow{{Servers: []string{"calendar"}, Scopes: []string{calRead}}},
		},
	})
}

var (
	sam = Input{
		User: User{
			Sub: "sam", Email: "sam@tenant-a.example",
			TenantIDs: []string{"tenant-a"}, Permissions: []string{"calendar", "scheduler"},
			Groups: []string{"Schedulers"},
		},
		Client: Client{ID: "claude", Name: "Claude", Type: ClientUserDelegated},
		Server: Server{Name: "calendar", Tenant: "tenant-a"},
	}
	riley = Input{
		User: User{
			Sub: "riley", Email: "riley@tenant-a.example",
			TenantIDs: []string{"tenant-a"}, Permissions: []string{"calendar"},
		},
		Client: Client{ID: "claude", Name: "Claude", Type: ClientUserDelegated},
		Server: Server{Name: "calendar", Tenant: "tenant-a"},
	}
)

func TestGrantScenarioS1(t *testing.T) {
	set := s1(t)
	onServer := func(in Input, server string) Input {
		in.Server = Server{Name: server, Tenant: "tenant-a"}
		return in
	}
	tests := []struct {
		name      string
		in        Input
		requested []string
		available []string
		want      []string
	}{
		{"sam gets write and readonly", sam, []string{calWrite, calRead}, calendarScopes, []string{calWrite, calRead}},
		{"sam empty request gets all allowed", sam, nil, calendarScopes, []string{calRead, calWrite}},
		{"sam asks only readonly", sam, []string{calRead}, calendarScopes, []string{calRead}},
		{"riley gets readonly only", riley, []string{calWrite, calRead}, calendarScopes, []string{calRead}},
		{"riley empty request", riley, nil, calendarScopes, []string{calRead}},
		{"riley asks write only", riley, []string{calWrite}, calendarScopes, nil},
		{"other tenant is not a scheduler", func() Input {
			in := sam
			in.User.TenantIDs = []string{"tenant-b"}
			return in
		}(), []string{calWrite, calRead}, calendarScopes, []string{calRead}},
		{"requested but not offered", sam, []string{calWrite, "mcp:calendar.admin"}, calendarScopes, []string{calWrite}},
		{"server offers nothing", sam, []string{calWrite}, nil, nil},
		{"duplicates requested once", sam, []string{calRead, calRead}, calendarScopes, []string{calRead}},
		{"policies are for another server", onServer(sam, "crm"), nil, []string{"mcp:read"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := set.Grant(tt.in, tt.requested, tt.available)
			if !slices.Equal(d.Granted, tt.want) {
				t.Errorf("Granted = %q, want %q\n%+v", d.Granted, tt.want, d)
			}
		})
	}
}

func TestGrantExplain(t *testing.T) {
	set := s1(t)
	d := set.Grant(riley, []string{calWrite, "mcp:calendar.admin"}, calendarScopes)
	want := []ScopeDecision{
		{Scope: calWrite, Reason: "no policy allows it (checked: scheduler write: condition false; everyone else: scope not allowed)"},
		{Scope: "mcp:calendar.admin", Reason: ReasonNotOffered},
		{Scope: calRead, Reason: ReasonNotRequested},
	}
	if !equalScopeDecisions(d.PerScope, want) {
		t.Errorf("PerScope:\n got %+v\nwant %+v", d.PerScope, want)
	}
	wantEval := []PolicyResult{{Name: "scheduler write"}, {Name: "everyone else", Matched: true}}
	if !slices.Equal(d.Evaluated, wantEval) {
		t.Errorf("Evaluated = %+v, want %+v", d.Evaluated, wantEval)
	}

	d = set.Grant(sam, nil, calendarScopes)
	want = []ScopeDecision{
		{Scope: calRead, Granted: true, By: []string{"scheduler write", "everyone else"}},
		{Scope: calWrite, Granted: true, By: []string{"scheduler write"}},
	}
	if !equalScopeDecisions(d.PerScope, want) {
		t.Errorf("PerScope:\n got %+v\nwant %+v", d.PerScope, want)
	}
}

func equalScopeDecisions(a, b []ScopeDecision) bool {
	return slices.EqualFunc(a, b, func(x, y ScopeDecision) bool {
		return x.Scope == y.Scope && x.Granted == y.Granted && x.Reason == y.Reason && slices.Equal(x.By, y.By)
	})
}

func TestGrantScenarioS5MachineAgent(t *testing.T) {
	set := mustCompile(t, []Spec{{
		Name:  "env bot",
		When:  `client.type == "machine" && client.id == "env-bot"`,
		Allow: []Allow{{Servers: []string{"environments"}, Scopes: []string{"env:read"}}},
	}})
	available := []string{"env:read", "org:write"}
	machine := func(id, typ string) Input {
		return Input{Client: Client{ID: id, Type: typ}, Server: Server{Name: "environments"}}
	}
	tests := []struct {
		name      string
		in        Input
		requested []string
		want      []string
	}{
		{"env-bot gets env:read", machine("env-bot", ClientMachine), []string{"env:read", "org:write"}, []string{"env:read"}},
		{"env-bot empty request", machine("env-bot", ClientMachine), nil, []string{"env:read"}},
		{"another machine client", machine("other-bot", ClientMachine), nil, nil},
		{"same id but user-delegated", machine("env-bot", ClientUserDelegated), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := set.Grant(tt.in, tt.requested, available).Granted; !slices.Equal(got, tt.want) {
				t.Errorf("Granted = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGrantScenarioS4AgentGroups(t *testing.T) {
	set := mustCompile(t, []Spec{
		{
			Name:  "partners read tenant-a crm",
			When:  `client.group == "partners"`,
			Allow: []Allow{{Servers: []string{"tenant-a-crm"}, Scopes: []string{"mcp:read"}}},
		},
		{
			Name:  "tenant members",
			When:  `client.group != "partners" && server.tenant in user.tenantIds`,
			Allow: []Allow{{Servers: []string{"tenant-*"}, Scopes: []string{"mcp:*"}}},
		},
		{
			Name:  "group Y writes on staging only",
			When:  `client.group == "Y"`,
			Allow: []Allow{{Servers: []string{"staging"}, Scopes: []string{"mcp:write"}}},
		},
	})
	available := []string{"mcp:read", "mcp:write"}
	in := func(group, server, tenant string) Input {
		return Input{
			User:   User{Sub: "ana", TenantIDs: []string{"tenant-a"}},
			Client: Client{ID: "agent", Group: group, Type: ClientUserDelegated},
			Server: Server{Name: server, Tenant: tenant},
		}
	}
	tests := []struct {
		name string
		in   Input
		want []string
	}{
		{"partner on tenant-a crm: read only", in("partners", "tenant-a-crm", "tenant-a"), []string{"mcp:read"}},
		{"partner on tenant-b crm: nothing", in("partners", "tenant-b-crm", "tenant-b"), nil},
		{"member on tenant-a crm: all", in("staff", "tenant-a-crm", "tenant-a"), []string{"mcp:read", "mcp:write"}},
		{"member on tenant-b crm: not their tenant", in("staff", "tenant-b-crm", "tenant-b"), nil},
		{"group Y on staging: write", in("Y", "staging", ""), []string{"mcp:write"}},
		{"group Y on production: nothing", in("Y", "production", ""), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := set.Grant(tt.in, available, available).Granted; !slices.Equal(got, tt.want) {
				t.Errorf("Granted = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGrantDefaultDeny(t *testing.T) {
	tests := []struct {
		name   string
		set    *Set
		reason string
	}{
		{"nil set", nil, `no policy allows it (no policy applies to server "calendar")`},
		{"empty set", mustCompile(t, nil), `no policy allows it (no policy applies to server "calendar")`},
		{"no condition holds", mustCompile(t, []Spec{
			{Name: "admins", When: `"admin" in user.roles`, Allow: []Allow{{Scopes: []string{"*"}}}},
			{Name: "never", When: "false", Allow: []Allow{{Scopes: []string{"*"}}}},
		}), "no policy allows it (checked: admins: condition false; never: condition false)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.set.Grant(sam, nil, calendarScopes)
			if len(d.Granted) != 0 {
				t.Fatalf("Granted = %q, want none", d.Granted)
			}
			for _, sd := range d.PerScope {
				if sd.Granted || sd.Reason != tt.reason {
					t.Errorf("%s: Granted=%v Reason=%q, want reason %q", sd.Scope, sd.Granted, sd.Reason, tt.reason)
				}
			}
		})
	}
}

func TestGrantEvaluationErrorFailsClosed(t *testing.T) {
	set := mustCompile(t, []Spec{
		{Name: "prod only", When: `server.labels["env"] == "prod"`, Allow: []Allow{{Scopes: []string{calWrite}}}},
		{Name: "everyone", Allow: []Allow{{Scopes: []string{calRead}}}},
	})
	d := set.Grant(sam, nil, calendarScopes) // sam's server has no labels
	if !slices.Equal(d.Granted, []string{calRead}) {
		t.Errorf("Granted = %q, want only %q", d.Granted, calRead)
	}
	if len(d.Evaluated) != 2 {
		t.Fatalf("Evaluated = %+v", d.Evaluated)
	}
	if r := d.Evaluated[0]; r.Matched || !strings.Contains(r.Err, "no such key") {
		t.Errorf("Evaluated[0] = %+v, want not matched with a no such key error", r)
	}
	if got, want := d.PerScope[1].Reason, "no policy allows it (checked: prod only: evaluation error; everyone: scope not allowed)"; got != want {
		t.Errorf("Reason = %q, want %q", got, want)
	}

	labelled := sam
	labelled.Server.Labels = map[string]string{"env": "prod"}
	if got := set.Grant(labelled, nil, calendarScopes).Granted; !slices.Equal(got, calendarScopes) {
		t.Errorf("with the label: Granted = %q, want %q", got, calendarScopes)
	}
}

func TestGrantPatterns(t *testing.T) {
	set := mustCompile(t, []Spec{
		{Name: "calendar", Allow: []Allow{{Servers: []string{"cal*"}, Scopes: []string{"mcp:calendar.*"}}}},
		{Name: "crm read", Allow: []Allow{{Servers: []string{"crm"}, Scopes: []string{"mcp:read"}}}},
		{Name: "anything on sandbox", Allow: []Allow{{Servers: []string{"sandbox"}, Scopes: []string{"*"}}}},
	})
	available := []string{calRead, calWrite, "mcp:calendarx", "mcp:read", "mcp:write"}
	tests := []struct {
		server string
		want   []string
	}{
		{"calendar", []string{calRead, calWrite}},
		{"calendar-eu", []string{calRead, calWrite}},
		{"crm", []string{"mcp:read"}},
		{"sandbox", available},
		{"other", nil},
	}
	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			in := sam
			in.Server.Name = tt.server
			if got := set.Grant(in, nil, available).Granted; !slices.Equal(got, tt.want) {
				t.Errorf("Granted = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGrantLongRequest(t *testing.T) {
	set := mustCompile(t, []Spec{{Name: "all", Allow: []Allow{{Scopes: []string{"s:*"}}}}})
	var requested, available, want []string
	for i := range 40 {
		s := fmt.Sprintf("s:%d", i)
		requested = append(requested, s, s) // every scope twice
		if i%2 == 0 {
			available = append(available, s)
			want = append(want, s)
		}
	}
	available = append(available, "s:extra")
	d := set.Grant(sam, requested, available)
	if !slices.Equal(d.Granted, want) {
		t.Errorf("Granted = %q, want %q", d.Granted, want)
	}
	if got, want := len(d.PerScope), 41; got != want {
		t.Errorf("len(PerScope) = %d, want %d", got, want)
	}
	if last := d.PerScope[len(d.PerScope)-1]; last.Scope != "s:extra" || last.Reason != ReasonNotRequested {
		t.Errorf("last PerScope = %+v", last)
	}
}

// TestGrantConcurrent runs decisions for different users at once, so that
// the race detector and the results check the pooled activations.
func TestGrantConcurrent(t *testing.T) {
	set := s1(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			in, want := sam, calendarScopes
			if i%2 == 1 {
				in, want = riley, []string{calRead}
			}
			for range 200 {
				if got := set.Grant(in, nil, calendarScopes).Granted; !slices.Equal(got, want) {
					t.Errorf("%s: Granted = %q, want %q", in.User.Sub, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
