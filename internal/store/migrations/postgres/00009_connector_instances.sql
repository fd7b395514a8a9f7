-- Live connections of outbound-only connectors (issue 10), one row per
-- (connector, instance), written by the gateway replica holding it; see
-- store.ConnectorStatus.

-- +goose Up
CREATE TABLE connector_instances (
    connector    text COLLATE "C" NOT NULL,
    instance     text COLLATE "C" NOT NULL,
    version      text NOT NULL,
    client_id    text NOT NULL,
    remote_addr  text NOT NULL,
    upstreams    text NOT NULL,
    streams      integer NOT NULL,
    connected_at timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    PRIMARY KEY (connector, instance)
);

-- +goose Down
DROP TABLE connector_instances;
