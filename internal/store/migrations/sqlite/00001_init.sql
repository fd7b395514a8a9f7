-- The authorization server's tables (see internal/store/store.go).
-- Times: INTEGER Unix microseconds, UTC; NULL = zero time.Time.
-- Lists: JSON arrays in TEXT. STRICT tables enforce the column types.

-- +goose Up
CREATE TABLE clients (
    id                         TEXT PRIMARY KEY,
    secret_hash                TEXT NOT NULL DEFAULT '',
    secret_expires_at          INTEGER,
    name                       TEXT NOT NULL DEFAULT '',
    kind                       TEXT NOT NULL DEFAULT '',
    redirect_uris              TEXT NOT NULL DEFAULT '[]',
    grant_types                TEXT NOT NULL DEFAULT '[]',
    response_types             TEXT NOT NULL DEFAULT '[]',
    token_endpoint_auth_method TEXT NOT NULL DEFAULT '',
    scope                      TEXT NOT NULL DEFAULT '',
    jwks                       TEXT,
    jwks_uri                   TEXT NOT NULL DEFAULT '',
    client_group               TEXT NOT NULL DEFAULT '',
    metadata                   TEXT,
    created_at                 INTEGER,
    updated_at                 INTEGER
) STRICT;

-- username is NULL when empty (users from an identity provider may have
-- none), so UNIQUE applies only to real names.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT UNIQUE,
    email         TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL DEFAULT '',
    tenant        TEXT NOT NULL DEFAULT '',
    user_groups   TEXT NOT NULL DEFAULT '[]',
    roles         TEXT NOT NULL DEFAULT '[]',
    permissions   TEXT NOT NULL DEFAULT '[]',
    disabled      INTEGER NOT NULL DEFAULT 0,
    source        TEXT NOT NULL DEFAULT '',
    created_at    INTEGER,
    updated_at    INTEGER
) STRICT;

CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL DEFAULT '',
    user_id        TEXT NOT NULL DEFAULT '',
    redirect_uri   TEXT NOT NULL DEFAULT '',
    code_challenge TEXT NOT NULL DEFAULT '',
    resource       TEXT NOT NULL DEFAULT '',
    scope          TEXT NOT NULL DEFAULT '',
    grant_id       TEXT NOT NULL DEFAULT '',
    created_at     INTEGER,
    expires_at     INTEGER,
    used_at        INTEGER
) STRICT;
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL DEFAULT '',
    user_id    TEXT NOT NULL DEFAULT '',
    resource   TEXT NOT NULL DEFAULT '',
    scope      TEXT NOT NULL DEFAULT '',
    created_at INTEGER,
    expires_at INTEGER,
    rotated_at INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_client ON refresh_tokens (user_id, client_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE consents (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL DEFAULT '[]',
    resources  TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER,
    updated_at INTEGER,
    PRIMARY KEY (user_id, client_id)
) STRICT;

CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL DEFAULT '',
    private     BLOB,
    created_at  INTEGER,
    active_from INTEGER,
    retired_at  INTEGER,
    expires_at  INTEGER
) STRICT;

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE consents;
DROP TABLE refresh_tokens;
DROP TABLE auth_codes;
DROP TABLE users;
DROP TABLE clients;
