-- The authorization server's tables (see internal/store/store.go).
-- Times: timestamptz; NULL = zero time.Time. Lists: JSON arrays in text.
-- Keys use the "C" collation: byte order, the same as SQLite, whatever the
-- database's locale.

-- +goose Up
CREATE TABLE clients (
    id                         text COLLATE "C" PRIMARY KEY,
    secret_hash                text NOT NULL DEFAULT '',
    secret_expires_at          timestamptz,
    name                       text NOT NULL DEFAULT '',
    kind                       text NOT NULL DEFAULT '',
    redirect_uris              text NOT NULL DEFAULT '[]',
    grant_types                text NOT NULL DEFAULT '[]',
    response_types             text NOT NULL DEFAULT '[]',
    token_endpoint_auth_method text NOT NULL DEFAULT '',
    scope                      text NOT NULL DEFAULT '',
    jwks                       text,
    jwks_uri                   text NOT NULL DEFAULT '',
    client_group               text NOT NULL DEFAULT '',
    metadata                   text,
    created_at                 timestamptz,
    updated_at                 timestamptz
);

-- username is NULL when empty (users from an identity provider may have
-- none), so UNIQUE applies only to real names.
CREATE TABLE users (
    id            text COLLATE "C" PRIMARY KEY,
    username      text COLLATE "C" UNIQUE,
    email         text NOT NULL DEFAULT '',
    password_hash text NOT NULL DEFAULT '',
    tenant        text NOT NULL DEFAULT '',
    user_groups   text NOT NULL DEFAULT '[]',
    roles         text NOT NULL DEFAULT '[]',
    permissions   text NOT NULL DEFAULT '[]',
    disabled      boolean NOT NULL DEFAULT false,
    source        text NOT NULL DEFAULT '',
    created_at    timestamptz,
    updated_at    timestamptz
);

CREATE TABLE auth_codes (
    code_hash      text COLLATE "C" PRIMARY KEY,
    client_id      text NOT NULL DEFAULT '',
    user_id        text NOT NULL DEFAULT '',
    redirect_uri   text NOT NULL DEFAULT '',
    code_challenge text NOT NULL DEFAULT '',
    resource       text NOT NULL DEFAULT '',
    scope          text NOT NULL DEFAULT '',
    grant_id       text NOT NULL DEFAULT '',
    created_at     timestamptz,
    expires_at     timestamptz,
    used_at        timestamptz
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash text COLLATE "C" PRIMARY KEY,
    family_id  text COLLATE "C" NOT NULL,
    client_id  text COLLATE "C" NOT NULL DEFAULT '',
    user_id    text COLLATE "C" NOT NULL DEFAULT '',
    resource   text NOT NULL DEFAULT '',
    scope      text NOT NULL DEFAULT '',
    created_at timestamptz,
    expires_at timestamptz,
    rotated_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_client ON refresh_tokens (user_id, client_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE consents (
    user_id    text COLLATE "C" NOT NULL,
    client_id  text COLLATE "C" NOT NULL,
    scopes     text NOT NULL DEFAULT '[]',
    resources  text NOT NULL DEFAULT '[]',
    created_at timestamptz,
    updated_at timestamptz,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE signing_keys (
    id          text COLLATE "C" PRIMARY KEY,
    algorithm   text NOT NULL DEFAULT '',
    private     bytea,
    created_at  timestamptz,
    active_from timestamptz,
    retired_at  timestamptz,
    expires_at  timestamptz
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE consents;
DROP TABLE refresh_tokens;
DROP TABLE auth_codes;
DROP TABLE users;
DROP TABLE clients;
