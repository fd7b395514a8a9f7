-- Sealed secrets: keys the gateway generates once and keeps across
-- restarts (the session key behind sign-in cookies and session ids),
-- sealed with the vault key; key_id names the vault key that sealed value.
-- See store.SealedSecret.

-- +goose Up
CREATE TABLE sealed_secrets (
    name       text COLLATE "C" PRIMARY KEY,
    key_id     text NOT NULL,
    value      bytea NOT NULL,
    created_at timestamptz,
    updated_at timestamptz
);

-- +goose Down
DROP TABLE sealed_secrets;
