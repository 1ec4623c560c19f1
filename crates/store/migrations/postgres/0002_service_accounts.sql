-- Service accounts are users of kind 'service'. Each also has an identity-provider id
-- (a UUID), the id platform clients use in /v4/serviceAccounts/{idpId}/… paths.
ALTER TABLE users ADD COLUMN idp_id TEXT;
CREATE UNIQUE INDEX users_idp_id ON users(idp_id);

-- The longest lifetime a service-account token may be given (default 365 days).
ALTER TABLE realms ADD COLUMN service_token_max_lifetime_secs BIGINT NOT NULL DEFAULT 31536000;

-- Tokens expiring soon, across every account of a realm.
CREATE INDEX credentials_kind_expiry ON credentials(realm_id, kind, expires_at) WHERE revoked_at IS NULL;
