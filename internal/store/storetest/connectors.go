package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Connector instances (store.ConnectorStatus, optional)
// ---------------------------------------------------------------------------

// testConnectorInstances: rows are upserted by (connector, instance),
// listed in order, deleted by key and by age; empty keys are refused.
func testConnectorInstances(t *testing.T, s store.Store) {
	cs, ok := s.(store.ConnectorStatus)
	if !ok {
		t.Skip("the store does not implement store.ConnectorStatus")
	}
	ctx := t.Context()
	put := func(conn, inst string, seen time.Duration, ups ...string) {
		must(t, cs.PutConnectorInstance(ctx, store.ConnectorInstance{Connector: conn, Instance: inst, Version: "v1", ClientID: "c-" + conn,
			RemoteAddr: "192.0.2.1", Upstreams: ups, Streams: 3, ConnectedAt: at(0), LastSeen: at(seen)}), "PutConnectorInstance "+inst)
	}
	put("edge", "b", time.Hour, "metrics=10.0.0.5:9000")
	put("edge", "a", time.Hour)
	put("core", "z", 0)
	put("edge", "b", 2*time.Hour, "metrics=10.0.0.5:9000", "wiki=10.0.0.6:80") // replaces
	got, err := cs.ListConnectorInstances(ctx)
	must(t, err, "ListConnectorInstances")
	var keys []string
	for _, c := range got {
		keys = append(keys, c.Connector+"/"+c.Instance)
	}
	if !slices.Equal(keys, []string{"core/z", "edge/a", "edge/b"}) {
		t.Fatalf("rows %v", keys)
	}
	b := got[2]
	if !b.LastSeen.Equal(at(2*time.Hour)) || !b.ConnectedAt.Equal(at(0)) || len(b.Upstreams) != 2 || b.Streams != 3 || b.ClientID != "c-edge" {
		t.Errorf("replaced row %+v", b)
	}
	if got[1].Upstreams == nil || len(got[1].Upstreams) != 0 {
		t.Errorf("no upstreams must read back as an empty list: %#v", got[1].Upstreams)
	}
	n, err := cs.DeleteStaleConnectorInstances(ctx, at(30*time.Minute))
	must(t, err, "DeleteStaleConnectorInstances")
	if n != 1 {
		t.Errorf("stale rows deleted: %d, want 1 (core/z)", n)
	}
	must(t, cs.DeleteConnectorInstance(ctx, "edge", "a"), "DeleteConnectorInstance")
	must(t, cs.DeleteConnectorInstance(ctx, "edge", "a"), "DeleteConnectorInstance again")
	got, err = cs.ListConnectorInstances(ctx)
	must(t, err, "ListConnectorInstances")
	if len(got) != 1 || got[0].Instance != "b" {
		t.Errorf("after deletes: %+v", got)
	}
	if err := cs.PutConnectorInstance(ctx, store.ConnectorInstance{Connector: "", Instance: "x"}); err == nil {
		t.Error("PutConnectorInstance with an empty connector succeeded")
	}
}
