package policy

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func oneToOne(tool string) string { return "mcp:" + tool }

func TestToolScopesRequired(t *testing.T) {
	ts, err := NewToolScopes("calendar", []ToolRule{
		{Pattern: "list_events", Scope: calRead},
		{Pattern: "check_availability", Scope: calRead},
		{Pattern: "ping", Scope: ""},
		{Pattern: "*_event", Scope: calWrite},
		{Pattern: "admin.*.purge", Scope: "mcp:admin"},
		{Pattern: "admin.*", Scope: "mcp:admin.read"},
		{Kind: KindResource, Pattern: "calendar://public/*", Scope: ""},
		{Kind: KindResource, Pattern: "calendar://*", Scope: calRead},
		{Kind: KindPrompt, Pattern: "schedule_meeting", Scope: calWrite},
	}, oneToOne)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		lookup func(string) string
		arg    string
		want   string
	}{
		{"exact rule", ts.Required, "list_events", calRead},
		{"exact rule, no scope", ts.Required, "ping", ""},
		{"glob suffix", ts.Required, "create_event", calWrite},
		{"glob suffix, other tool", ts.Required, "delete_event", calWrite},
		{"glob needs the whole suffix", ts.Required, "list_events_v2", "mcp:list_events_v2"},
		{"inner star, first rule wins", ts.Required, "admin.users.purge", "mcp:admin"},
		{"later glob", ts.Required, "admin.users.list", "mcp:admin.read"},
		{"default one-to-one", ts.Required, "export_ics", "mcp:export_ics"},
		{"default is cached and stable", ts.Required, "export_ics", "mcp:export_ics"},
		{"tool rules do not apply to prompts", ts.RequiredPrompt, "list_events", ""},
		{"prompt exact", ts.RequiredPrompt, "schedule_meeting", calWrite},
		{"prompt without rule needs no scope", ts.RequiredPrompt, "other", ""},
		{"resource, first glob wins", ts.RequiredResource, "calendar://public/holidays", ""},
		{"resource glob spans slashes", ts.RequiredResource, "calendar://team/a/b", calRead},
		{"resource without rule", ts.RequiredResource, "file:///etc/passwd", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.lookup(tt.arg); got != tt.want {
				t.Errorf("%q: got %q, want %q", tt.arg, got, tt.want)
			}
		})
	}
	if ts.Server() != "calendar" {
		t.Errorf("Server() = %q", ts.Server())
	}
}

func TestToolScopesPrecedence(t *testing.T) {
	tests := []struct {
		name  string
		rules []ToolRule
		tool  string
		want  string
	}{
		{"exact before glob", []ToolRule{
			{Pattern: "delete_event", Scope: "mcp:calendar.admin"},
			{Pattern: "*_event", Scope: calWrite},
		}, "delete_event", "mcp:calendar.admin"},
		{"glob before a glob it overlaps", []ToolRule{
			{Pattern: "*_event", Scope: calWrite},
			{Pattern: "delete_*", Scope: "mcp:calendar.admin"},
		}, "delete_event", calWrite},
		{"overlapping glob, other order", []ToolRule{
			{Pattern: "delete_*", Scope: "mcp:calendar.admin"},
			{Pattern: "*_event", Scope: calWrite},
		}, "delete_event", "mcp:calendar.admin"},
		{"catch-all replaces the default", []ToolRule{
			{Pattern: "list_events", Scope: calRead},
			{Pattern: "*", Scope: calWrite},
		}, "anything", calWrite},
		{"no rules: default", nil, "list_events", "mcp:list_events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := NewToolScopes("s", tt.rules, oneToOne)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // computed, then cached
				if got := ts.Required(tt.tool); got != tt.want {
					t.Errorf("Required(%q) = %q, want %q", tt.tool, got, tt.want)
				}
			}
		})
	}
}

func TestNewToolScopesErrors(t *testing.T) {
	tests := []struct {
		name    string
		rules   []ToolRule
		def     func(string) string
		wantErr []string
	}{
		{"nil default", nil, nil, []string{"no default scope function"}},
		{"unknown kind", []ToolRule{{Kind: "tools", Pattern: "a", Scope: "s"}}, oneToOne, []string{`unknown kind "tools"`}},
		{"empty pattern", []ToolRule{{Pattern: "", Scope: "s"}}, oneToOne, []string{"empty pattern"}},
		{"bad scope", []ToolRule{{Pattern: "a", Scope: "two words"}, {Pattern: "b", Scope: "mcp:*"}}, oneToOne,
			[]string{`rule 0 (tool "a"): "two words" is not a valid scope`, `rule 1 (tool "b"): "mcp:*" is not a valid scope`}},
		{"duplicate exact", []ToolRule{{Pattern: "a", Scope: "s"}, {Pattern: "a", Scope: "t"}}, oneToOne,
			[]string{`rule 1 (tool "a"): never applies: an earlier rule "a" matches first`}},
		{"exact after matching glob", []ToolRule{{Pattern: "*_event", Scope: "w"}, {Pattern: "delete_event", Scope: "admin"}}, oneToOne,
			[]string{`rule 1 (tool "delete_event"): never applies: an earlier rule "*_event"`}},
		{"anything after catch-all", []ToolRule{{Pattern: "*", Scope: "r"}, {Pattern: "write_*", Scope: "w"}}, oneToOne,
			[]string{`rule 1 (tool "write_*"): never applies`}},
		{"narrower prefix after wider", []ToolRule{{Pattern: "bq.*", Scope: "r"}, {Pattern: "bq.write.*", Scope: "w"}}, oneToOne,
			[]string{`rule 1 (tool "bq.write.*"): never applies`}},
		{"every error at once", []ToolRule{{Kind: "x", Pattern: "a"}, {Pattern: ""}}, oneToOne,
			[]string{"rule 0", "rule 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := NewToolScopes("calendar", tt.rules, tt.def)
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			if ts != nil {
				t.Error("got ToolScopes despite the error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), `server "calendar"`) {
				t.Errorf("error %q does not name the server", err)
			}
		})
	}
}

func TestToolScopesKindsAreSeparate(t *testing.T) {
	// The same pattern under different kinds is not a duplicate.
	_, err := NewToolScopes("s", []ToolRule{
		{Pattern: "x", Scope: "a"},
		{Kind: KindPrompt, Pattern: "x", Scope: "b"},
		{Kind: KindResource, Pattern: "x", Scope: "c"},
	}, oneToOne)
	if err != nil {
		t.Fatal(err)
	}
}

func TestToolScopesCacheIsBounded(t *testing.T) {
	ts, err := NewToolScopes("s", []ToolRule{{Pattern: "*_event", Scope: calWrite}}, oneToOne)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cacheLimit + 100 {
		tool := fmt.Sprintf("tool%d", i)
		if got := ts.Required(tool); got != "mcp:"+tool {
			t.Fatalf("Required(%q) = %q", tool, got)
		}
	}
	if n := ts.tables[0].cached.Load(); n != cacheLimit {
		t.Errorf("cached %d names, want the limit %d", n, cacheLimit)
	}
	if got := ts.Required("tool_event"); got != calWrite {
		t.Errorf("past the limit: Required = %q, want %q", got, calWrite)
	}
}

func TestToolScopesConcurrent(t *testing.T) {
	ts, err := NewToolScopes("s", []ToolRule{{Pattern: "*_event", Scope: calWrite}}, oneToOne)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				tool := fmt.Sprintf("t%d", (i+g)%50)
				if got := ts.Required(tool); got != "mcp:"+tool {
					t.Errorf("Required(%q) = %q", tool, got)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true},
		{"*", "anything/at/all", true},
		{"a*", "a", true},
		{"a*", "ab", true},
		{"a*", "ba", false},
		{"*b", "ab", true},
		{"*b", "abc", false},
		{"a*c", "abbbc", true},
		{"a*c", "abbbcd", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXcYb", false},
		{"**", "x", true},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"*_event", "create_event", true},
		{"*_event", "create_events", false},
		{"calendar://*", "calendar://a/b", true},
		{strings.Repeat("*a", 20) + "b", strings.Repeat("a", 60), false}, // no exponential blow-up
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}
