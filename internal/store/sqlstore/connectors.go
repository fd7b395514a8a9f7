package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Connector instances (store.ConnectorStatus)
// ---------------------------------------------------------------------------

var _ store.ConnectorStatus = (*Store)(nil)

const selectConnectorInstance = `SELECT connector, instance, version, client_id, remote_addr, upstreams, streams, connected_at, last_seen FROM connector_instances`

// PutConnectorInstance creates or replaces the row of (Connector, Instance).
func (s *Store) PutConnectorInstance(ctx context.Context, c store.ConnectorInstance) error {
	what := fmt.Sprintf("connector instance %q/%q", c.Connector, c.Instance)
	if c.Connector == "" || c.Instance == "" {
		return s.d.errorf("%s: empty connector or instance", what)
	}
	connected := now(c.ConnectedAt)
	_, err := exec(ctx, s.write(), what,
		`INSERT INTO connector_instances (connector, instance, version, client_id, remote_addr, upstreams, streams, connected_at, last_seen)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (connector, instance) DO UPDATE SET version = excluded.version, client_id = excluded.client_id,
		 remote_addr = excluded.remote_addr, upstreams = excluded.upstreams, streams = excluded.streams,
		 connected_at = excluded.connected_at, last_seen = excluded.last_seen`,
		c.Connector, c.Instance, c.Version, c.ClientID, c.RemoteAddr, list(c.Upstreams), c.Streams, ts(connected), ts(now(c.LastSeen)))
	return err
}

// DeleteConnectorInstance removes a row; no row is not an error.
func (s *Store) DeleteConnectorInstance(ctx context.Context, connector, instance string) error {
	_, err := exec(ctx, s.write(), "delete connector instance",
		"DELETE FROM connector_instances WHERE connector = ? AND instance = ?", connector, instance)
	return err
}

// ListConnectorInstances returns every row, by connector then instance.
func (s *Store) ListConnectorInstances(ctx context.Context) ([]store.ConnectorInstance, error) {
	return getAll(ctx, s.read(), scanConnectorInstance, "list connector instances", selectConnectorInstance+" ORDER BY connector, instance")
}

// DeleteStaleConnectorInstances removes rows last seen before before.
func (s *Store) DeleteStaleConnectorInstances(ctx context.Context, before time.Time) (int, error) {
	res, err := exec(ctx, s.write(), "delete stale connector instances", "DELETE FROM connector_instances WHERE last_seen < ?", ts(before))
	if err != nil {
		return 0, err
	}
	return affected(res), nil
}

func scanConnectorInstance(r scanner) (store.ConnectorInstance, error) {
	var c store.ConnectorInstance
	err := r.Scan(&c.Connector, &c.Instance, &c.Version, &c.ClientID, &c.RemoteAddr, listCol{&c.Upstreams}, &c.Streams,
		tsCol{&c.ConnectedAt}, tsCol{&c.LastSeen})
	return c, err
}
