-- Access state (internal/access): who is cut off — revoked access tokens,
-- revoked grants, removed clients, disabled users, used private_key_jwt
-- assertions — and which users and clients the config declared at the last
-- start. One row per (kind, id); expires_at NULL = until deleted. See
-- store.AccessEntry. Users disabled in their row before this migration move
-- here (the row flag is cleared), so disabling is kept in one place and
-- works for users declared in the config too.

-- +goose Up
CREATE TABLE access_entries (
    kind       TEXT NOT NULL,
    id         TEXT NOT NULL,
    at         INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (kind, id)
) STRICT;
CREATE INDEX access_entries_expires_at ON access_entries (expires_at);
INSERT INTO access_entries (kind, id, at, expires_at)
    SELECT 'disabled_user', id, COALESCE(updated_at, created_at, 0), NULL FROM users WHERE disabled = 1;
UPDATE users SET disabled = 0 WHERE disabled = 1;

-- +goose Down
UPDATE users SET disabled = 1 WHERE id IN (SELECT id FROM access_entries WHERE kind = 'disabled_user');
DROP TABLE access_entries;
