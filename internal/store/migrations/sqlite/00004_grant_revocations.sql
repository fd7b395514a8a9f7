-- Grant revocations: a user's grant to a client (client_id '' = every
-- client) revoked at revoked_at; every replica refuses access tokens issued
-- to that user (and client) before then. One row per (user, client), holding
-- the latest revocation. See store.GrantRevocation.

-- +goose Up
CREATE TABLE grant_revocations (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT;
CREATE INDEX grant_revocations_revoked_at ON grant_revocations (revoked_at);

-- +goose Down
DROP TABLE grant_revocations;
