//! Projects and their collaborators (users of the project's realm, people and service
//! accounts alike, each with one role).
//!
//! Projects are not cached in any process's index, so changing them records no change
//! for the feed: every read comes from the store.

use crate::{Mutation, Store, StoreError, StoreResult, from_ms, to_ms};
use keyward_core::ProjectRole;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

pub struct NewProject<'a> {
    pub public_id: &'a str,
    pub realm_id: i64,
    pub name: &'a str,
    pub description: &'a str,
    pub created_by: &'a str,
    pub now: OffsetDateTime,
}

#[derive(Clone, Debug)]
pub struct ProjectRow {
    pub id: i64,
    pub public_id: String,
    pub realm_id: i64,
    pub name: String,
    pub description: String,
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

/// A project and the role one user holds on it (`None`: not a collaborator).
#[derive(Clone, Debug)]
pub struct ProjectWithRole {
    pub project: ProjectRow,
    pub role: Option<ProjectRole>,
}

#[derive(Clone, Debug)]
pub struct CollaboratorRow {
    pub user_id: i64,
    pub user_public_id: String,
    pub username: String,
    pub kind: String,
    pub role: ProjectRole,
    pub added_at: OffsetDateTime,
}

/// Which projects to list: one page of a realm's projects after row `after`, each with
/// `user_id`'s role on it. With `collaborating_only`, only those `user_id` collaborates on.
#[derive(Clone, Debug)]
pub struct ProjectQuery {
    pub realm_id: i64,
    pub user_id: Option<i64>,
    pub collaborating_only: bool,
    pub after: i64,
    pub limit: i64,
}

/// Project columns prefixed with `p.`, plus the joined collaborator's role as `my_role`.
const PROJECT_WITH_ROLE_COLUMNS: &str = "p.id AS id, p.public_id AS public_id, p.realm_id AS realm_id, \
     p.name AS name, p.description AS description, p.created_at AS created_at, p.created_by AS created_by, \
     c.role AS my_role";

fn project_from_row(row: &AnyRow) -> StoreResult<ProjectRow> {
    Ok(ProjectRow {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        realm_id: row.try_get("realm_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_at: from_ms(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
    })
}

fn with_role_from_row(row: &AnyRow) -> StoreResult<ProjectWithRole> {
    let role: Option<String> = row.try_get("my_role")?;
    Ok(ProjectWithRole { project: project_from_row(row)?, role: role.as_deref().map(parse_role).transpose()? })
}

/// The schema allows only the three role names; anything else is a damaged row.
fn parse_role(name: &str) -> StoreResult<ProjectRole> {
    ProjectRole::parse(name).ok_or_else(|| StoreError::Database(format!("unknown project role {name:?} in the store")))
}

fn collaborator_from_row(row: &AnyRow) -> StoreResult<CollaboratorRow> {
    Ok(CollaboratorRow {
        user_id: row.try_get("user_id")?,
        user_public_id: row.try_get("public_id")?,
        username: row.try_get("username")?,
        kind: row.try_get("kind")?,
        role: parse_role(&row.try_get::<String, _>("role")?)?,
        added_at: from_ms(row.try_get("added_at")?),
    })
}

impl Store {
    /// A project of the realm by public id, with the role `user_id` holds on it, in one
    /// read: an unknown id and a project the user cannot see take the same path.
    pub async fn project_by_public_id(
        &self,
        realm_id: i64,
        public_id: &str,
        user_id: Option<i64>,
    ) -> StoreResult<ProjectWithRole> {
        let sql = format!(
            "SELECT {PROJECT_WITH_ROLE_COLUMNS} FROM projects p \
             LEFT JOIN project_collaborators c ON c.project_id = p.id AND c.user_id = $3 \
             WHERE p.realm_id = $1 AND p.public_id = $2"
        );
        let row = sqlx::query(&sql).bind(realm_id).bind(public_id).bind(user_id).fetch_one(&self.pool).await?;
        with_role_from_row(&row)
    }

    /// One page of projects in creation order, each with the querying user's role.
    pub async fn list_projects(&self, query: &ProjectQuery) -> StoreResult<Vec<ProjectWithRole>> {
        let sql = format!(
            "SELECT {PROJECT_WITH_ROLE_COLUMNS} FROM projects p \
             LEFT JOIN project_collaborators c ON c.project_id = p.id AND c.user_id = $2 \
             WHERE p.realm_id = $1 AND p.id > $3 AND ($4 = 0 OR c.role IS NOT NULL) ORDER BY p.id LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(query.realm_id)
            .bind(query.user_id)
            .bind(query.after)
            .bind(i64::from(query.collaborating_only))
            .bind(query.limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(with_role_from_row).collect()
    }

    /// A project's collaborators, owners first, then in the order they were added.
    pub async fn project_collaborators(&self, project_id: i64) -> StoreResult<Vec<CollaboratorRow>> {
        let rows = sqlx::query(
            "SELECT c.user_id AS user_id, u.public_id AS public_id, u.username AS username, u.kind AS kind, \
             c.role AS role, c.added_at AS added_at FROM project_collaborators c JOIN users u ON u.id = c.user_id \
             WHERE c.project_id = $1 \
             ORDER BY CASE c.role WHEN 'owner' THEN 0 WHEN 'contributor' THEN 1 ELSE 2 END, c.added_at, u.id",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(collaborator_from_row).collect()
    }

    pub async fn project_collaborator(&self, project_id: i64, user_id: i64) -> StoreResult<CollaboratorRow> {
        let row = sqlx::query(
            "SELECT c.user_id AS user_id, u.public_id AS public_id, u.username AS username, u.kind AS kind, \
             c.role AS role, c.added_at AS added_at FROM project_collaborators c JOIN users u ON u.id = c.user_id \
             WHERE c.project_id = $1 AND c.user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        collaborator_from_row(&row)
    }
}

impl Mutation {
    /// Inserts a project with its first owner.
    pub async fn insert_project(&mut self, new: &NewProject<'_>, owner_id: i64) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO projects (public_id, realm_id, name, description, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(new.public_id)
        .bind(new.realm_id)
        .bind(new.name)
        .bind(new.description)
        .bind(to_ms(new.now))
        .bind(new.created_by)
        .fetch_one(self.connection())
        .await?;
        let id: i64 = row.try_get("id")?;
        self.set_collaborator(id, owner_id, ProjectRole::Owner, new.now).await?;
        Ok(id)
    }

    /// Deletes a project and, through the foreign key, its collaborators.
    pub async fn delete_project(&mut self, id: i64) -> StoreResult<()> {
        let affected = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id)
            .execute(self.connection())
            .await?
            .rows_affected();
        if affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The role `user_id` holds on the project, read inside this transaction. Mutations
    /// are serialised (each locks the audit chain head first), so what this reads stays
    /// true until the mutation commits.
    pub async fn collaborator_role(&mut self, project_id: i64, user_id: i64) -> StoreResult<Option<ProjectRole>> {
        let row = sqlx::query("SELECT role FROM project_collaborators WHERE project_id = $1 AND user_id = $2")
            .bind(project_id)
            .bind(user_id)
            .fetch_optional(self.connection())
            .await?;
        row.map(|row| parse_role(&row.try_get::<String, _>("role")?)).transpose()
    }

    /// How many owners the project has, read inside this transaction.
    pub async fn owner_count(&mut self, project_id: i64) -> StoreResult<u64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS owners FROM project_collaborators WHERE project_id = $1 AND role = 'owner'",
        )
        .bind(project_id)
        .fetch_one(self.connection())
        .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("owners")?).unwrap_or(0))
    }

    /// Adds a collaborator or changes their role; `added_at` stays that of the first add.
    pub async fn set_collaborator(
        &mut self,
        project_id: i64,
        user_id: i64,
        role: ProjectRole,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO project_collaborators (project_id, user_id, role, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(to_ms(now))
        .execute(self.connection())
        .await?;
        Ok(())
    }

    /// Removes a collaborator. Answers `NotFound` when the user was not one.
    pub async fn remove_collaborator(&mut self, project_id: i64, user_id: i64) -> StoreResult<()> {
        let affected = sqlx::query("DELETE FROM project_collaborators WHERE project_id = $1 AND user_id = $2")
            .bind(project_id)
            .bind(user_id)
            .execute(self.connection())
            .await?
            .rows_affected();
        if affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
