package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcpgate/mcpgate/internal/connector"
)

type fakeHub []connector.InstanceStatus

func (f fakeHub) Status() []connector.InstanceStatus { return f }

func TestConnectorStatusMetrics(t *testing.T) {
	seen := time.Unix(1700000000, 500_000_000)
	hub := fakeHub{
		{Connector: "edge", Instance: "a", Version: "v1.2.0", LastSeen: seen, ConnectedAt: seen.Add(-time.Hour), Streams: 3},
		{Connector: "edge", Instance: "b", Version: "v1.3.0", LastSeen: seen, ConnectedAt: seen, Streams: 0},
	}
	m := New()
	m.Connectors(hub, func() []string { return []string{"edge", "core"} })
	want := `
# HELP mcpgate_connector_instances Live instances of each configured connector.
# TYPE mcpgate_connector_instances gauge
mcpgate_connector_instances{connector="core"} 0
mcpgate_connector_instances{connector="edge"} 2
# HELP mcpgate_connector_instance_info A live connector instance, with the version it announced (always 1).
# TYPE mcpgate_connector_instance_info gauge
mcpgate_connector_instance_info{connector="edge",instance="a",version="v1.2.0"} 1
mcpgate_connector_instance_info{connector="edge",instance="b",version="v1.3.0"} 1
# HELP mcpgate_connector_instance_last_seen_timestamp_seconds When the gateway last heard from a live connector instance (unix seconds).
# TYPE mcpgate_connector_instance_last_seen_timestamp_seconds gauge
mcpgate_connector_instance_last_seen_timestamp_seconds{connector="edge",instance="a"} 1.7000000005e+09
mcpgate_connector_instance_last_seen_timestamp_seconds{connector="edge",instance="b"} 1.7000000005e+09
# HELP mcpgate_connector_instance_streams Streams open on a live connector instance's connection.
# TYPE mcpgate_connector_instance_streams gauge
mcpgate_connector_instance_streams{connector="edge",instance="a"} 3
mcpgate_connector_instance_streams{connector="edge",instance="b"} 0
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "mcpgate_connector_instances", "mcpgate_connector_instance_info",
		"mcpgate_connector_instance_last_seen_timestamp_seconds", "mcpgate_connector_instance_streams"); err != nil {
		t.Error(err)
	}
}

// TestConnectorInstanceCardinality: however many instances a connector
// claims and however long their ids, the series stay bounded.
func TestConnectorInstanceCardinality(t *testing.T) {
	var hub fakeHub
	for i := range 1000 {
		hub = append(hub, connector.InstanceStatus{Connector: "edge", Instance: fmt.Sprintf("%d-%s", i, strings.Repeat("i", 500)),
			Version: strings.Repeat("v", 1000) + "\xff", LastSeen: time.Now(), ConnectedAt: time.Now()})
	}
	m := New()
	m.Connectors(hub, nil)
	n, err := testutil.GatherAndCount(m.reg, "mcpgate_connector_instance_info")
	if err != nil {
		t.Fatal(err)
	}
	if n != MaxInstanceSeries {
		t.Errorf("%d info series, want %d", n, MaxInstanceSeries)
	}
	if got, _ := testutil.GatherAndCount(m.reg, "mcpgate_connector_instances"); got != 1 {
		t.Errorf("%d instances series", got)
	}
	for _, mf := range mustGather(t, m) {
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if len(l.GetValue()) > MaxLabelLen {
					t.Fatalf("label %s is %d bytes", l.GetName(), len(l.GetValue()))
				}
			}
		}
	}
}

func TestLabel(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	tests := []struct{ in, want string }{
		{"host-1", "host-1"},
		{strings.Repeat("a", MaxLabelLen), strings.Repeat("a", MaxLabelLen)},
		{strings.Repeat("a", MaxLabelLen+1), strings.Repeat("a", MaxLabelLen-8) + "…65"},
		{long, strings.Repeat("é", (MaxLabelLen-8)/2) + "…200"},
		{"bad\xffbyte", "bad\uFFFDbyte"},
	}
	for _, tt := range tests {
		if got := label(tt.in); got != tt.want {
			t.Errorf("label(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConnectorEvents(t *testing.T) {
	m := New()
	obs := m.Connectors(fakeHub{}, nil)
	obs.Connected("edge")
	obs.Connected("edge")
	obs.Disconnected("edge", "connection_lost")
	obs.Disconnected("edge", "superseded")
	for range 3 {
		obs.StreamLost("edge")
	}
	obs.Refused("invalid_token")
	obs.Refused("something a peer chose")
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"connects", testutil.ToFloat64(m.conn.connects.WithLabelValues("edge")), 2},
		{"disconnects lost", testutil.ToFloat64(m.conn.disconnects.WithLabelValues("edge", "connection_lost")), 1},
		{"disconnects superseded", testutil.ToFloat64(m.conn.disconnects.WithLabelValues("edge", "superseded")), 1},
		{"streams lost", testutil.ToFloat64(m.conn.lost.WithLabelValues("edge")), 3},
		{"refused invalid_token", testutil.ToFloat64(m.conn.refused.WithLabelValues("invalid_token")), 1},
		{"refused other", testutil.ToFloat64(m.conn.refused.WithLabelValues("other")), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.conn.refused); n != 2 {
		t.Errorf("%d refusal series, want 2", n)
	}
}
