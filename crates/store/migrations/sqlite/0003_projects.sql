-- Projects and who collaborates on them. A collaborator is any user row of the
-- project's realm (people and service accounts alike). Times are unix milliseconds.

CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    realm_id INTEGER NOT NULL REFERENCES realms(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    -- Who created it, as audit events name actors.
    created_by TEXT NOT NULL,
    UNIQUE (realm_id, name)
);

CREATE TABLE project_collaborators (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'contributor', 'viewer')),
    added_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
-- "Which projects does this user collaborate on" is the common question.
CREATE INDEX project_collaborators_user ON project_collaborators(user_id);
