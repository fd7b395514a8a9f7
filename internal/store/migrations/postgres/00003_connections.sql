-- The vault (internal/vault): downstream credentials per user (user_id ''
-- = tenant-wide) and tenant, sealed by the vault before they get here, and
-- the one-row check value that makes a wrong vault key fail at start-up.
-- See store.Connection.

-- +goose Up
CREATE TABLE connections (
    user_id    text COLLATE "C" NOT NULL,
    tenant     text COLLATE "C" NOT NULL,
    name       text COLLATE "C" NOT NULL,
    kind       text NOT NULL DEFAULT '',
    secret     bytea NOT NULL,
    key_id     text NOT NULL DEFAULT '',
    scopes     text NOT NULL DEFAULT '[]',
    expires_at timestamptz,
    created_at timestamptz,
    updated_at timestamptz,
    PRIMARY KEY (user_id, tenant, name)
);

CREATE TABLE vault_check (
    id          smallint PRIMARY KEY CHECK (id = 1),
    key_id      text NOT NULL,
    check_value bytea NOT NULL,
    updated_at  timestamptz
);

-- +goose Down
DROP TABLE vault_check;
DROP TABLE connections;
