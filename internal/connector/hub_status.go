package connector

import (
	"context"
	"sort"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// InstanceStatus is one live connector connection, for operators.
type InstanceStatus struct {
	Connector   string         `json:"connector"`
	Instance    string         `json:"instance"`
	Version     string         `json:"version"`
	Client      string         `json:"client_id"`
	Remote      string         `json:"remote_addr"`
	ConnectedAt time.Time      `json:"connected_at"`
	LastSeen    time.Time      `json:"last_seen"`
	Streams     int            `json:"streams"`
	Opened      int64          `json:"streams_opened"`
	Refused     int64          `json:"streams_refused"`
	Upstreams   []UpstreamInfo `json:"upstreams"`
}

// Status lists the live instances, by connector name then connect time.
func (h *Hub) Status() []InstanceStatus {
	h.mu.Lock()
	var out []InstanceStatus
	for _, list := range h.instances {
		for _, in := range list {
			out = append(out, InstanceStatus{Connector: in.name, Instance: in.id, Version: in.version, Client: in.client,
				Remote: in.remote, ConnectedAt: in.connected, LastSeen: time.Unix(0, in.lastSeen.Load()),
				Streams: in.sess.NumStreams(), Opened: in.opened.Load(), Refused: in.refused.Load(), Upstreams: in.upstreams})
		}
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Connector != out[j].Connector {
			return out[i].Connector < out[j].Connector
		}
		return out[i].ConnectedAt.Before(out[j].ConnectedAt)
	})
	return out
}

// SetRecorder makes the hub record its live instances in the store, so
// `mcpgate connectors status` sees every replica's connectors. Call it
// before the first connector connects.
func (h *Hub) SetRecorder(r store.ConnectorStatus) { h.rec = r }

// RecordEvery is how often a live instance's row (its last_seen) is
// refreshed; rows not refreshed for StaleAfter are stale.
const (
	RecordEvery = 15 * time.Second
	StaleAfter  = 2 * time.Minute
)

// record writes in's row (or deletes it), off the tunnel's path: a slow
// store never holds a connector up; a failed write is logged.
func (h *Hub) record(in *instance, gone bool) {
	if h.rec == nil {
		return
	}
	row := store.ConnectorInstance{Connector: in.name, Instance: in.id, Version: in.version, ClientID: in.client,
		RemoteAddr: in.remote, Streams: in.sess.NumStreams(), ConnectedAt: in.connected, LastSeen: h.now()}
	for _, u := range in.upstreams {
		row.Upstreams = append(row.Upstreams, u.String())
	}
	h.recs.Add(1)
	go func() {
		defer h.recs.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if gone {
			err = h.rec.DeleteConnectorInstance(ctx, in.name, in.id)
		} else {
			err = h.rec.PutConnectorInstance(ctx, row)
			if err == nil {
				_, err = h.rec.DeleteStaleConnectorInstances(ctx, h.now().Add(-StaleAfter*5))
			}
		}
		if err != nil {
			h.log.Warn("could not record the connector's status", "connector", in.name, "instance", in.id, "err", err)
		}
	}()
}
