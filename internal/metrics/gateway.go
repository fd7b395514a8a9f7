package metrics

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpgate/mcpgate/internal/gateway"
)

// Gateway metrics are taken where every call is audited (gateway's
// audit line, through gateway.CallObserver): the same call, the same
// outcome, no identities.
type gatewayMetrics struct {
	refused  *prometheus.CounterVec
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	upstream *prometheus.CounterVec
}

// Outcomes of a call, as labels.
const (
	OutcomeAllowed = "allowed" // passed the checks and was served
	OutcomeDenied  = "denied"  // refused by an access check (scopes)
	OutcomeError   = "error"   // passed or failed otherwise: an error answer
)

// Other is the label of a name the config does not name, and of a message
// that touches no tool, resource or prompt.
const Other = "other"

func newGatewayMetrics() *gatewayMetrics {
	return &gatewayMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "gateway", Name: "refused_total",
			Help: "MCP requests the front door refused before any upstream was involved (Host/Origin, token, method, content type, size, " +
				"JSON-RPC syntax, protocol version, scopes, session header), by server and HTTP status.",
		}, []string{"server", "status"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "gateway", Name: "requests_total",
			Help: "JSON-RPC messages of audited MCP POSTs, by server, kind (tool, resource, prompt, other), " +
				"name (only names the config's tool rules name, else other), outcome (allowed, denied, error) and HTTP status class.",
		}, []string{"server", "kind", "name", "outcome", "status_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "gateway", Name: "request_duration_seconds",
			Help: "Time to serve an audited MCP POST that passed the checks (through its upstream; a streamed answer until its end), " +
				"by server and kind (of the first message touching a tool, resource or prompt; other for a POST touching none).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"server", "kind"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "gateway", Name: "upstream_errors_total",
			Help: "Audited MCP POSTs answered with an upstream failure, by server and reason (unavailable: unreachable, a broken answer, a lost connector; timeout).",
		}, []string{"server", "reason"}),
	}
}

func (g *gatewayMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(g.refused, g.requests, g.duration, g.upstream)
}

// Gateway returns the observer of one configuration's gateway; names are
// the tool, resource and prompt names that configuration knows.
func (m *Metrics) Gateway(names *Names) gateway.CallObserver {
	return &gatewayObserver{m: m.gateway, names: names}
}

type gatewayObserver struct {
	m     *gatewayMetrics
	names *Names
}

// ObserveCall counts c's messages and, once, its duration.
func (o *gatewayObserver) ObserveCall(c *gateway.Call) {
	outcome := Outcome(c.Outcome, c.Status)
	if c.Failed && outcome == OutcomeAllowed {
		outcome = OutcomeError
	}
	class := StatusClass(c.Status)
	for _, t := range c.Targets {
		kind, name := Other, Other
		if t.Kind != "" {
			kind, name = t.Kind, o.names.Label(c.Server, t.Kind, t.Name)
		}
		o.m.requests.WithLabelValues(c.Server, kind, name, outcome, class).Inc()
	}
	if outcome != OutcomeDenied {
		o.m.duration.WithLabelValues(c.Server, postKind(c.Targets)).Observe(c.Took.Seconds())
	}
	if r := upstreamReason(c); r != "" {
		o.m.upstream.WithLabelValues(c.Server, r).Inc()
	}
}

// ObserveRefusal counts a front-door refusal. The status is the
// gateway's own (a fixed set of codes), kept exact: 401, 403, 413 and
// 429 call for different actions.
func (o *gatewayObserver) ObserveRefusal(server string, status int) {
	code := "other"
	if status >= 100 && status <= 599 {
		code = strconv.Itoa(status)
	}
	o.m.refused.WithLabelValues(server, code).Inc()
}

// Outcome is the label of the audit line's outcome word and status: a
// refusal word ("denied: …") is denied; an allowed call answered with an
// error status, or any other refusal ("refused: invalid params"), is an
// error.
func Outcome(word string, status int) string {
	switch {
	case strings.HasPrefix(word, "denied"):
		return OutcomeDenied
	case word == OutcomeAllowed && status < 400:
		return OutcomeAllowed
	}
	return OutcomeError
}

// StatusClass is "2xx" … "5xx"; "none" for a status outside 100..599.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "none"
	}
	return strconv.Itoa(status/100) + "xx"
}

// upstreamReason names the upstream failure of an allowed call: the
// gateway's own (c.Upstream: unreachable, a broken answer, a lost
// connector, no answer in time), else an upstream's 502 or 504 passed
// through.
func upstreamReason(c *gateway.Call) string {
	if c.Outcome != OutcomeAllowed {
		return ""
	}
	if c.Upstream != "" {
		return c.Upstream
	}
	switch c.Status {
	case 502:
		return "unavailable"
	case 504:
		return "timeout"
	}
	return ""
}

// postKind is the kind of a POST for its latency: that of its first
// message touching something, so tool calls are not averaged with the
// notifications and lists around them.
func postKind(ts []gateway.CallTarget) string {
	for _, t := range ts {
		switch t.Kind {
		case "tool", "resource", "prompt":
			return t.Kind
		}
	}
	return Other
}
