-- Web portal sessions. The cookie carries a random 256-bit session id; only its HMAC
-- under the pepper is stored, like every other secret, so a copy of the database opens
-- no session. A session belongs to one user in one realm and ends at expires_at, at
-- logout (revoked_at) or when its user or realm is disabled (checked on every request).
CREATE TABLE portal_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest BLOB NOT NULL UNIQUE,
    realm_id INTEGER NOT NULL REFERENCES realms(id),
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX portal_sessions_user ON portal_sessions(user_id);
