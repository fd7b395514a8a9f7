package policy

import "testing"

// s1Specs are scenario S1's policies plus a machine-agent policy, so that
// one of the three does not apply to the calendar server.
func s1Specs() []Spec {
	return []Spec{
		{
			Name:  "scheduler write",
			When:  `"tenant-a" in user.tenantIds && "scheduler" in user.permissions`,
			Allow: []Allow{{Servers: []string{"calendar"}, Scopes: []string{"mcp:calendar.write", "mcp:calendar.readonly"}}},
		},
		{
			Name:  "env bot",
			When:  `client.type == "machine" && client.id == "env-bot"`,
			Allow: []Allow{{Servers: []string{"environments"}, Scopes: []string{"env:read"}}},
		},
		{
			Name:  "everyone else",
			When:  `true`,
			Allow: []Allow{{Servers: []string{"*"}, Scopes: []string{"mcp:calendar.readonly"}}},
		},
	}
}

func BenchmarkGrant(b *testing.B) {
	set, problems := Compile(s1Specs())
	if len(problems) > 0 {
		b.Fatal(problems)
	}
	available := []string{"mcp:calendar.readonly", "mcp:calendar.write"}
	sam := Input{
		User: User{
			Sub: "sam", Email: "sam@tenant-a.example",
			TenantIDs:   []string{"tenant-a"},
			Permissions: []string{"calendar", "scheduler"},
			Groups:      []string{"Schedulers"},
		},
		Client: Client{ID: "claude", Type: ClientUserDelegated},
		Server: Server{Name: "calendar", Tenant: "tenant-a"},
	}
	riley := sam
	riley.User.Sub, riley.User.Permissions = "riley", []string{"calendar"}
	for _, bc := range []struct {
		name      string
		in        Input
		requested []string
	}{
		{"sam/requested", sam, []string{"mcp:calendar.write", "mcp:calendar.readonly"}},
		{"sam/all", sam, nil},
		{"riley/requested", riley, []string{"mcp:calendar.write", "mcp:calendar.readonly"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d := set.Grant(bc.in, bc.requested, available)
				if len(d.Granted) == 0 {
					b.Fatal("nothing granted")
				}
			}
		})
	}
}

// BenchmarkCondition measures one compiled condition alone, without the
// bookkeeping and explanation of Grant.
func BenchmarkCondition(b *testing.B) {
	set, problems := Compile(s1Specs())
	if len(problems) > 0 {
		b.Fatal(problems)
	}
	in := Input{User: User{TenantIDs: []string{"tenant-a"}, Permissions: []string{"calendar", "scheduler"}}}
	p := &set.policies[0]
	b.ReportAllocs()
	for b.Loop() {
		a := getActivation(&in)
		if ok, _ := p.eval(a); !ok {
			b.Fatal("no match")
		}
		a.release()
	}
}

func BenchmarkRequired(b *testing.B) {
	rules := []ToolRule{
		{Pattern: "list_events", Scope: "mcp:calendar.readonly"},
		{Pattern: "check_availability", Scope: "mcp:calendar.readonly"},
		{Pattern: "*_event", Scope: "mcp:calendar.write"},
		{Pattern: "health", Scope: ""},
	}
	ts, err := NewToolScopes("calendar", rules, func(tool string) string { return "mcp:" + tool })
	if err != nil {
		b.Fatal(err)
	}
	for _, tool := range []string{"list_events", "create_event", "export_ics"} {
		b.Run(tool, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ts.Required(tool) == "" {
					b.Fatal("no scope")
				}
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				_ = ts.Required([]string{"list_events", "create_event", "export_ics"}[i%3])
				i++
			}
		})
	})
}
