//! Workloads: one run of one user (a workspace, job, app, …), with the `kwr_` credential
//! it was given, if any.

use crate::{Mutation, Store, StoreError, StoreResult, from_ms, to_ms};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

#[derive(Clone, Debug)]
pub struct WorkloadRow {
    pub id: i64,
    pub public_id: String,
    pub realm_id: i64,
    pub user_id: i64,
    pub user_public_id: String,
    pub username: String,
    pub kind: String,
    pub run_id: String,
    pub project_public_id: Option<String>,
    pub credential_id: Option<i64>,
    pub created_at: OffsetDateTime,
    pub created_by: String,
    pub ended_at: Option<OffsetDateTime>,
}

pub struct NewWorkload<'a> {
    pub public_id: &'a str,
    pub realm_id: i64,
    pub user_id: i64,
    pub kind: &'a str,
    pub run_id: &'a str,
    pub project_id: Option<i64>,
    pub credential_id: Option<i64>,
    pub created_at: OffsetDateTime,
    pub created_by: &'a str,
}

const COLUMNS: &str = "w.id, w.public_id, w.realm_id, w.user_id, u.public_id AS user_public_id, \
     u.username AS username, w.kind, w.run_id, p.public_id AS project_public_id, w.credential_id, w.created_at, \
     w.created_by, w.ended_at";
const FROM: &str = "FROM workloads w JOIN users u ON u.id = w.user_id LEFT JOIN projects p ON p.id = w.project_id";

fn row_from(row: &AnyRow) -> StoreResult<WorkloadRow> {
    Ok(WorkloadRow {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        realm_id: row.try_get("realm_id")?,
        user_id: row.try_get("user_id")?,
        user_public_id: row.try_get("user_public_id")?,
        username: row.try_get("username")?,
        kind: row.try_get("kind")?,
        run_id: row.try_get("run_id")?,
        project_public_id: row.try_get("project_public_id")?,
        credential_id: row.try_get("credential_id")?,
        created_at: from_ms(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
        ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(from_ms),
    })
}

impl Store {
    /// The realm's workload with this public id, running or ended.
    pub async fn workload_by_public_id(&self, realm_id: i64, public_id: &str) -> StoreResult<WorkloadRow> {
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE w.realm_id = $1 AND w.public_id = $2");
        row_from(&sqlx::query(&sql).bind(realm_id).bind(public_id).fetch_one(&self.pool).await?)
    }

    /// The running workload a credential was issued to, if any.
    pub async fn running_workload_of_credential(&self, credential_id: i64) -> StoreResult<Option<WorkloadRow>> {
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE w.credential_id = $1 AND w.ended_at IS NULL");
        let row = sqlx::query(&sql).bind(credential_id).fetch_optional(&self.pool).await?;
        row.as_ref().map(row_from).transpose()
    }

    /// A page of the realm's running workloads after row `after`, optionally of one user.
    pub async fn running_workloads(
        &self,
        realm_id: i64,
        user_id: Option<i64>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<WorkloadRow>> {
        let select = format!("SELECT {COLUMNS} {FROM} WHERE w.realm_id = $1 AND w.ended_at IS NULL");
        let rows =
            crate::page_rows(&self.pool, &select, "w.id", "w.user_id", (realm_id, user_id), after, limit).await?;
        rows.iter().map(row_from).collect()
    }
}

impl Mutation {
    pub async fn insert_workload(&mut self, new: &NewWorkload<'_>) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO workloads (public_id, realm_id, user_id, kind, run_id, project_id, credential_id, \
             created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(new.public_id)
        .bind(new.realm_id)
        .bind(new.user_id)
        .bind(new.kind)
        .bind(new.run_id)
        .bind(new.project_id)
        .bind(new.credential_id)
        .bind(to_ms(new.created_at))
        .bind(new.created_by)
        .fetch_one(self.connection())
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Marks a running workload ended; `NotFound` when it already was.
    pub async fn end_workload(&mut self, id: i64, now: OffsetDateTime, by: &str) -> StoreResult<()> {
        let affected =
            sqlx::query("UPDATE workloads SET ended_at = $1, ended_by = $2 WHERE id = $3 AND ended_at IS NULL")
                .bind(to_ms(now))
                .bind(by)
                .bind(id)
                .execute(self.connection())
                .await?
                .rows_affected();
        if affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
