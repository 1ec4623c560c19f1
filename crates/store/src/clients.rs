//! Registered OAuth clients and realm claim mappers. Lists and mappers are kept as text
//! (space-separated, JSON); the server parses them.

use crate::{ChangeEntity, Mutation, Store, StoreResult, flag, from_ms, to_ms};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

#[derive(Clone, Debug)]
pub struct ClientRow {
    pub id: i64,
    pub realm_id: i64,
    pub client_id: String,
    pub name: String,
    pub secret_digest: Vec<u8>,
    pub secret_prefix: String,
    /// Space-separated grant types.
    pub grants: String,
    /// Space-separated audiences; the first is the default.
    pub audiences: String,
    pub service_account_id: Option<i64>,
    pub access_token_lifetime_secs: Option<i64>,
    /// A JSON array of claim mappers.
    pub claim_mappers: String,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A client's settings, as written.
pub struct ClientSettings<'a> {
    pub name: &'a str,
    pub grants: &'a str,
    pub audiences: &'a str,
    pub service_account_id: Option<i64>,
    pub access_token_lifetime_secs: Option<i64>,
    pub claim_mappers: &'a str,
    pub enabled: bool,
}

const CLIENT_COLUMNS: &str = "id, realm_id, client_id, name, secret_digest, secret_prefix, grants, audiences, \
     service_account_id, access_token_lifetime_secs, claim_mappers, enabled, created_at, updated_at";

fn client_from_row(row: &AnyRow) -> StoreResult<ClientRow> {
    Ok(ClientRow {
        id: row.try_get("id")?,
        realm_id: row.try_get("realm_id")?,
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        secret_digest: row.try_get("secret_digest")?,
        secret_prefix: row.try_get("secret_prefix")?,
        grants: row.try_get("grants")?,
        audiences: row.try_get("audiences")?,
        service_account_id: row.try_get("service_account_id")?,
        access_token_lifetime_secs: row.try_get("access_token_lifetime_secs")?,
        claim_mappers: row.try_get("claim_mappers")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

impl Store {
    pub async fn realm_clients(&self, realm_id: i64) -> StoreResult<Vec<ClientRow>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE realm_id = $1 ORDER BY client_id");
        let rows = sqlx::query(&sql).bind(realm_id).fetch_all(&self.pool).await?;
        rows.iter().map(client_from_row).collect()
    }

    pub async fn all_clients(&self) -> StoreResult<Vec<ClientRow>> {
        let rows = sqlx::query(&format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients")).fetch_all(&self.pool).await?;
        rows.iter().map(client_from_row).collect()
    }

    /// The realm's claim mappers (a JSON array).
    pub async fn realm_claim_mappers(&self, realm_id: i64) -> StoreResult<String> {
        let row =
            sqlx::query("SELECT claim_mappers FROM realms WHERE id = $1").bind(realm_id).fetch_one(&self.pool).await?;
        Ok(row.try_get("claim_mappers")?)
    }
}

impl Mutation {
    pub async fn insert_client(
        &mut self,
        realm_id: i64,
        client_id: &str,
        settings: &ClientSettings<'_>,
        secret: (&[u8], &str),
        now: OffsetDateTime,
    ) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO oauth_clients (realm_id, client_id, name, secret_digest, secret_prefix, grants, audiences, \
             service_account_id, access_token_lifetime_secs, claim_mappers, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING id",
        )
        .bind(realm_id)
        .bind(client_id)
        .bind(settings.name)
        .bind(secret.0.to_vec())
        .bind(secret.1)
        .bind(settings.grants)
        .bind(settings.audiences)
        .bind(settings.service_account_id)
        .bind(settings.access_token_lifetime_secs)
        .bind(settings.claim_mappers)
        .bind(flag(settings.enabled))
        .bind(to_ms(now))
        .fetch_one(self.connection())
        .await?;
        self.changed(ChangeEntity::Clients, realm_id).await?;
        Ok(row.try_get("id")?)
    }

    pub async fn update_client(
        &mut self,
        id: i64,
        realm_id: i64,
        settings: &ClientSettings<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE oauth_clients SET name = $1, grants = $2, audiences = $3, service_account_id = $4, \
             access_token_lifetime_secs = $5, claim_mappers = $6, enabled = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(settings.name)
        .bind(settings.grants)
        .bind(settings.audiences)
        .bind(settings.service_account_id)
        .bind(settings.access_token_lifetime_secs)
        .bind(settings.claim_mappers)
        .bind(flag(settings.enabled))
        .bind(to_ms(now))
        .bind(id)
        .execute(self.connection())
        .await?;
        self.changed(ChangeEntity::Clients, realm_id).await
    }

    pub async fn set_client_secret(
        &mut self,
        id: i64,
        realm_id: i64,
        secret: (&[u8], &str),
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE oauth_clients SET secret_digest = $1, secret_prefix = $2, updated_at = $3 WHERE id = $4")
            .bind(secret.0.to_vec())
            .bind(secret.1)
            .bind(to_ms(now))
            .bind(id)
            .execute(self.connection())
            .await?;
        self.changed(ChangeEntity::Clients, realm_id).await
    }

    pub async fn delete_client(&mut self, id: i64, realm_id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM oauth_clients WHERE id = $1").bind(id).execute(self.connection()).await?;
        self.changed(ChangeEntity::Clients, realm_id).await
    }

    pub async fn set_realm_claim_mappers(&mut self, realm_id: i64, mappers: &str) -> StoreResult<()> {
        sqlx::query("UPDATE realms SET claim_mappers = $1 WHERE id = $2")
            .bind(mappers)
            .bind(realm_id)
            .execute(self.connection())
            .await?;
        self.changed(ChangeEntity::Clients, realm_id).await
    }
}
