-- Running workloads (workspaces, jobs, apps, scheduled jobs, launchers, model APIs), each
-- bound to one run of one user. A workload's kwr_ credential is an ordinary credentials
-- row; access tokens exchanged from it carry the workload's public id as `sid`, so
-- ending the workload revokes the credential and that session id together.
CREATE TABLE workloads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    realm_id INTEGER NOT NULL REFERENCES realms(id),
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    run_id TEXT NOT NULL,
    project_id INTEGER REFERENCES projects(id) ON DELETE SET NULL,
    credential_id INTEGER REFERENCES credentials(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    ended_at INTEGER,
    ended_by TEXT
);
-- One running workload per run id in a realm.
CREATE UNIQUE INDEX workloads_running_run ON workloads(realm_id, run_id) WHERE ended_at IS NULL;
CREATE INDEX workloads_credential ON workloads(credential_id);
