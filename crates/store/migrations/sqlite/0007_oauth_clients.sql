-- Registered OAuth 2.0 clients and claim mappers. Times are unix milliseconds.

-- Claim mappers applied to every access token of the realm: a JSON array.
ALTER TABLE realms ADD COLUMN claim_mappers TEXT NOT NULL DEFAULT '[]';

-- A client authenticates with its client_id and a secret, of which only the HMAC is
-- kept. grants and audiences are space-separated lists; claim_mappers a JSON array.
-- client_credentials issues tokens for the client's service account.
CREATE TABLE oauth_clients (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    realm_id INTEGER NOT NULL REFERENCES realms(id),
    client_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    secret_digest BLOB NOT NULL,
    secret_prefix TEXT NOT NULL,
    grants TEXT NOT NULL,
    audiences TEXT NOT NULL DEFAULT '',
    service_account_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    access_token_lifetime_secs INTEGER,
    claim_mappers TEXT NOT NULL DEFAULT '[]',
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (realm_id, client_id)
);
