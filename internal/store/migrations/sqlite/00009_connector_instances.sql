-- Live connections of outbound-only connectors (issue 10), one row per
-- (connector, instance), written by the gateway replica holding it; see
-- store.ConnectorStatus.

-- +goose Up
CREATE TABLE connector_instances (
    connector    TEXT NOT NULL,
    instance     TEXT NOT NULL,
    version      TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    remote_addr  TEXT NOT NULL,
    upstreams    TEXT NOT NULL,
    streams      INTEGER NOT NULL,
    connected_at INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    PRIMARY KEY (connector, instance)
) STRICT;

-- +goose Down
DROP TABLE connector_instances;
