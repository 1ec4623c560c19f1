//! Realms (tenants) and their policies.

use crate::{Mutation, Store, StoreError, StoreResult, flag, from_ms, to_ms};
use keyward_core::jwt::{SigningAlg, TokenSettings};
use keyward_core::policy::{ServiceTokenPolicy, UserKeyPolicy};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::{Duration, OffsetDateTime};

#[derive(Clone, Debug)]
pub struct RealmRow {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub user_key_policy: UserKeyPolicy,
    pub service_token_policy: ServiceTokenPolicy,
    pub display_name: String,
    pub token_settings: TokenSettings,
    pub created_at: OffsetDateTime,
}

/// Changes to a realm's settings; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default)]
pub struct RealmPatch {
    pub display_name: Option<String>,
    pub signing_alg: Option<SigningAlg>,
    pub access_token_lifetime: Option<Duration>,
}

const REALM_COLUMNS: &str = "id, name, enabled, user_keys_allowed, user_key_max_lifetime_secs, \
     service_token_max_lifetime_secs, display_name, signing_alg, access_token_lifetime_secs, tokens_not_before, created_at";

fn realm_from_row(row: &AnyRow) -> StoreResult<RealmRow> {
    let signing_alg: String = row.try_get("signing_alg")?;
    Ok(RealmRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        user_key_policy: UserKeyPolicy {
            allowed: row.try_get::<i64, _>("user_keys_allowed")? != 0,
            max_lifetime: Duration::seconds(row.try_get("user_key_max_lifetime_secs")?),
        },
        service_token_policy: ServiceTokenPolicy {
            max_lifetime: Duration::seconds(row.try_get("service_token_max_lifetime_secs")?),
        },
        display_name: row.try_get("display_name")?,
        token_settings: TokenSettings {
            signing_alg: SigningAlg::parse(&signing_alg)
                .ok_or_else(|| StoreError::Database(format!("unknown signing algorithm {signing_alg:?}")))?,
            access_token_lifetime: Duration::seconds(row.try_get("access_token_lifetime_secs")?),
            tokens_not_before: row.try_get::<i64, _>("tokens_not_before")? / 1000,
        },
        created_at: from_ms(row.try_get("created_at")?),
    })
}

impl Store {
    /// Returns the realm called `name`, creating it first if it does not exist.
    /// Returns whether it was created by this call.
    pub async fn ensure_realm(&self, name: &str, now: OffsetDateTime) -> StoreResult<(RealmRow, bool)> {
        let inserted =
            sqlx::query("INSERT INTO realms (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(to_ms(now))
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0;
        let realm = self.realm_by_name(name).await?;
        if inserted {
            // Running servers learn of the realm through the change feed.
            sqlx::query("INSERT INTO changes (entity, entity_id, at) VALUES ($1, $2, $3)")
                .bind(crate::ChangeEntity::Realm.as_str())
                .bind(realm.id)
                .bind(to_ms(now))
                .execute(&self.pool)
                .await?;
        }
        Ok((realm, inserted))
    }

    pub async fn realm_by_name(&self, name: &str) -> StoreResult<RealmRow> {
        let row = sqlx::query(&format!("SELECT {REALM_COLUMNS} FROM realms WHERE name = $1"))
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        realm_from_row(&row)
    }

    pub async fn realm_by_id(&self, id: i64) -> StoreResult<RealmRow> {
        let row = sqlx::query(&format!("SELECT {REALM_COLUMNS} FROM realms WHERE id = $1"))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        realm_from_row(&row)
    }

    pub async fn list_realms(&self) -> StoreResult<Vec<RealmRow>> {
        let rows =
            sqlx::query(&format!("SELECT {REALM_COLUMNS} FROM realms ORDER BY id")).fetch_all(&self.pool).await?;
        rows.iter().map(realm_from_row).collect()
    }

    /// One page of realms in creation order, after row `after`.
    pub async fn list_realms_page(&self, after: i64, limit: i64) -> StoreResult<Vec<RealmRow>> {
        let sql = format!("SELECT {REALM_COLUMNS} FROM realms WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql).bind(after).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(realm_from_row).collect()
    }
}

impl Mutation {
    /// Inserts an enabled realm with the default key policies; returns its id. A taken
    /// name is `Conflict { field: "name" }`.
    pub async fn insert_realm(
        &mut self,
        name: &str,
        display_name: &str,
        tokens: TokenSettings,
        now: OffsetDateTime,
    ) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO realms (name, display_name, signing_alg, access_token_lifetime_secs, tokens_not_before, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(name)
        .bind(display_name)
        .bind(tokens.signing_alg.as_str())
        .bind(tokens.access_token_lifetime.whole_seconds())
        .bind(tokens.tokens_not_before * 1000)
        .bind(to_ms(now))
        .fetch_one(self.connection())
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Applies the settings the patch names and leaves the rest, `tokens_not_before`
    /// included (the token service moves that one), as they are in the database.
    pub async fn update_realm(&mut self, realm_id: i64, patch: &RealmPatch) -> StoreResult<()> {
        let affected = sqlx::query(
            "UPDATE realms SET display_name = COALESCE($1, display_name), signing_alg = COALESCE($2, signing_alg), \
             access_token_lifetime_secs = COALESCE($3, access_token_lifetime_secs) WHERE id = $4",
        )
        .bind(patch.display_name.as_deref())
        .bind(patch.signing_alg.map(SigningAlg::as_str))
        .bind(patch.access_token_lifetime.map(|lifetime| lifetime.whole_seconds()))
        .bind(realm_id)
        .execute(self.connection())
        .await?
        .rows_affected();
        if affected == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    pub async fn set_realm_enabled(&mut self, realm_id: i64, enabled: bool) -> StoreResult<()> {
        let affected = sqlx::query("UPDATE realms SET enabled = $1 WHERE id = $2")
            .bind(flag(enabled))
            .bind(realm_id)
            .execute(self.connection())
            .await?
            .rows_affected();
        if affected == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    pub async fn set_user_key_policy(&mut self, realm_id: i64, policy: UserKeyPolicy) -> StoreResult<()> {
        sqlx::query("UPDATE realms SET user_keys_allowed = $1, user_key_max_lifetime_secs = $2 WHERE id = $3")
            .bind(flag(policy.allowed))
            .bind(policy.max_lifetime.whole_seconds())
            .bind(realm_id)
            .execute(self.connection())
            .await?;
        Ok(())
    }

    pub async fn set_service_token_policy(&mut self, realm_id: i64, policy: ServiceTokenPolicy) -> StoreResult<()> {
        sqlx::query("UPDATE realms SET service_token_max_lifetime_secs = $1 WHERE id = $2")
            .bind(policy.max_lifetime.whole_seconds())
            .bind(realm_id)
            .execute(self.connection())
            .await?;
        Ok(())
    }
}
