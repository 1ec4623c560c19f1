//! The API deployer: infrastructures, API services and their versions, deployments, and
//! the group privileges on infrastructures and services.
//!
//! Every mutation that changes what the gateway serves records a `Gateway` change for
//! the realm, so every process rebuilds its routing table (`server::gateway`).

use crate::{ChangeEntity, Mutation, Store, StoreResult, from_ms, to_ms};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

#[derive(Clone, Debug)]
pub struct InfrastructureRow {
    pub id: i64,
    pub public_id: String,
    pub realm_id: i64,
    pub name: String,
    pub description: String,
    /// Entries as written by the infrastructure's admins (`core::deployer::parse_upstream_rule`).
    pub allowed_upstreams: Vec<String>,
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

#[derive(Clone, Debug)]
pub struct ApiServiceRow {
    pub id: i64,
    pub public_id: String,
    pub realm_id: i64,
    pub name: String,
    pub description: String,
    pub owner_id: Option<i64>,
    pub owner_public_id: Option<String>,
    /// The design-time auth settings as stored (JSON).
    pub auth: String,
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

#[derive(Clone, Debug)]
pub struct VersionRow {
    pub id: i64,
    pub public_id: String,
    pub service_id: i64,
    pub number: i64,
    pub upstream: String,
    pub description: String,
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

/// A deployment with the names and settings of what it joins.
#[derive(Clone, Debug)]
pub struct DeploymentRow {
    pub id: i64,
    pub public_id: String,
    pub realm_id: i64,
    pub service_id: i64,
    pub service_public_id: String,
    pub service_name: String,
    pub service_owner_id: Option<i64>,
    /// The service's auth settings, used when `auth` is `None`.
    pub service_auth: String,
    pub infrastructure_id: i64,
    pub infrastructure_public_id: String,
    pub infrastructure_name: String,
    /// The infrastructure's allowed upstreams.
    pub allowed_upstreams: Vec<String>,
    pub version_id: i64,
    pub version_public_id: String,
    pub version_number: i64,
    pub upstream: String,
    pub enabled: bool,
    /// The deployment's own auth settings; `None`: the service's.
    pub auth: Option<String>,
    pub created_at: OffsetDateTime,
    pub created_by: String,
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

/// A group's privilege on an infrastructure or a service.
#[derive(Clone, Debug)]
pub struct GrantRow {
    pub group_id: i64,
    pub group_public_id: String,
    pub group_name: String,
    pub privilege: String,
}

pub struct NewInfrastructure<'a> {
    pub public_id: &'a str,
    pub realm_id: i64,
    pub name: &'a str,
    pub description: &'a str,
    pub allowed_upstreams: &'a [String],
    pub created_by: &'a str,
    pub now: OffsetDateTime,
}

pub struct NewApiService<'a> {
    pub public_id: &'a str,
    pub realm_id: i64,
    pub name: &'a str,
    pub description: &'a str,
    pub owner_id: Option<i64>,
    pub auth: &'a str,
    pub created_by: &'a str,
    pub now: OffsetDateTime,
}

pub struct NewVersion<'a> {
    pub public_id: &'a str,
    pub service_id: i64,
    pub upstream: &'a str,
    pub description: &'a str,
    pub created_by: &'a str,
    pub now: OffsetDateTime,
}

pub struct NewDeployment<'a> {
    pub public_id: &'a str,
    pub realm_id: i64,
    pub service_id: i64,
    pub infrastructure_id: i64,
    pub version_id: i64,
    pub enabled: bool,
    pub auth: Option<&'a str>,
    pub created_by: &'a str,
    pub now: OffsetDateTime,
}

/// A change to a deployment: each field that is `Some` is set.
pub struct DeploymentPatch<'a> {
    pub version_id: Option<i64>,
    pub enabled: Option<bool>,
    /// `Some(None)`: use the service's settings again.
    pub auth: Option<Option<&'a str>>,
    pub updated_by: &'a str,
    pub now: OffsetDateTime,
}

const INFRA_COLUMNS: &str = "id, public_id, realm_id, name, description, allowed_upstreams, created_at, created_by";
const SERVICE_COLUMNS: &str = "s.id AS id, s.public_id AS public_id, s.realm_id AS realm_id, s.name AS name, \
     s.description AS description, s.owner_id AS owner_id, u.public_id AS owner_public_id, s.auth AS auth, \
     s.created_at AS created_at, s.created_by AS created_by";
const SERVICE_FROM: &str = "FROM api_services s LEFT JOIN users u ON u.id = s.owner_id";
const VERSION_COLUMNS: &str = "id, public_id, service_id, number, upstream, description, created_at, created_by";
const DEPLOYMENT_SELECT: &str = "SELECT d.id AS id, d.public_id AS public_id, d.realm_id AS realm_id, \
     d.service_id AS service_id, s.public_id AS service_public_id, s.name AS service_name, s.owner_id AS service_owner_id, \
     s.auth AS service_auth, \
     d.infrastructure_id AS infrastructure_id, i.public_id AS infrastructure_public_id, \
     i.name AS infrastructure_name, i.allowed_upstreams AS allowed_upstreams, d.version_id AS version_id, v.public_id AS version_public_id, \
     v.number AS version_number, v.upstream AS upstream, d.enabled AS enabled, d.auth AS auth, \
     d.created_at AS created_at, d.created_by AS created_by, d.updated_at AS updated_at, d.updated_by AS updated_by \
     FROM deployments d JOIN api_services s ON s.id = d.service_id \
     JOIN infrastructures i ON i.id = d.infrastructure_id JOIN api_service_versions v ON v.id = d.version_id";

/// A JSON array of strings as stored; anything else is a damaged row.
fn string_list(row: &AnyRow, column: &str) -> StoreResult<Vec<String>> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|_| crate::StoreError::Database(format!("{column} is not a JSON list")))
}

fn infrastructure_from_row(row: &AnyRow) -> StoreResult<InfrastructureRow> {
    Ok(InfrastructureRow {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        realm_id: row.try_get("realm_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        allowed_upstreams: string_list(row, "allowed_upstreams")?,
        created_at: from_ms(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
    })
}

fn service_from_row(row: &AnyRow) -> StoreResult<ApiServiceRow> {
    Ok(ApiServiceRow {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        realm_id: row.try_get("realm_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        owner_id: row.try_get("owner_id")?,
        owner_public_id: row.try_get("owner_public_id")?,
        auth: row.try_get("auth")?,
        created_at: from_ms(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
    })
}

fn version_from_row(row: &AnyRow) -> StoreResult<VersionRow> {
    Ok(VersionRow {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        service_id: row.try_get("service_id")?,
        number: row.try_get("number")?,
        upstream: row.try_get("upstream")?,
        description: row.try_get("description")?,
        created_at: from_ms(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
    })
}

fn deployment_from_row(row: &AnyRow) -> StoreResult<DeploymentRow> {
    Ok(DeploymentRow {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        realm_id: row.try_get("realm_id")?,
        service_id: row.try_get("service_id")?,
        service_public_id: row.try_get("service_public_id")?,
        service_name: row.try_get("service_name")?,
        service_owner_id: row.try_get("service_owner_id")?,
        service_auth: row.try_get("service_auth")?,
        infrastructure_id: row.try_get("infrastructure_id")?,
        infrastructure_public_id: row.try_get("infrastructure_public_id")?,
        infrastructure_name: row.try_get("infrastructure_name")?,
        allowed_upstreams: string_list(row, "allowed_upstreams")?,
        version_id: row.try_get("version_id")?,
        version_public_id: row.try_get("version_public_id")?,
        version_number: row.try_get("version_number")?,
        upstream: row.try_get("upstream")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        auth: row.try_get("auth")?,
        created_at: from_ms(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
        updated_at: from_ms(row.try_get("updated_at")?),
        updated_by: row.try_get("updated_by")?,
    })
}

fn grant_from_row(row: &AnyRow) -> StoreResult<GrantRow> {
    Ok(GrantRow {
        group_id: row.try_get("group_id")?,
        group_public_id: row.try_get("group_public_id")?,
        group_name: row.try_get("group_name")?,
        privilege: row.try_get("privilege")?,
    })
}

/// The two resources that carry group grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantTarget {
    Infrastructure(i64),
    ApiService(i64),
}

/// Which kind of resource a user's grants are asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantedOn {
    Infrastructures,
    ApiServices,
}

impl GrantTarget {
    fn table_and_column(self) -> (&'static str, &'static str, i64) {
        match self {
            GrantTarget::Infrastructure(id) => ("infrastructure_grants", "infrastructure_id", id),
            GrantTarget::ApiService(id) => ("api_service_grants", "service_id", id),
        }
    }
}

/// The infrastructures of a service's deployments that use the service's auth settings.
const UNDER_SERVICE_SETTINGS_SQL: &str =
    "SELECT infrastructure_id FROM deployments WHERE service_id = $1 AND auth IS NULL";

fn infrastructure_ids(rows: &[sqlx::any::AnyRow]) -> StoreResult<Vec<i64>> {
    rows.iter().map(|row| Ok(row.try_get("infrastructure_id")?)).collect()
}

/// A privilege a user holds through one of their groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserGrant {
    /// The infrastructure's or service's internal id.
    pub target_id: i64,
    pub privilege: String,
    /// The group it comes through.
    pub group_id: i64,
}

fn grants_of_user_sql(on: GrantedOn) -> String {
    let (table, column) = match on {
        GrantedOn::ApiServices => ("api_service_grants", "service_id"),
        GrantedOn::Infrastructures => ("infrastructure_grants", "infrastructure_id"),
    };
    format!(
        "SELECT g.{column} AS target_id, g.privilege AS privilege, g.group_id AS group_id FROM {table} g \
         JOIN group_members m ON m.group_id = g.group_id WHERE m.user_id = $1"
    )
}

fn grants_from_rows(rows: &[sqlx::any::AnyRow]) -> StoreResult<Vec<UserGrant>> {
    rows.iter()
        .map(|row| {
            Ok(UserGrant {
                target_id: row.try_get("target_id")?,
                privilege: row.try_get("privilege")?,
                group_id: row.try_get("group_id")?,
            })
        })
        .collect()
}

impl Store {
    pub async fn infrastructure_by_public_id(&self, realm_id: i64, public_id: &str) -> StoreResult<InfrastructureRow> {
        let sql = format!("SELECT {INFRA_COLUMNS} FROM infrastructures WHERE realm_id = $1 AND public_id = $2");
        infrastructure_from_row(&sqlx::query(&sql).bind(realm_id).bind(public_id).fetch_one(&self.pool).await?)
    }

    /// Every infrastructure of a realm, in creation order. Realms hold a handful.
    pub async fn list_infrastructures(&self, realm_id: i64) -> StoreResult<Vec<InfrastructureRow>> {
        let sql = format!("SELECT {INFRA_COLUMNS} FROM infrastructures WHERE realm_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql).bind(realm_id).fetch_all(&self.pool).await?;
        rows.iter().map(infrastructure_from_row).collect()
    }

    pub async fn api_service_by_public_id(&self, realm_id: i64, public_id: &str) -> StoreResult<ApiServiceRow> {
        let sql = format!("SELECT {SERVICE_COLUMNS} {SERVICE_FROM} WHERE s.realm_id = $1 AND s.public_id = $2");
        service_from_row(&sqlx::query(&sql).bind(realm_id).bind(public_id).fetch_one(&self.pool).await?)
    }

    /// Every API service of a realm, in creation order.
    pub async fn list_api_services(&self, realm_id: i64) -> StoreResult<Vec<ApiServiceRow>> {
        let sql = format!("SELECT {SERVICE_COLUMNS} {SERVICE_FROM} WHERE s.realm_id = $1 ORDER BY s.id");
        let rows = sqlx::query(&sql).bind(realm_id).fetch_all(&self.pool).await?;
        rows.iter().map(service_from_row).collect()
    }

    /// (resource id, privilege) for every grant `user_id` holds through a group, on
    /// infrastructures or on services.
    pub async fn grants_of_user(&self, user_id: i64, on: GrantedOn) -> StoreResult<Vec<UserGrant>> {
        let rows = sqlx::query(&grants_of_user_sql(on)).bind(user_id).fetch_all(&self.pool).await?;
        grants_from_rows(&rows)
    }

    /// The groups holding a privilege on `target`, by group name.
    pub async fn grants_on(&self, target: GrantTarget) -> StoreResult<Vec<GrantRow>> {
        let (table, column, id) = target.table_and_column();
        let sql = format!(
            "SELECT g.group_id AS group_id, gr.public_id AS group_public_id, gr.name AS group_name, \
             g.privilege AS privilege FROM {table} g JOIN groups gr ON gr.id = g.group_id \
             WHERE g.{column} = $1 ORDER BY gr.name"
        );
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?;
        rows.iter().map(grant_from_row).collect()
    }

    pub async fn versions_of(&self, service_id: i64) -> StoreResult<Vec<VersionRow>> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM api_service_versions WHERE service_id = $1 ORDER BY number");
        let rows = sqlx::query(&sql).bind(service_id).fetch_all(&self.pool).await?;
        rows.iter().map(version_from_row).collect()
    }

    pub async fn version_by_public_id(&self, service_id: i64, public_id: &str) -> StoreResult<VersionRow> {
        let sql =
            format!("SELECT {VERSION_COLUMNS} FROM api_service_versions WHERE service_id = $1 AND public_id = $2");
        version_from_row(&sqlx::query(&sql).bind(service_id).bind(public_id).fetch_one(&self.pool).await?)
    }

    pub async fn deployment_by_public_id(&self, realm_id: i64, public_id: &str) -> StoreResult<DeploymentRow> {
        let sql = format!("{DEPLOYMENT_SELECT} WHERE d.realm_id = $1 AND d.public_id = $2");
        deployment_from_row(&sqlx::query(&sql).bind(realm_id).bind(public_id).fetch_one(&self.pool).await?)
    }

    pub async fn deployment_by_id(&self, id: i64) -> StoreResult<DeploymentRow> {
        let sql = format!("{DEPLOYMENT_SELECT} WHERE d.id = $1");
        deployment_from_row(&sqlx::query(&sql).bind(id).fetch_one(&self.pool).await?)
    }

    /// Every deployment of a realm (`None`: of every realm, for the gateway's table).
    pub async fn list_deployments(&self, realm_id: Option<i64>) -> StoreResult<Vec<DeploymentRow>> {
        let rows = match realm_id {
            Some(realm_id) => {
                let sql = format!("{DEPLOYMENT_SELECT} WHERE d.realm_id = $1 ORDER BY d.id");
                sqlx::query(&sql).bind(realm_id).fetch_all(&self.pool).await?
            }
            None => sqlx::query(&format!("{DEPLOYMENT_SELECT} ORDER BY d.id")).fetch_all(&self.pool).await?,
        };
        rows.iter().map(deployment_from_row).collect()
    }

    /// The sealed secret of a deployment key, for revealing it to a Read holder.
    pub async fn sealed_secret(&self, credential_id: i64) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT sealed_secret FROM credentials WHERE id = $1")
            .bind(credential_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("sealed_secret")?)
    }
}

/// What a mutation counts before it adds to it, inside its own transaction.
#[derive(Clone, Copy, Debug)]
pub enum Counted<'a> {
    /// A realm's API services.
    ApiServices { realm_id: i64 },
    /// Active deployment keys bound to an audience.
    GatewayKeys { realm_id: i64, audience: &'a str },
    /// An API service (by public id) that still exists: 0 or 1.
    ApiService { public_id: &'a str },
    /// A deployment (by public id) that still exists: 0 or 1.
    Deployment { public_id: &'a str },
}

impl Mutation {
    /// Counts inside the transaction, so a limit or an existence check cannot race
    /// another writer (mutations are serialised on the audit head).
    pub async fn count(&mut self, counted: Counted<'_>) -> StoreResult<i64> {
        let row = match counted {
            Counted::ApiServices { realm_id } => {
                sqlx::query("SELECT COUNT(*) AS n FROM api_services WHERE realm_id = $1")
                    .bind(realm_id)
                    .fetch_one(self.connection())
                    .await?
            }
            Counted::GatewayKeys { realm_id, audience } => {
                sqlx::query(
                    "SELECT COUNT(*) AS n FROM credentials WHERE realm_id = $1 AND audience = $2 \
                     AND kind = 'deployment_key' AND revoked_at IS NULL",
                )
                .bind(realm_id)
                .bind(audience)
                .fetch_one(self.connection())
                .await?
            }
            Counted::ApiService { public_id } => {
                sqlx::query("SELECT COUNT(*) AS n FROM api_services WHERE public_id = $1")
                    .bind(public_id)
                    .fetch_one(self.connection())
                    .await?
            }
            Counted::Deployment { public_id } => {
                sqlx::query("SELECT COUNT(*) AS n FROM deployments WHERE public_id = $1")
                    .bind(public_id)
                    .fetch_one(self.connection())
                    .await?
            }
        };
        Ok(row.try_get("n")?)
    }

    async fn gateway_changed(&mut self, realm_id: i64) -> StoreResult<()> {
        self.changed(ChangeEntity::Gateway, realm_id).await
    }

    pub async fn insert_infrastructure(&mut self, new: &NewInfrastructure<'_>) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO infrastructures (public_id, realm_id, name, description, allowed_upstreams, created_at, \
             created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(new.public_id)
        .bind(new.realm_id)
        .bind(new.name)
        .bind(new.description)
        .bind(serde_json::Value::from(new.allowed_upstreams.to_vec()).to_string())
        .bind(to_ms(new.now))
        .bind(new.created_by)
        .fetch_one(self.connection())
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Sets an infrastructure's description and allowed upstreams; what the gateway
    /// forwards to may change with it.
    pub async fn update_infrastructure(
        &mut self,
        realm_id: i64,
        id: i64,
        description: &str,
        allowed_upstreams: &[String],
    ) -> StoreResult<()> {
        sqlx::query("UPDATE infrastructures SET description = $1, allowed_upstreams = $2 WHERE id = $3")
            .bind(description)
            .bind(serde_json::Value::from(allowed_upstreams.to_vec()).to_string())
            .bind(id)
            .execute(self.connection())
            .await?;
        self.gateway_changed(realm_id).await
    }

    /// The infrastructure row `id`, read inside the transaction: what a deployment written
    /// in it is checked against (a change that committed first is seen, and none can
    /// commit before this one does).
    pub async fn infrastructure_for_update(&mut self, id: i64) -> StoreResult<InfrastructureRow> {
        let sql = format!("SELECT {INFRA_COLUMNS} FROM infrastructures WHERE id = $1");
        infrastructure_from_row(&sqlx::query(&sql).bind(id).fetch_one(self.connection()).await?)
    }

    /// [`Store::grants_of_user`], read inside the transaction: what a change of grants is
    /// checked against, so a privilege taken away before it commits is not used.
    pub async fn grants_of_user(&mut self, user_id: i64, on: GrantedOn) -> StoreResult<Vec<UserGrant>> {
        let rows = sqlx::query(&grants_of_user_sql(on)).bind(user_id).fetch_all(self.connection()).await?;
        grants_from_rows(&rows)
    }

    /// The service row `id`, read inside the transaction (an update computes what it keeps
    /// from the row it replaces).
    pub async fn api_service_for_update(&mut self, id: i64) -> StoreResult<ApiServiceRow> {
        let sql = format!("SELECT {SERVICE_COLUMNS} {SERVICE_FROM} WHERE s.id = $1");
        service_from_row(&sqlx::query(&sql).bind(id).fetch_one(self.connection()).await?)
    }

    /// Whether the user owns an API service, read inside the transaction.
    pub async fn owns_api_services(&mut self, user_id: i64) -> StoreResult<bool> {
        let row = sqlx::query("SELECT id FROM api_services WHERE owner_id = $1 LIMIT 1")
            .bind(user_id)
            .fetch_optional(self.connection())
            .await?;
        Ok(row.is_some())
    }

    /// [`Store::infrastructures_under_service_settings`], read inside the transaction.
    pub async fn infrastructures_under_service_settings(&mut self, service_id: i64) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query(UNDER_SERVICE_SETTINGS_SQL).bind(service_id).fetch_all(self.connection()).await?;
        infrastructure_ids(&rows)
    }

    /// The version row `id`, read inside the transaction (as above).
    pub async fn version_for_update(&mut self, id: i64) -> StoreResult<VersionRow> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM api_service_versions WHERE id = $1");
        version_from_row(&sqlx::query(&sql).bind(id).fetch_one(self.connection()).await?)
    }

    /// How many deployments use an infrastructure, a service or a version, counted
    /// inside the transaction that is about to delete it.
    pub async fn deployments_using(&mut self, column: DeploymentColumn, id: i64) -> StoreResult<i64> {
        let sql = format!("SELECT COUNT(*) AS n FROM deployments WHERE {} = $1", column.as_str());
        let row = sqlx::query(&sql).bind(id).fetch_one(self.connection()).await?;
        Ok(row.try_get("n")?)
    }

    /// The upstream URLs of the versions deployed on an infrastructure.
    pub async fn upstreams_on_infrastructure(&mut self, infrastructure_id: i64) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT v.upstream AS upstream FROM deployments d JOIN api_service_versions v ON v.id = d.version_id \
             WHERE d.infrastructure_id = $1",
        )
        .bind(infrastructure_id)
        .fetch_all(self.connection())
        .await?;
        rows.iter().map(|row| Ok(row.try_get("upstream")?)).collect()
    }

    pub async fn delete_infrastructure(&mut self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM infrastructures WHERE id = $1").bind(id).execute(self.connection()).await?;
        Ok(())
    }

    /// Grants `privilege` on `target` to a group, replacing the group's previous one.
    pub async fn set_grant(&mut self, target: GrantTarget, group_id: i64, privilege: &str) -> StoreResult<()> {
        let (table, column, id) = target.table_and_column();
        let sql = format!(
            "INSERT INTO {table} ({column}, group_id, privilege) VALUES ($1, $2, $3) \
             ON CONFLICT ({column}, group_id) DO UPDATE SET privilege = excluded.privilege"
        );
        sqlx::query(&sql).bind(id).bind(group_id).bind(privilege).execute(self.connection()).await?;
        Ok(())
    }

    /// Removes a group's privilege on `target`; false when it held none.
    pub async fn remove_grant(&mut self, target: GrantTarget, group_id: i64) -> StoreResult<bool> {
        let (table, column, id) = target.table_and_column();
        let sql = format!("DELETE FROM {table} WHERE {column} = $1 AND group_id = $2");
        let affected = sqlx::query(&sql).bind(id).bind(group_id).execute(self.connection()).await?.rows_affected();
        Ok(affected > 0)
    }

    pub async fn insert_api_service(&mut self, new: &NewApiService<'_>) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO api_services (public_id, realm_id, name, description, owner_id, auth, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(new.public_id)
        .bind(new.realm_id)
        .bind(new.name)
        .bind(new.description)
        .bind(new.owner_id)
        .bind(new.auth)
        .bind(to_ms(new.now))
        .bind(new.created_by)
        .fetch_one(self.connection())
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Sets a service's description and auth settings; deployments that use the
    /// service's settings change with it.
    pub async fn update_api_service(
        &mut self,
        realm_id: i64,
        id: i64,
        description: &str,
        auth: &str,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE api_services SET description = $1, auth = $2 WHERE id = $3")
            .bind(description)
            .bind(auth)
            .bind(id)
            .execute(self.connection())
            .await?;
        self.gateway_changed(realm_id).await
    }

    pub async fn delete_api_service(&mut self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM api_services WHERE id = $1").bind(id).execute(self.connection()).await?;
        Ok(())
    }

    /// Adds the service's next version (1, 2, 3, …) and returns its row id.
    pub async fn insert_version(&mut self, new: &NewVersion<'_>) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO api_service_versions (public_id, service_id, number, upstream, description, created_at, \
             created_by) SELECT $1, $2, COALESCE(MAX(number), 0) + 1, $3, $4, $5, $6 \
             FROM api_service_versions WHERE service_id = $2 RETURNING id",
        )
        .bind(new.public_id)
        .bind(new.service_id)
        .bind(new.upstream)
        .bind(new.description)
        .bind(to_ms(new.now))
        .bind(new.created_by)
        .fetch_one(self.connection())
        .await?;
        Ok(row.try_get("id")?)
    }

    pub async fn delete_version(&mut self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM api_service_versions WHERE id = $1").bind(id).execute(self.connection()).await?;
        Ok(())
    }

    pub async fn insert_deployment(&mut self, new: &NewDeployment<'_>) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO deployments (public_id, realm_id, service_id, infrastructure_id, version_id, enabled, auth, \
             created_at, created_by, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $9) RETURNING id",
        )
        .bind(new.public_id)
        .bind(new.realm_id)
        .bind(new.service_id)
        .bind(new.infrastructure_id)
        .bind(new.version_id)
        .bind(i64::from(new.enabled))
        .bind(new.auth)
        .bind(to_ms(new.now))
        .bind(new.created_by)
        .fetch_one(self.connection())
        .await?;
        self.gateway_changed(new.realm_id).await?;
        Ok(row.try_get("id")?)
    }

    pub async fn update_deployment(&mut self, realm_id: i64, id: i64, patch: &DeploymentPatch<'_>) -> StoreResult<()> {
        // Each field is set only when given: `CASE WHEN $n` keeps one statement for all
        // combinations on both engines. `NotFound` when another change deleted it first.
        let result = sqlx::query(
            "UPDATE deployments SET \
             version_id = CASE WHEN $1 = 1 THEN $2 ELSE version_id END, \
             enabled = CASE WHEN $3 = 1 THEN $4 ELSE enabled END, \
             auth = CASE WHEN $5 = 1 THEN $6 ELSE auth END, \
             updated_at = $7, updated_by = $8 WHERE id = $9",
        )
        .bind(i64::from(patch.version_id.is_some()))
        .bind(patch.version_id.unwrap_or(0))
        .bind(i64::from(patch.enabled.is_some()))
        .bind(i64::from(patch.enabled.unwrap_or(false)))
        .bind(i64::from(patch.auth.is_some()))
        .bind(patch.auth.flatten())
        .bind(to_ms(patch.now))
        .bind(patch.updated_by)
        .bind(id)
        .execute(self.connection())
        .await?;
        if result.rows_affected() == 0 {
            return Err(crate::StoreError::NotFound);
        }
        self.gateway_changed(realm_id).await
    }

    /// `NotFound` when another change deleted it first.
    pub async fn delete_deployment(&mut self, realm_id: i64, id: i64) -> StoreResult<()> {
        let result = sqlx::query("DELETE FROM deployments WHERE id = $1").bind(id).execute(self.connection()).await?;
        if result.rows_affected() == 0 {
            return Err(crate::StoreError::NotFound);
        }
        self.gateway_changed(realm_id).await
    }

    /// Keeps a deployment key's secret sealed beside its digest, so Read holders can see
    /// it again.
    pub async fn set_sealed_secret(&mut self, credential_id: i64, sealed: &[u8]) -> StoreResult<()> {
        sqlx::query("UPDATE credentials SET sealed_secret = $1 WHERE id = $2")
            .bind(sealed.to_vec())
            .bind(credential_id)
            .execute(self.connection())
            .await?;
        Ok(())
    }

    /// Revokes every active deployment key bound to `audience` (a service's or a
    /// deployment's), returning their ids.
    pub async fn revoke_gateway_keys(
        &mut self,
        realm_id: i64,
        audience: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query(
            "UPDATE credentials SET revoked_at = $1 WHERE realm_id = $2 AND audience = $3 \
             AND kind = 'deployment_key' AND revoked_at IS NULL RETURNING id",
        )
        .bind(to_ms(now))
        .bind(realm_id)
        .bind(audience)
        .fetch_all(self.connection())
        .await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.try_get("id")).collect::<Result<_, _>>()?;
        for id in &ids {
            self.changed(ChangeEntity::Credential, *id).await?;
        }
        Ok(ids)
    }
}

/// Which reference of a deployment `deployments_using` counts.
#[derive(Clone, Copy, Debug)]
pub enum DeploymentColumn {
    Infrastructure,
    ApiService,
    Version,
}

impl DeploymentColumn {
    fn as_str(self) -> &'static str {
        match self {
            DeploymentColumn::Infrastructure => "infrastructure_id",
            DeploymentColumn::ApiService => "service_id",
            DeploymentColumn::Version => "version_id",
        }
    }
}

impl Store {
    /// The infrastructures of the deployments of service `service_id` that use the
    /// service's own auth settings (and so accept its keys).
    pub async fn infrastructures_under_service_settings(&self, service_id: i64) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query(UNDER_SERVICE_SETTINGS_SQL).bind(service_id).fetch_all(&self.pool).await?;
        infrastructure_ids(&rows)
    }
}
