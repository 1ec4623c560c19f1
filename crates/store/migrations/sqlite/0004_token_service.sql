-- The token service: per-realm token settings, signing keys and revoked access tokens.
-- Times are unix milliseconds.

-- The algorithm new signing keys of the realm use (ES256, RS256 or EdDSA), the default
-- access-token lifetime, a display name, and Keycloak's "tokens-not-before": access
-- tokens issued before it are refused.
ALTER TABLE realms ADD COLUMN signing_alg TEXT NOT NULL DEFAULT 'ES256';
ALTER TABLE realms ADD COLUMN access_token_lifetime_secs INTEGER NOT NULL DEFAULT 300;
ALTER TABLE realms ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE realms ADD COLUMN tokens_not_before INTEGER NOT NULL DEFAULT 0;

-- A key is published in JWKS from creation until removes_at (NULL: still current). It
-- signs from activates_at until a newer key activates. The private key is sealed with a
-- key derived from the master key (AES-256-GCM, the kid as associated data).
CREATE TABLE signing_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    realm_id INTEGER NOT NULL REFERENCES realms(id),
    kid TEXT NOT NULL UNIQUE,
    alg TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256', 'EdDSA')),
    public_key BLOB NOT NULL,
    sealed_private_key BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    removes_at INTEGER
);
CREATE INDEX signing_keys_realm ON signing_keys(realm_id);

-- Revoked access tokens (by jti) and sessions or runs (by sid), kept until the longest
-- token they could cover has expired.
CREATE TABLE revoked_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    realm_id INTEGER NOT NULL REFERENCES realms(id),
    kind TEXT NOT NULL CHECK (kind IN ('jti', 'sid')),
    value TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (realm_id, kind, value)
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens(expires_at);
