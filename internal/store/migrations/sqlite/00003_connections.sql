-- The vault (internal/vault): downstream credentials per user (user_id ''
-- = tenant-wide) and tenant, sealed by the vault before they get here, and
-- the one-row check value that makes a wrong vault key fail at start-up.
-- See store.Connection.

-- +goose Up
CREATE TABLE connections (
    user_id    TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL DEFAULT '',
    secret     BLOB NOT NULL,
    key_id     TEXT NOT NULL DEFAULT '',
    scopes     TEXT NOT NULL DEFAULT '[]',
    expires_at INTEGER,
    created_at INTEGER,
    updated_at INTEGER,
    PRIMARY KEY (user_id, tenant, name)
) STRICT;

CREATE TABLE vault_check (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    key_id      TEXT NOT NULL,
    check_value BLOB NOT NULL,
    updated_at  INTEGER
) STRICT;

-- +goose Down
DROP TABLE vault_check;
DROP TABLE connections;
