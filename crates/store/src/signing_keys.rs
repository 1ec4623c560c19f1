//! Realms' signing keys and revoked access tokens.

use crate::{Mutation, Store, StoreResult, from_ms, to_ms};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

/// A signing key as stored: the private half sealed with the master key.
#[derive(Clone, Debug)]
pub struct SigningKeyRow {
    pub id: i64,
    pub realm_id: i64,
    pub kid: String,
    pub alg: String,
    /// SubjectPublicKeyInfo DER.
    pub public_key: Vec<u8>,
    pub sealed_private_key: Vec<u8>,
    pub created_at: OffsetDateTime,
    /// From when it signs (until a newer key activates).
    pub activates_at: OffsetDateTime,
    /// When it leaves JWKS and stops verifying; `None` while it is the newest key.
    pub removes_at: Option<OffsetDateTime>,
}

/// A key to insert.
pub struct NewSigningKey<'a> {
    pub realm_id: i64,
    pub kid: &'a str,
    pub alg: &'a str,
    pub public_key: &'a [u8],
    pub sealed_private_key: &'a [u8],
    pub activates_at: OffsetDateTime,
}

const KEY_COLUMNS: &str =
    "id, realm_id, kid, alg, public_key, sealed_private_key, created_at, activates_at, removes_at";

fn key_from_row(row: &AnyRow) -> StoreResult<SigningKeyRow> {
    Ok(SigningKeyRow {
        id: row.try_get("id")?,
        realm_id: row.try_get("realm_id")?,
        kid: row.try_get("kid")?,
        alg: row.try_get("alg")?,
        public_key: row.try_get("public_key")?,
        sealed_private_key: row.try_get("sealed_private_key")?,
        created_at: from_ms(row.try_get("created_at")?),
        activates_at: from_ms(row.try_get("activates_at")?),
        removes_at: row.try_get::<Option<i64>, _>("removes_at")?.map(from_ms),
    })
}

/// A revoked token id (`jti`) or session/run id (`sid`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedTokenRow {
    pub realm_id: i64,
    /// "jti" or "sid".
    pub kind: String,
    pub value: String,
    pub expires_at: OffsetDateTime,
}

fn revoked_from_row(row: &AnyRow) -> StoreResult<RevokedTokenRow> {
    Ok(RevokedTokenRow {
        realm_id: row.try_get("realm_id")?,
        kind: row.try_get("kind")?,
        value: row.try_get("value")?,
        expires_at: from_ms(row.try_get("expires_at")?),
    })
}

impl Store {
    /// Every stored key, published or retired, of one realm or of all: the key ring keeps
    /// retired keys to verify API tokens (whose records decide whether they still work).
    pub async fn signing_keys_with_retired(&self, realm_id: Option<i64>) -> StoreResult<Vec<SigningKeyRow>> {
        let rows = match realm_id {
            Some(realm_id) => {
                sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM signing_keys WHERE realm_id = $1 ORDER BY id"))
                    .bind(realm_id)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(key_from_row).collect()
    }

    /// One realm's keys still published at `now`.
    pub async fn realm_signing_keys(&self, realm_id: i64, now: OffsetDateTime) -> StoreResult<Vec<SigningKeyRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys WHERE realm_id = $1 AND (removes_at IS NULL OR removes_at > $2) \
             ORDER BY id"
        ))
        .bind(realm_id)
        .bind(to_ms(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revocations that still matter at `now`.
    pub async fn active_revocations(&self, now: OffsetDateTime) -> StoreResult<Vec<RevokedTokenRow>> {
        let rows = sqlx::query("SELECT realm_id, kind, value, expires_at FROM revoked_tokens WHERE expires_at > $1")
            .bind(to_ms(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(revoked_from_row).collect()
    }

    pub async fn revocation_by_id(&self, id: i64) -> StoreResult<Option<RevokedTokenRow>> {
        let row = sqlx::query("SELECT realm_id, kind, value, expires_at FROM revoked_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(revoked_from_row).transpose()
    }
}

impl Mutation {
    /// Whether the realm has a key that signs at `now`. Mutations are serialised, so
    /// checking here before inserting a key cannot race another node.
    pub async fn realm_has_active_signing_key(&mut self, realm_id: i64, now: OffsetDateTime) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM signing_keys WHERE realm_id = $1 AND activates_at <= $2 \
             AND (removes_at IS NULL OR removes_at > $2)",
        )
        .bind(realm_id)
        .bind(to_ms(now))
        .fetch_one(self.connection())
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Withdraws keys that were published but never signed (a newer rotation supersedes
    /// them): they leave JWKS now. Returns how many.
    pub async fn withdraw_pending_signing_keys(&mut self, realm_id: i64, now: OffsetDateTime) -> StoreResult<u64> {
        let withdrawn = sqlx::query(
            "UPDATE signing_keys SET removes_at = $2 WHERE realm_id = $1 AND activates_at > $2 \
             AND (removes_at IS NULL OR removes_at > $2)",
        )
        .bind(realm_id)
        .bind(to_ms(now))
        .execute(self.connection())
        .await?
        .rows_affected();
        Ok(withdrawn)
    }

    pub async fn insert_signing_key(&mut self, key: &NewSigningKey<'_>, now: OffsetDateTime) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO signing_keys (realm_id, kid, alg, public_key, sealed_private_key, created_at, activates_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(key.realm_id)
        .bind(key.kid)
        .bind(key.alg)
        .bind(key.public_key.to_vec())
        .bind(key.sealed_private_key.to_vec())
        .bind(to_ms(now))
        .bind(to_ms(key.activates_at))
        .fetch_one(self.connection())
        .await?;
        let id = row.try_get("id")?;
        self.changed(crate::ChangeEntity::SigningKeys, key.realm_id).await?;
        Ok(id)
    }

    /// Schedules every current key of the realm except `keep_kid` to leave JWKS at
    /// `removes_at`. Returns how many were scheduled.
    pub async fn retire_signing_keys(
        &mut self,
        realm_id: i64,
        keep_kid: &str,
        removes_at: OffsetDateTime,
    ) -> StoreResult<u64> {
        let retired = sqlx::query(
            "UPDATE signing_keys SET removes_at = $1 WHERE realm_id = $2 AND kid <> $3 AND removes_at IS NULL",
        )
        .bind(to_ms(removes_at))
        .bind(realm_id)
        .bind(keep_kid)
        .execute(self.connection())
        .await?
        .rows_affected();
        self.changed(crate::ChangeEntity::SigningKeys, realm_id).await?;
        Ok(retired)
    }

    /// Revokes a token id or session id until `expires_at`. Revoking twice is no error.
    pub async fn revoke_token(&mut self, revoked: &RevokedTokenRow, now: OffsetDateTime) -> StoreResult<()> {
        let row = sqlx::query(
            "INSERT INTO revoked_tokens (realm_id, kind, value, expires_at, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (realm_id, kind, value) DO NOTHING RETURNING id",
        )
        .bind(revoked.realm_id)
        .bind(&revoked.kind)
        .bind(&revoked.value)
        .bind(to_ms(revoked.expires_at))
        .bind(to_ms(now))
        .fetch_optional(self.connection())
        .await?;
        if let Some(row) = row {
            self.changed(crate::ChangeEntity::RevokedToken, row.try_get("id")?).await?;
        }
        Ok(())
    }
}
