package store

import (
	"context"
	"time"
)

// ConnectorInstance is one live connection of an outbound-only connector
// (issue 10) as the gateway replica holding it records it, so operators
// see every replica's connectors (`mcpgate connectors status`).
type ConnectorInstance struct {
	Connector   string // the configured connector name
	Instance    string // the instance id its hello announced
	Version     string
	ClientID    string
	RemoteAddr  string
	Upstreams   []string // "name=host:port" as announced
	Streams     int      // streams open when last seen
	ConnectedAt time.Time
	LastSeen    time.Time // refreshed while connected; zero on Put: now
}

// ConnectorStatus is the optional capability of a Store that records live
// connector instances. Rows of a replica that died without removing them
// go stale (LastSeen stops moving) and are deleted by age.
type ConnectorStatus interface {
	// PutConnectorInstance creates or replaces the row of (Connector,
	// Instance); neither may be empty.
	PutConnectorInstance(ctx context.Context, c ConnectorInstance) error
	// DeleteConnectorInstance removes a row; no row is not an error.
	DeleteConnectorInstance(ctx context.Context, connector, instance string) error
	// ListConnectorInstances returns every row, by connector then instance.
	ListConnectorInstances(ctx context.Context) ([]ConnectorInstance, error)
	// DeleteStaleConnectorInstances removes rows last seen before before
	// and counts them.
	DeleteStaleConnectorInstances(ctx context.Context, before time.Time) (int, error)
}
