//! keyward's storage: one sqlx implementation that runs on SQLite (bundled, WAL,
//! `synchronous=FULL`) and on PostgreSQL, chosen by the database URL.
//!
//! Every statement is written once with `$N` placeholders, which both engines accept,
//! and the schemas keep to types both share (integers, text, bytes), so behaviour is the
//! same on both by construction; the shared store tests run against each. Migrations are
//! per dialect under `migrations/`.
//!
//! Every mutation goes through a [`Mutation`]: one transaction that also appends the
//! audit event(s) to the hash chain and records the change for other processes' change
//! feeds. Nothing here knows about HTTP; it must not depend on `server` or `proto`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod api_tokens;
mod audit;
mod changes;
mod clients;
mod credentials;
mod deployer;
mod groups;
mod mutation;
mod passwords;
mod portal_sessions;
mod projects;
mod realms;
mod settings;
mod signing_keys;
mod users;
mod workloads;

pub use api_tokens::{ApiTokenPatch, ApiTokenRow, NewApiToken};
pub use audit::{AuditEventRow, AuditFilter, NewAuditEvent};
pub use changes::{Change, ChangeEntity, ChangeListener};
pub use clients::{ClientRow, ClientSettings};
pub use credentials::{CredentialQuery, CredentialRow, IndexedCredential, NewCredential};
pub use deployer::{
    ApiServiceRow, Counted, DeploymentColumn, DeploymentPatch, DeploymentRow, GrantRow, GrantTarget, GrantedOn,
    InfrastructureRow, NewApiService, NewDeployment, NewInfrastructure, NewVersion, UserGrant, VersionRow,
};
pub use groups::GroupRow;
pub use mutation::Mutation;
pub use passwords::PasswordLoginRow;
pub use portal_sessions::{NewPortalSession, PortalSessionRow};
pub use projects::{CollaboratorRow, NewProject, ProjectQuery, ProjectRow, ProjectWithRole};
pub use realms::{RealmPatch, RealmRow};
pub use signing_keys::{NewSigningKey, RevokedTokenRow, SigningKeyRow};
pub use users::{NewUser, PrincipalRow, UserPatch, UserRow};
pub use workloads::{NewWorkload, WorkloadRow};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::time::Duration;
use time::OffsetDateTime;

/// Which engine a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; `field` names the field that must change.
    #[error("{field} is already taken")]
    Conflict { field: &'static str },
    /// A row this change refers to (a foreign key) was deleted by a change that committed
    /// after the caller's checks read it.
    #[error("a row this change refers to is gone")]
    Gone,
    #[error("database error: {0}")]
    Database(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("the database URL must start with sqlite: or postgres:")]
    UnsupportedUrl,
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::RowNotFound = error {
            return StoreError::NotFound;
        }
        if let Some(database) = error.as_database_error()
            && database.is_unique_violation()
        {
            // SQLite names the columns in its message, PostgreSQL the constraint; both
            // contain the column name we care about.
            let text = format!("{} {}", database.constraint().unwrap_or(""), database.message());
            let field = if text.contains("email_key") {
                "email"
            } else if text.contains("username") {
                "username"
            } else if text.contains("run_id") || text.contains("running_run") {
                "runId"
            } else {
                "name"
            };
            return StoreError::Conflict { field };
        }
        if let Some(database) = error.as_database_error()
            && database.is_foreign_key_violation()
        {
            return StoreError::Gone;
        }
        StoreError::Database(error.to_string())
    }
}

/// The store: a connection pool and the engine it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    audit_key: Option<keyward_core::audit::AuditKey>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// One page of rows in id order: `select` is a `SELECT … WHERE …` whose conditions use
/// `$1` for the realm; the page takes rows with `id_column` above `after`, at most
/// `limit`, and only `owner_column = owner` when an owner is given.
pub(crate) async fn page_rows(
    pool: &AnyPool,
    select: &str,
    id_column: &str,
    owner_column: &str,
    (realm_id, owner): (i64, Option<i64>),
    after: i64,
    limit: i64,
) -> StoreResult<Vec<sqlx::any::AnyRow>> {
    let owner_clause = if owner.is_some() { format!("AND {owner_column} = $4") } else { String::new() };
    let sql = format!("{select} AND {id_column} > $2 {owner_clause} ORDER BY {id_column} LIMIT $3");
    let mut query = sqlx::query(&sql).bind(realm_id).bind(after).bind(limit);
    if let Some(owner) = owner {
        query = query.bind(owner);
    }
    Ok(query.fetch_all(pool).await?)
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`). Does not migrate.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(10));
        let options = match backend {
            Backend::Sqlite => options.after_connect(|connection, _| {
                Box::pin(async move {
                    connection
                        .execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options,
        };
        let pool = options.connect(url).await?;
        Ok(Store { pool, backend, url: url.to_string(), audit_key: None })
    }

    /// Brings the schema up to date. Safe to run on every start and concurrently.
    pub async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.map_err(|error| StoreError::Migration(error.to_string()))
    }

    /// Sets the key that mutations chain audit events with; without it, `begin` fails.
    pub fn with_audit_key(mut self, key: keyward_core::audit::AuditKey) -> Store {
        self.audit_key = Some(key);
        self
    }

    pub(crate) fn audit_key(&self) -> StoreResult<keyward_core::audit::AuditKey> {
        self.audit_key.clone().ok_or_else(|| StoreError::Database("no audit key configured".to_string()))
    }

    /// How many connections the start-up credential read uses at once. Four overlaps the
    /// database's work with parsing even on two cores (docs/benchmarks.md, section 3), and
    /// leaves the rest of the pool free.
    pub(crate) fn read_parallelism(&self) -> usize {
        4
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Answers whether the database is reachable, for `/readyz`.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Unix milliseconds, the storage form of every time.
pub fn to_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn flag(value: bool) -> i64 {
    i64::from(value)
}
