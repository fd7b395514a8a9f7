-- The identity provider's refresh token of a federated user, sealed by
-- the caller (see store.User.UpstreamToken).

-- +goose Up
ALTER TABLE users ADD COLUMN upstream_token TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE users DROP COLUMN upstream_token;
