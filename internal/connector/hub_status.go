package connector

import (
	"context"
	"sort"
	"strings"
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

// Observer is told of connector sessions starting, ending and being
// refused: the metrics hook. Its methods must not block. Every argument
// is bounded: connector names come from the gateway's config, reasons
// from the fixed words below and OAuth error codes.
type Observer interface {
	// Connected: an instance of connector joined.
	Connected(connector string)
	// Disconnected: an instance left, for reason (ReasonCode).
	Disconnected(connector, reason string)
	// StreamLost: a tunnel stream of connector ended because its
	// instance's connection did (a request in flight, or an idle upstream
	// connection kept alive on it).
	StreamLost(connector string)
	// Refused: a connection was refused before joining, for reason (an
	// OAuth error code, "bad_hello", "wrong_connector" or
	// "too_many_instances").
	Refused(reason string)
}

// SetObserver installs o; call it before the first connector connects.
func (h *Hub) SetObserver(o Observer) { h.obs = o }

func (h *Hub) noteRefused(reason string) {
	if h.obs != nil {
		h.obs.Refused(reason)
	}
}

// ReasonCode turns why an instance left (the audit line's words) into
// one of a few fixed codes, for metrics labels.
func ReasonCode(reason string) string {
	switch {
	case reason == "connection lost":
		return "connection_lost"
	case strings.HasPrefix(reason, "control stream: "):
		return "control_error"
	case reason == "reauthentication refused":
		return "reauth_refused"
	case reason == "connectors are no longer configured", reason == "the client is no longer a registered connector",
		reason == "the client no longer authenticates only with private_key_jwt":
		return "removed"
	case strings.HasPrefix(reason, "protocol violation: "):
		return "protocol_violation"
	case reason == "the client was cut off":
		return "cut_off"
	case reason == "its access token expired":
		return "token_expired"
	case reason == "superseded by a new connection of the same instance":
		return "superseded"
	case reason == "gateway shutting down":
		return "shutdown"
	case reason == "connection ended", reason == "":
		return "ended"
	}
	return "other"
}
