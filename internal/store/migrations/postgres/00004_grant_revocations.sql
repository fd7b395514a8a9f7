-- Grant revocations: a user's grant to a client (client_id '' = every
-- client) revoked at revoked_at; every replica refuses access tokens issued
-- to that user (and client) before then. One row per (user, client), holding
-- the latest revocation. See store.GrantRevocation.

-- +goose Up
CREATE TABLE grant_revocations (
    user_id    text COLLATE "C" NOT NULL,
    client_id  text COLLATE "C" NOT NULL,
    revoked_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX grant_revocations_revoked_at ON grant_revocations (revoked_at);

-- +goose Down
DROP TABLE grant_revocations;
