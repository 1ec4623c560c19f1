//! Web portal sessions: the HMAC of a session id, whose it is and until when.
//!
//! Ending a session is a mutation that names it in the change feed, so every node drops
//! it from its cache within a poll; the login that makes one is audited as `auth.login`
//! by the server, and a session stops working when its user or realm is disabled, which
//! the server checks against its in-memory principals on every request.

use crate::{ChangeEntity, Mutation, Store, StoreResult, from_ms, to_ms};
use keyward_core::SecretDigest;
use sqlx::Row;
use time::OffsetDateTime;

/// A live session as stored (never the session id itself).
#[derive(Clone, Debug)]
pub struct PortalSessionRow {
    pub id: i64,
    pub realm_id: i64,
    pub user_id: i64,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

pub struct NewPortalSession {
    pub digest: SecretDigest,
    pub realm_id: i64,
    pub user_id: i64,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl Store {
    /// Records a new session and answers its row number.
    pub async fn insert_portal_session(&self, new: &NewPortalSession) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO portal_sessions (digest, realm_id, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(new.digest.0.to_vec())
        .bind(new.realm_id)
        .bind(new.user_id)
        .bind(to_ms(new.created_at))
        .bind(to_ms(new.expires_at))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// The session with this digest if it is neither revoked nor expired at `now`.
    pub async fn live_portal_session(
        &self,
        digest: &SecretDigest,
        now: OffsetDateTime,
    ) -> StoreResult<Option<PortalSessionRow>> {
        let row = sqlx::query(
            "SELECT id, realm_id, user_id, created_at, expires_at FROM portal_sessions \
             WHERE digest = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(digest.0.to_vec())
        .bind(to_ms(now))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(PortalSessionRow {
            id: row.try_get("id")?,
            realm_id: row.try_get("realm_id")?,
            user_id: row.try_get("user_id")?,
            created_at: from_ms(row.try_get("created_at")?),
            expires_at: from_ms(row.try_get("expires_at")?),
        }))
    }

    /// The digest of the session in row `id`, for the change feed.
    pub async fn portal_session_digest(&self, id: i64) -> StoreResult<Option<SecretDigest>> {
        let row =
            sqlx::query("SELECT digest FROM portal_sessions WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Ok(None) };
        let bytes: Vec<u8> = row.try_get("digest")?;
        Ok(<[u8; 32]>::try_from(bytes.as_slice()).ok().map(SecretDigest))
    }
}

impl Mutation {
    /// Ends the session with this digest and names it in the change feed; answers
    /// whether a live one was ended.
    pub async fn revoke_portal_session(&mut self, digest: &SecretDigest, now: OffsetDateTime) -> StoreResult<bool> {
        let row = sqlx::query(
            "UPDATE portal_sessions SET revoked_at = $2 WHERE digest = $1 AND revoked_at IS NULL RETURNING id",
        )
        .bind(digest.0.to_vec())
        .bind(to_ms(now))
        .fetch_optional(self.connection())
        .await?;
        let Some(row) = row else { return Ok(false) };
        self.changed(ChangeEntity::PortalSession, row.try_get("id")?).await?;
        Ok(true)
    }
}
