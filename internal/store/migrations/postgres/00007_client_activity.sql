-- Client activity: when a self-registered (RFC 7591) client last completed
-- a grant. A dynamic client without a row never did. Unused clients expire
-- (issue 8, finding 9); see store.ClientActivity.

-- +goose Up
CREATE TABLE client_activity (
    client_id    text COLLATE "C" PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);
CREATE INDEX client_activity_last_used_at ON client_activity (last_used_at);
-- Clients registered before this migration count as used now: an upgrade
-- must not delete clients in use; the idle rule applies to them from here.
INSERT INTO client_activity (client_id, last_used_at)
    SELECT id, now() FROM clients WHERE kind = 'dynamic';

-- +goose Down
DROP TABLE client_activity;
