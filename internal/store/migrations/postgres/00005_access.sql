-- Access state (internal/access): who is cut off — revoked access tokens,
-- revoked grants, removed clients, disabled users, used private_key_jwt
-- assertions — and which users and clients the config declared at the last
-- start. One row per (kind, id); expires_at NULL = until deleted. See
-- store.AccessEntry. Users disabled in their row before this migration move
-- here (the row flag is cleared), so disabling is kept in one place and
-- works for users declared in the config too.

-- +goose Up
CREATE TABLE access_entries (
    kind       text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    at         timestamptz NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (kind, id)
);
CREATE INDEX access_entries_expires_at ON access_entries (expires_at);
INSERT INTO access_entries (kind, id, at, expires_at)
    SELECT 'disabled_user', id, COALESCE(updated_at, created_at, now()), NULL FROM users WHERE disabled;
UPDATE users SET disabled = false WHERE disabled;

-- +goose Down
UPDATE users SET disabled = true WHERE id IN (SELECT id FROM access_entries WHERE kind = 'disabled_user');
DROP TABLE access_entries;
