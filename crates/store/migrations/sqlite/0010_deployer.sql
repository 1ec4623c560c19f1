-- The API deployer (DESIGN §6): infrastructures, API services with their versions, the
-- deployments that put a version on an infrastructure, and group privileges on the
-- first two. Deployments have no permissions of their own. Times are unix milliseconds.

CREATE TABLE infrastructures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    realm_id INTEGER NOT NULL REFERENCES realms(id),
    -- Part of gateway URLs: /public/{infrastructure}/{service}/...
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- Where its deployments may forward: a JSON array of host names, "*.domain" and
    -- address ranges; '[]' = anywhere (but link-local addresses, which nothing reaches).
    allowed_upstreams TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (realm_id, name)
);

CREATE TABLE infrastructure_grants (
    infrastructure_id INTEGER NOT NULL REFERENCES infrastructures(id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    privilege TEXT NOT NULL CHECK (privilege IN ('view', 'deploy', 'admin')),
    PRIMARY KEY (infrastructure_id, group_id)
);

CREATE TABLE api_services (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    realm_id INTEGER NOT NULL REFERENCES realms(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- The creator, who holds Owner. NULL once that user is deleted; admins still manage it.
    owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    -- The design-time auth settings, JSON ({"type":"apiKeys"|"jwt"|"none", ...}).
    auth TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (realm_id, name)
);

CREATE TABLE api_service_grants (
    service_id INTEGER NOT NULL REFERENCES api_services(id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    privilege TEXT NOT NULL CHECK (privilege IN ('read', 'write', 'deploy', 'admin')),
    PRIMARY KEY (service_id, group_id)
);

CREATE TABLE api_service_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    service_id INTEGER NOT NULL REFERENCES api_services(id) ON DELETE CASCADE,
    -- 1, 2, 3, ... per service.
    number INTEGER NOT NULL,
    upstream TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (service_id, number)
);

-- One deployment per service and infrastructure: the gateway path names exactly these two.
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    realm_id INTEGER NOT NULL REFERENCES realms(id),
    service_id INTEGER NOT NULL REFERENCES api_services(id),
    infrastructure_id INTEGER NOT NULL REFERENCES infrastructures(id),
    version_id INTEGER NOT NULL REFERENCES api_service_versions(id),
    enabled INTEGER NOT NULL,
    -- NULL: use the service's auth settings; otherwise JSON like api_services.auth.
    auth TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    UNIQUE (service_id, infrastructure_id)
);
CREATE INDEX deployments_infrastructure ON deployments(infrastructure_id);
CREATE INDEX deployments_version ON deployments(version_id);

-- Deployment API keys (kwd_) are credentials rows without an owner, bound by their
-- audience to a service ('api-service:{public id}') or to one deployment
-- ('deployment:{public id}'). Read holders may see them again, so they are also kept
-- sealed with a key derived from the master key (AES-256-GCM, bound to the row's public id).
ALTER TABLE credentials ADD COLUMN sealed_secret BLOB;
-- Key names are unique per service or deployment, not per (absent) owner.
DROP INDEX credentials_owner_name;
CREATE UNIQUE INDEX credentials_owner_name ON credentials(realm_id, kind, COALESCE(owner_id, 0), name)
    WHERE revoked_at IS NULL AND kind <> 'deployment_key';
CREATE UNIQUE INDEX credentials_gateway_key_name ON credentials(realm_id, audience, name)
    WHERE revoked_at IS NULL AND kind = 'deployment_key';
