package metrics

import (
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpgate/mcpgate/internal/connector"
)

// Connector metrics come from the hub: its live instances are read at
// each scrape (a collector over Hub.Status, the same list `mcpgate
// connectors status` shows for this replica), its events are counted as
// they happen (connector.Observer).

// MaxInstanceSeries bounds the instances of one connector that get
// series of their own; the hub already refuses more than
// connector.MaxInstances live ones. MaxLabelLen bounds an instance id
// or version as a label (connectors choose them).
var (
	MaxInstanceSeries = 32
	MaxLabelLen       = 64
)

// StatusSource lists the live connector instances (connector.Hub).
type StatusSource interface {
	Status() []connector.InstanceStatus
}

var (
	descInstances = prometheus.NewDesc(Namespace+"_connector_instances",
		"Live instances of each configured connector.", []string{"connector"}, nil)
	descLastSeen = prometheus.NewDesc(Namespace+"_connector_instance_last_seen_timestamp_seconds",
		"When the gateway last heard from a live connector instance (unix seconds).", []string{"connector", "instance"}, nil)
	descConnectedAt = prometheus.NewDesc(Namespace+"_connector_instance_connected_timestamp_seconds",
		"When a live connector instance connected (unix seconds).", []string{"connector", "instance"}, nil)
	descStreams = prometheus.NewDesc(Namespace+"_connector_instance_streams",
		"Streams open on a live connector instance's connection.", []string{"connector", "instance"}, nil)
	descInfo = prometheus.NewDesc(Namespace+"_connector_instance_info",
		"A live connector instance, with the version it announced (always 1).", []string{"connector", "instance", "version"}, nil)
)

// statusCollector reports the hub's live instances at scrape time, so
// departed instances leave no series behind.
type statusCollector struct {
	src        StatusSource
	configured func() []string // connector names in the current config
}

// Connectors registers the live-instance metrics of src (once per
// Metrics: a second call panics on the duplicate registration) and
// returns the observer of its events; configured lists the configured
// connector names (a configured connector with no live instance shows 0,
// which is what an alert needs).
func (m *Metrics) Connectors(src StatusSource, configured func() []string) connector.Observer {
	m.reg.MustRegister(&statusCollector{src: src, configured: configured})
	return m.conn
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInstances, descLastSeen, descConnectedAt, descStreams, descInfo} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	if c.configured != nil {
		for _, name := range c.configured() {
			counts[name] = 0
		}
	}
	series := map[string]int{}
	for _, in := range c.src.Status() {
		counts[in.Connector]++
		if series[in.Connector] >= MaxInstanceSeries {
			continue
		}
		series[in.Connector]++
		id := label(in.Instance)
		ch <- prometheus.MustNewConstMetric(descLastSeen, prometheus.GaugeValue, unixSeconds(in.LastSeen.UnixNano()), in.Connector, id)
		ch <- prometheus.MustNewConstMetric(descConnectedAt, prometheus.GaugeValue, unixSeconds(in.ConnectedAt.UnixNano()), in.Connector, id)
		ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(in.Streams), in.Connector, id)
		ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, in.Connector, id, label(in.Version))
	}
	for name, n := range counts {
		ch <- prometheus.MustNewConstMetric(descInstances, prometheus.GaugeValue, float64(n), name)
	}
}

func unixSeconds(ns int64) float64 { return float64(ns) / 1e9 }

// label bounds a connector-chosen string as a label value: valid UTF-8,
// at most MaxLabelLen bytes (a longer one is cut and marked with "…"
// plus its length, so two long ids rarely collide).
func label(s string) string {
	if !utf8.ValidString(s) {
		s = string([]rune(s)) // invalid bytes become U+FFFD
	}
	if len(s) <= MaxLabelLen {
		return s
	}
	cut := MaxLabelLen - 8
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…" + strconv.Itoa(len(s))
}

// connectorEvents counts the hub's events.
type connectorEvents struct {
	connects    *prometheus.CounterVec
	disconnects *prometheus.CounterVec
	refused     *prometheus.CounterVec
	lost        *prometheus.CounterVec
}

func newConnectorEvents() *connectorEvents {
	return &connectorEvents{
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "connector", Name: "connects_total",
			Help: "Connector instances that connected, by connector.",
		}, []string{"connector"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "connector", Name: "disconnects_total",
			Help: "Connector instances that disconnected, by connector and reason (connection_lost, control_error, reauth_refused, " +
				"removed, cut_off, token_expired, superseded, shutdown, ended, other).",
		}, []string{"connector", "reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "connector", Name: "refused_total",
			Help: "Connector connections refused before joining, by reason (an OAuth error code, bad_hello, wrong_connector, too_many_instances).",
		}, []string{"reason"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "connector", Name: "streams_lost_total",
			Help: "Tunnel streams that ended because their connector instance disconnected (requests in flight, idle upstream connections), by connector.",
		}, []string{"connector"}),
	}
}

func (e *connectorEvents) register(reg prometheus.Registerer) {
	reg.MustRegister(e.connects, e.disconnects, e.refused, e.lost)
}

// refusalReasons are the reasons the hub reports; anything else is Other.
var refusalReasons = map[string]bool{
	"invalid_request": true, "invalid_token": true, "insufficient_scope": true, "access_denied": true,
	"temporarily_unavailable": true, "bad_hello": true, "wrong_connector": true, "too_many_instances": true,
}

func (e *connectorEvents) Connected(name string) { e.connects.WithLabelValues(name).Inc() }

func (e *connectorEvents) Disconnected(name, reason string) {
	e.disconnects.WithLabelValues(name, reason).Inc()
	e.lost.WithLabelValues(name).Add(0) // the series exists from the first disconnect
}

func (e *connectorEvents) StreamLost(name string) { e.lost.WithLabelValues(name).Inc() }

func (e *connectorEvents) Refused(reason string) {
	if !refusalReasons[reason] {
		reason = Other
	}
	e.refused.WithLabelValues(reason).Inc()
}
