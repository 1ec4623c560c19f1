//! API tokens: rows of the credentials table of kind `api_token`, with the user they act
//! as. The JWT is never stored; `secret_hash` is the HMAC of the current JWT's `jti`.

use crate::{Mutation, Store, StoreError, StoreResult, from_ms, to_ms};
use keyward_core::{CredentialKind, SecretDigest};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

/// An API token's record, with its user's public id and name.
#[derive(Clone, Debug)]
pub struct ApiTokenRow {
    pub id: i64,
    pub public_id: String,
    pub realm_id: i64,
    pub owner_id: i64,
    pub owner_public_id: String,
    pub owner_username: String,
    pub name: String,
    pub description: String,
    /// Canonical entries, as `keyward_core::ipfilter::entry_text` writes them.
    pub filter: Vec<String>,
    pub enabled: bool,
    pub generation: i64,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub created_by: String,
    pub updated_at: Option<OffsetDateTime>,
    pub updated_by: Option<String>,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked: bool,
    /// The HMAC of the current JWT's `jti`.
    pub digest: SecretDigest,
    /// The privileges (JSON roles and groups) a token manager who is not an admin let the
    /// current JWT act within; `None` when an admin minted it.
    pub bound_privileges: Option<String>,
}

pub struct NewApiToken<'a> {
    pub public_id: &'a str,
    pub realm_id: i64,
    pub owner_id: i64,
    pub name: &'a str,
    pub description: &'a str,
    pub filter: &'a [String],
    pub enabled: bool,
    /// HMAC of the JWT's `jti`.
    pub digest: SecretDigest,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub created_by: &'a str,
    /// See [`ApiTokenRow::bound_privileges`].
    pub bound_privileges: Option<&'a str>,
}

/// An API token's record as it is to be after an edit; every field is written.
pub struct ApiTokenPatch<'a> {
    pub owner_id: i64,
    pub name: &'a str,
    pub description: &'a str,
    pub filter: &'a [String],
    pub enabled: bool,
    pub expires_at: OffsetDateTime,
    /// A new JWT's `jti` digest: the generation goes up by one and every earlier JWT of
    /// the record stops working.
    pub new_digest: Option<SecretDigest>,
    pub updated_at: OffsetDateTime,
    pub updated_by: &'a str,
    /// See [`ApiTokenRow::bound_privileges`]; written as it is.
    pub bound_privileges: Option<&'a str>,
}

/// What a filter that is not a JSON list of strings reads as.
pub const UNREADABLE_FILTER: &str = "(unreadable filter)";

const COLUMNS: &str = "c.id, c.public_id, c.realm_id, c.owner_id, u.public_id AS owner_public_id, \
     u.username AS owner_username, c.name, c.description, c.ip_filter, c.enabled, c.generation, c.expires_at, \
     c.created_at, c.created_by, c.updated_at, c.updated_by, c.last_used_at, c.revoked_at, c.secret_hash, \
     c.bound_privileges";
const FROM: &str = "FROM credentials c JOIN users u ON u.id = c.owner_id WHERE c.kind = 'api_token'";

fn filter_json(filter: &[String]) -> String {
    serde_json::Value::from(filter.to_vec()).to_string()
}

fn row_from(row: &AnyRow) -> StoreResult<ApiTokenRow> {
    let filter_text: String = row.try_get("ip_filter")?;
    // A damaged filter must neither stop every node nor open the token to everyone: it
    // reads as an entry that is no address, which the server turns into "nowhere".
    let filter: Vec<String> =
        serde_json::from_str(&filter_text).unwrap_or_else(|_| vec![UNREADABLE_FILTER.to_string()]);
    Ok(ApiTokenRow {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        realm_id: row.try_get("realm_id")?,
        owner_id: row.try_get("owner_id")?,
        owner_public_id: row.try_get("owner_public_id")?,
        owner_username: row.try_get("owner_username")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        filter,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        generation: row.try_get("generation")?,
        expires_at: from_ms(row.try_get::<Option<i64>, _>("expires_at")?.unwrap_or(0)),
        created_at: from_ms(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
        updated_at: row.try_get::<Option<i64>, _>("updated_at")?.map(from_ms),
        updated_by: row.try_get("updated_by")?,
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(from_ms),
        revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        digest: SecretDigest(
            row.try_get::<Vec<u8>, _>("secret_hash")?
                .try_into()
                .map_err(|_| StoreError::Database("API token digest is not 32 bytes".to_string()))?,
        ),
        bound_privileges: row.try_get("bound_privileges")?,
    })
}

impl Store {
    /// Every API token that is not deleted, for the in-memory table at start.
    pub async fn live_api_tokens(&self) -> StoreResult<Vec<ApiTokenRow>> {
        let sql = format!("SELECT {COLUMNS} {FROM} AND c.revoked_at IS NULL");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(row_from).collect()
    }

    /// The API token with this row id, deleted or not; `None` when it is not one.
    pub async fn api_token_by_id(&self, id: i64) -> StoreResult<Option<ApiTokenRow>> {
        let sql = format!("SELECT {COLUMNS} {FROM} AND c.id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(row_from).transpose()
    }

    /// The realm's API token with this public id, unless it is deleted.
    pub async fn api_token_by_public_id(&self, realm_id: i64, public_id: &str) -> StoreResult<ApiTokenRow> {
        let sql = format!("SELECT {COLUMNS} {FROM} AND c.realm_id = $1 AND c.public_id = $2 AND c.revoked_at IS NULL");
        let row = sqlx::query(&sql).bind(realm_id).bind(public_id).fetch_one(&self.pool).await?;
        row_from(&row)
    }

    /// A page of the realm's API tokens after row `after`, optionally of one user.
    pub async fn list_api_tokens(
        &self,
        realm_id: i64,
        owner_id: Option<i64>,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<ApiTokenRow>> {
        let select = format!("SELECT {COLUMNS} {FROM} AND c.realm_id = $1 AND c.revoked_at IS NULL");
        let rows =
            crate::page_rows(&self.pool, &select, "c.id", "c.owner_id", (realm_id, owner_id), after, limit).await?;
        rows.iter().map(row_from).collect()
    }
}

impl Mutation {
    /// The realm's live API token with this public id, read inside the mutation: edits
    /// are computed from it, and mutations are serialised, so no edit is lost.
    pub async fn api_token_for_update(&mut self, realm_id: i64, public_id: &str) -> StoreResult<ApiTokenRow> {
        let sql = format!("SELECT {COLUMNS} {FROM} AND c.realm_id = $1 AND c.public_id = $2 AND c.revoked_at IS NULL");
        let row = sqlx::query(&sql).bind(realm_id).bind(public_id).fetch_one(self.connection()).await?;
        row_from(&row)
    }

    pub async fn insert_api_token(&mut self, new: &NewApiToken<'_>) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO credentials (public_id, realm_id, kind, owner_id, name, description, secret_prefix, \
             secret_hash, created_at, created_by, expires_at, ip_filter, enabled, generation, bound_privileges) \
             VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8, $9, $10, $11, $12, 1, $13) RETURNING id",
        )
        .bind(new.public_id)
        .bind(new.realm_id)
        .bind(CredentialKind::ApiToken.as_str())
        .bind(new.owner_id)
        .bind(new.name)
        .bind(new.description)
        .bind(new.digest.0.to_vec())
        .bind(to_ms(new.created_at))
        .bind(new.created_by)
        .bind(to_ms(new.expires_at))
        .bind(filter_json(new.filter))
        .bind(i64::from(new.enabled))
        .bind(new.bound_privileges)
        .fetch_one(self.connection())
        .await?;
        let id: i64 = row.try_get("id")?;
        self.changed(crate::ChangeEntity::Credential, id).await?;
        Ok(id)
    }

    /// Writes an edit of a live API token; `NotFound` when it is deleted meanwhile.
    pub async fn update_api_token(&mut self, id: i64, patch: &ApiTokenPatch<'_>) -> StoreResult<()> {
        let (digest_clause, generation_clause) = match patch.new_digest {
            Some(_) => (", secret_hash = $11", ", generation = generation + 1"),
            None => ("", ""),
        };
        let sql = format!(
            "UPDATE credentials SET owner_id = $1, name = $2, description = $3, ip_filter = $4, enabled = $5, \
             expires_at = $6, updated_at = $7, updated_by = $8, bound_privileges = $9{digest_clause}\
             {generation_clause} WHERE id = $10 AND kind = 'api_token' AND revoked_at IS NULL"
        );
        let mut query = sqlx::query(&sql)
            .bind(patch.owner_id)
            .bind(patch.name)
            .bind(patch.description)
            .bind(filter_json(patch.filter))
            .bind(i64::from(patch.enabled))
            .bind(to_ms(patch.expires_at))
            .bind(to_ms(patch.updated_at))
            .bind(patch.updated_by)
            .bind(patch.bound_privileges)
            .bind(id);
        if let Some(digest) = &patch.new_digest {
            query = query.bind(digest.0.to_vec());
        }
        if query.execute(self.connection()).await?.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.changed(crate::ChangeEntity::Credential, id).await
    }
}
