package metrics

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
)

// platformNames: a server whose tool rules name echo exactly, every
// "admin_*" tool, one resource and one prompt.
func platformNames() *Names {
	return NamesFrom(&config.Config{Servers: []config.Server{{Name: "platform", Tools: []config.ToolRule{
		{Match: "echo", Scope: "env:read"},
		{Match: "admin_*", Scope: "org:write"},
		{Match: "file:///etc/motd", Kind: "resource"},
		{Match: "greet", Kind: "prompt"},
	}}}})
}

func TestObserveCall(t *testing.T) {
	tool := func(name string) []gateway.CallTarget { return []gateway.CallTarget{{Kind: "tool", Name: name}} }
	tests := []struct {
		name    string
		call    gateway.Call
		labels  []string // server, kind, name, outcome, status_class of the one series counted
		count   float64
		latency bool   // the duration is observed
		up      string // upstream error reason counted; "" none
	}{
		{"allowed known tool", gateway.Call{Server: "platform", Targets: tool("echo"), Outcome: "allowed", Status: 200},
			[]string{"platform", "tool", "echo", "allowed", "2xx"}, 1, true, ""},
		{"glob rule names the series", gateway.Call{Server: "platform", Targets: tool("admin_reset"), Outcome: "allowed", Status: 200},
			[]string{"platform", "tool", "admin_*", "allowed", "2xx"}, 1, true, ""},
		{"unknown tool is other", gateway.Call{Server: "platform", Targets: tool("rm -rf /"), Outcome: "allowed", Status: 200},
			[]string{"platform", "tool", "other", "allowed", "2xx"}, 1, true, ""},
		{"denied by scope", gateway.Call{Server: "platform", Targets: tool("echo"), Outcome: "denied: insufficient scope", Status: 403},
			[]string{"platform", "tool", "echo", "denied", "4xx"}, 1, false, ""},
		{"step-up refusal in a 200", gateway.Call{Server: "platform", Targets: tool("echo"), Outcome: "denied: insufficient scope after step-up", Status: 200},
			[]string{"platform", "tool", "echo", "denied", "2xx"}, 1, false, ""},
		{"refused params is an error", gateway.Call{Server: "platform", Targets: tool("echo"), Outcome: "refused: invalid params", Status: 400},
			[]string{"platform", "tool", "echo", "error", "4xx"}, 1, true, ""},
		{"upstream unavailable", gateway.Call{Server: "platform", Targets: tool("echo"), Outcome: "allowed", Status: 502},
			[]string{"platform", "tool", "echo", "error", "5xx"}, 1, true, "unavailable"},
		{"upstream timeout", gateway.Call{Server: "platform", Targets: tool("echo"), Outcome: "allowed", Status: 504},
			[]string{"platform", "tool", "echo", "error", "5xx"}, 1, true, "timeout"},
		{"upstream failure answered under 200", gateway.Call{Server: "platform", Targets: tool("echo"), Outcome: "allowed", Status: 200, Failed: true, Upstream: "unavailable"},
			[]string{"platform", "tool", "echo", "error", "2xx"}, 1, true, "unavailable"},
		{"upstream timeout answered under 200", gateway.Call{Server: "platform", Targets: tool("echo"), Outcome: "allowed", Status: 200, Failed: true, Upstream: "timeout"},
			[]string{"platform", "tool", "echo", "error", "2xx"}, 1, true, "timeout"},
		{"gateway failure of its own", gateway.Call{Server: "platform", Targets: tool("echo"), Outcome: "allowed", Status: 503, Failed: true},
			[]string{"platform", "tool", "echo", "error", "5xx"}, 1, true, ""},
		{"message touching nothing", gateway.Call{Server: "platform", Targets: []gateway.CallTarget{{}}, Outcome: "allowed", Status: 200},
			[]string{"platform", "other", "other", "allowed", "2xx"}, 1, true, ""},
		{"known resource", gateway.Call{Server: "platform", Targets: []gateway.CallTarget{{Kind: "resource", Name: "file:///etc/motd"}}, Outcome: "allowed", Status: 200},
			[]string{"platform", "resource", "file:///etc/motd", "allowed", "2xx"}, 1, true, ""},
		{"tool rule does not name a prompt", gateway.Call{Server: "platform", Targets: []gateway.CallTarget{{Kind: "prompt", Name: "echo"}}, Outcome: "allowed", Status: 200},
			[]string{"platform", "prompt", "other", "allowed", "2xx"}, 1, true, ""},
		{"another server's rules do not apply", gateway.Call{Server: "open", Targets: tool("echo"), Outcome: "allowed", Status: 200},
			[]string{"open", "tool", "other", "allowed", "2xx"}, 1, true, ""},
		{"batch counts each message", gateway.Call{Server: "platform", Targets: []gateway.CallTarget{{Kind: "tool", Name: "echo"}, {Kind: "tool", Name: "echo"}, {}}, Outcome: "allowed", Status: 200},
			[]string{"platform", "tool", "echo", "allowed", "2xx"}, 2, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			tt.call.Took = 30 * time.Millisecond
			m.Gateway(platformNames()).ObserveCall(&tt.call)
			if got := testutil.ToFloat64(m.gateway.requests.WithLabelValues(tt.labels...)); got != tt.count {
				t.Errorf("requests%v = %v, want %v", tt.labels, got, tt.count)
			}
			wantObs := 0
			if tt.latency {
				wantObs = 1
			}
			if got := testutil.CollectAndCount(m.gateway.duration); got != wantObs {
				t.Errorf("latency series = %d, want %d", got, wantObs)
			}
			if tt.latency {
				want := fmt.Sprintf(`
mcpgate_gateway_request_duration_seconds_bucket{kind=%[2]q,server=%[1]q,le="0.025"} 0
mcpgate_gateway_request_duration_seconds_bucket{kind=%[2]q,server=%[1]q,le="0.05"} 1
`, tt.call.Server, tt.labels[1])
				if err := compareSome(m, want, "mcpgate_gateway_request_duration_seconds", `le="0.025"`, `le="0.05"`); err != nil {
					t.Error(err)
				}
				for _, mf := range mustGather(t, m) {
					if mf.GetName() != "mcpgate_gateway_request_duration_seconds" {
						continue
					}
					for _, l := range mf.GetMetric()[0].GetLabel() {
						if l.GetName() == "kind" && l.GetValue() != tt.labels[1] {
							t.Errorf("latency kind %q, want %q", l.GetValue(), tt.labels[1])
						}
					}
				}
			}
			for _, reason := range []string{"unavailable", "timeout"} {
				want := 0.0
				if reason == tt.up {
					want = 1
				}
				if got := testutil.ToFloat64(m.gateway.upstream.WithLabelValues(tt.call.Server, reason)); got != want {
					t.Errorf("upstream_errors{%s} = %v, want %v", reason, got, want)
				}
			}
		})
	}
}

// compareSome checks that the exposition of name has the lines of want
// that contain one of the markers.
func compareSome(m *Metrics, want, name string, markers ...string) error {
	mfs, err := m.reg.Gather()
	if err != nil {
		return err
	}
	var got strings.Builder
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, b := range mt.GetHistogram().GetBucket() {
				fmt.Fprintf(&got, "le=%q %d\n", fmt.Sprint(b.GetUpperBound()), b.GetCumulativeCount())
			}
		}
	}
	for _, line := range strings.Split(want, "\n") {
		for _, mk := range markers {
			if !strings.Contains(line, mk) {
				continue
			}
			le := mk[len(`le="`) : len(mk)-1]
			n := line[strings.LastIndex(line, " ")+1:]
			if !strings.Contains(got.String(), fmt.Sprintf("le=%q %s\n", le, n)) {
				return fmt.Errorf("bucket %s: want %s, have\n%s", le, n, got.String())
			}
		}
	}
	return nil
}

// TestToolNameCardinality: a client sending 10,000 distinct tool names
// (and resource URIs, and prompt names), allowed, denied and failing,
// creates a number of series bounded by the config, not by the client.
func TestToolNameCardinality(t *testing.T) {
	m := New()
	o := m.Gateway(platformNames())
	outcomes := []struct {
		word   string
		status int
	}{{"allowed", 200}, {"denied: insufficient scope", 403}, {"allowed", 502}, {"refused: invalid params", 400}}
	for i := range 10000 {
		oc := outcomes[i%len(outcomes)]
		name := fmt.Sprintf("attacker_tool_%d_%s", i, strings.Repeat("x", i%300))
		o.ObserveCall(&gateway.Call{Server: "platform", Outcome: oc.word, Status: oc.status, Targets: []gateway.CallTarget{
			{Kind: "tool", Name: name}, {Kind: "resource", Name: "file:///" + name}, {Kind: "prompt", Name: name}, {Kind: "tool", Name: "admin_" + name},
		}})
	}
	// kinds tool/resource/prompt × names (other, plus admin_* for tools) × 4 outcome/status pairs.
	const bound = (2 + 1 + 1) * 4
	if n := testutil.CollectAndCount(m.gateway.requests); n > bound {
		t.Errorf("%d request series after 10,000 distinct names, want at most %d", n, bound)
	}
	if n := testutil.CollectAndCount(m.gateway.duration); n != 1 {
		t.Errorf("%d latency series, want 1 (per server and kind)", n)
	}
	if got := testutil.ToFloat64(m.gateway.requests.WithLabelValues("platform", "tool", "other", "allowed", "2xx")); got != 2500 {
		t.Errorf("unknown tools allowed = %v, want 2500", got)
	}
	for _, mf := range mustGather(t, m) {
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if strings.Contains(l.GetValue(), "attacker") {
					t.Fatalf("a client-chosen name became a label: %s %v", mf.GetName(), mt.GetLabel())
				}
			}
		}
	}
}

func TestNamesLabel(t *testing.T) {
	n := platformNames()
	tests := []struct{ server, kind, name, want string }{
		{"platform", "tool", "echo", "echo"},
		{"platform", "tool", "echo2", "other"},
		{"platform", "tool", "admin_", "admin_*"},
		{"platform", "tool", "admin_x", "admin_*"},
		{"platform", "tool", "xadmin_x", "other"},
		{"platform", "resource", "file:///etc/motd", "file:///etc/motd"},
		{"platform", "resource", "echo", "other"},
		{"platform", "prompt", "greet", "greet"},
		{"elsewhere", "tool", "echo", "other"},
	}
	for _, tt := range tests {
		if got := n.Label(tt.server, tt.kind, tt.name); got != tt.want {
			t.Errorf("Label(%s, %s, %q) = %q, want %q", tt.server, tt.kind, tt.name, got, tt.want)
		}
	}
	if got := (*Names)(nil).Label("platform", "tool", "echo"); got != Other {
		t.Errorf("nil Names: %q", got)
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true}, {"*", "anything", true},
		{"a*", "a", true}, {"a*", "ab", true}, {"a*", "ba", false},
		{"*b", "ab", true}, {"*b", "ba", false},
		{"a*b*c", "abc", true}, {"a*b*c", "aXbYc", true}, {"a*b*c", "acb", false},
		{"a*a", "a", false}, {"a*a", "aa", true},
		{"ab*ba", "aba", false}, {"ab*ba", "abba", true},
		{"**", "x", true}, {"x", "x", true}, {"x", "y", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestOutcomeAndStatusClass(t *testing.T) {
	tests := []struct {
		word   string
		status int
		want   string
		class  string
	}{
		{"allowed", 200, OutcomeAllowed, "2xx"},
		{"allowed", 202, OutcomeAllowed, "2xx"},
		{"allowed", 404, OutcomeError, "4xx"},
		{"allowed", 500, OutcomeError, "5xx"},
		{"denied: insufficient scope", 403, OutcomeDenied, "4xx"},
		{"refused: invalid params", 400, OutcomeError, "4xx"},
		{"allowed", 0, OutcomeAllowed, "none"},
		{"allowed", 600, OutcomeError, "none"},
	}
	for _, tt := range tests {
		if got := Outcome(tt.word, tt.status); got != tt.want {
			t.Errorf("Outcome(%q, %d) = %q, want %q", tt.word, tt.status, got, tt.want)
		}
		if got := StatusClass(tt.status); got != tt.class {
			t.Errorf("StatusClass(%d) = %q, want %q", tt.status, got, tt.class)
		}
	}
}

// FuzzGlobMatch checks globMatch against a regular expression with the
// meaning of `tools:` patterns ("*" is any run of bytes, nothing else is
// special): a tool name is attacker input.
func FuzzGlobMatch(f *testing.F) {
	for _, s := range [][2]string{{"a*b*c", "aXbYc"}, {"ab*ba", "aba"}, {"*", ""}, {"a.*", "a.b"}, {"**x", "yx"}, {"[a]*", "[a]b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		parts := strings.Split(pattern, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re, err := regexp.Compile(`^(?s:` + strings.Join(parts, ".*") + `)$`)
		if err != nil || !utf8.ValidString(pattern) || !utf8.ValidString(name) {
			return // the reference works on valid UTF-8 only
		}
		if got, want := globMatch(pattern, name), re.MatchString(name); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, want %v", pattern, name, got, want)
		}
	})
}

func TestObserveRefusal(t *testing.T) {
	m := New()
	o := m.Gateway(nil)
	for _, st := range []int{401, 401, 403, 429, 0, 1000} {
		o.ObserveRefusal("platform", st)
	}
	tests := []struct {
		status string
		want   float64
	}{{"401", 2}, {"403", 1}, {"429", 1}, {"other", 2}, {"500", 0}}
	for _, tt := range tests {
		if got := testutil.ToFloat64(m.gateway.refused.WithLabelValues("platform", tt.status)); got != tt.want {
			t.Errorf("refused{%s} = %v, want %v", tt.status, got, tt.want)
		}
	}
}

// BenchmarkObserveCall is the metrics cost added to one audited tool call.
func BenchmarkObserveCall(b *testing.B) {
	o := New().Gateway(platformNames())
	c := &gateway.Call{Server: "platform", Targets: []gateway.CallTarget{{Kind: "tool", Name: "admin_reset"}}, Outcome: "allowed", Status: 200, Took: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		o.ObserveCall(c)
	}
}
