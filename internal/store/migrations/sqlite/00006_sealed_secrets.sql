-- Sealed secrets: keys the gateway generates once and keeps across
-- restarts (the session key behind sign-in cookies and session ids),
-- sealed with the vault key; key_id names the vault key that sealed value.
-- See store.SealedSecret.

-- +goose Up
CREATE TABLE sealed_secrets (
    name       TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,
    value      BLOB NOT NULL,
    created_at INTEGER,
    updated_at INTEGER
) STRICT;

-- +goose Down
DROP TABLE sealed_secrets;
