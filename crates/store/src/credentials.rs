//! The one credentials table: every opaque secret keyward hands out is a row here.

use crate::{Mutation, Store, StoreError, StoreResult, from_ms, to_ms};
use futures_util::TryStreamExt;
use keyward_core::{CredentialKind, SecretDigest};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

/// A credential to insert. `digest` is the HMAC of the secret; the secret itself never
/// reaches the store.
pub struct NewCredential<'a> {
    pub public_id: &'a str,
    pub realm_id: i64,
    pub kind: CredentialKind,
    pub owner_id: Option<i64>,
    pub name: &'a str,
    pub description: &'a str,
    pub audience: Option<&'a str>,
    pub secret_prefix: &'a str,
    pub digest: SecretDigest,
    pub created_at: OffsetDateTime,
    pub created_by: &'a str,
    pub expires_at: Option<OffsetDateTime>,
}

/// A credential as listed and shown: everything but the digest.
#[derive(Clone, Debug)]
pub struct CredentialRow {
    pub id: i64,
    pub public_id: String,
    pub realm_id: i64,
    pub kind: CredentialKind,
    pub owner_id: Option<i64>,
    pub name: String,
    pub description: String,
    pub audience: Option<String>,
    pub secret_prefix: String,
    pub created_at: OffsetDateTime,
    pub created_by: String,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// What the in-memory index needs of an active credential.
#[derive(Clone, Debug)]
pub struct IndexedCredential {
    pub id: i64,
    pub realm_id: i64,
    pub kind: CredentialKind,
    pub owner_id: Option<i64>,
    pub audience: Option<String>,
    pub digest: SecretDigest,
    /// Unix seconds.
    pub expires_at: Option<i64>,
}

const ROW_COLUMNS: &str = "id, public_id, realm_id, kind, owner_id, name, description, audience, secret_prefix, \
     created_at, created_by, expires_at, last_used_at, revoked_at";
const INDEX_COLUMNS: &str = "id, realm_id, kind, owner_id, audience, secret_hash, expires_at";

fn kind_from_text(text: &str) -> StoreResult<CredentialKind> {
    CredentialKind::from_str_name(text).ok_or_else(|| StoreError::Database(format!("unknown credential kind {text}")))
}

fn row_from(row: &AnyRow) -> StoreResult<CredentialRow> {
    Ok(CredentialRow {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        realm_id: row.try_get("realm_id")?,
        kind: kind_from_text(&row.try_get::<String, _>("kind")?)?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        audience: row.try_get("audience")?,
        secret_prefix: row.try_get("secret_prefix")?,
        created_at: from_ms(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(from_ms),
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(from_ms),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(from_ms),
    })
}

fn indexed_from(row: &AnyRow) -> StoreResult<IndexedCredential> {
    let hash: Vec<u8> = row.try_get("secret_hash")?;
    let digest: [u8; 32] =
        hash.try_into().map_err(|_| StoreError::Database("credential digest is not 32 bytes".to_string()))?;
    Ok(IndexedCredential {
        id: row.try_get("id")?,
        realm_id: row.try_get("realm_id")?,
        kind: kind_from_text(&row.try_get::<String, _>("kind")?)?,
        owner_id: row.try_get("owner_id")?,
        audience: row.try_get("audience")?,
        digest: SecretDigest(digest),
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(|ms| ms.div_euclid(1000)),
    })
}

/// Which credentials a list asks for.
#[derive(Clone, Copy, Debug)]
pub struct CredentialQuery {
    pub realm_id: i64,
    pub kind: CredentialKind,
    /// `None` lists credentials without an owner (admin keys).
    pub owner_id: Option<i64>,
}

impl Store {
    /// Streams every active credential (not revoked) to `each`, for building the index.
    pub async fn for_each_active_credential(&self, mut each: impl FnMut(IndexedCredential)) -> StoreResult<()> {
        let sql = format!("SELECT {INDEX_COLUMNS} FROM credentials WHERE revoked_at IS NULL");
        let mut rows = sqlx::query(&sql).fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            each(indexed_from(&row)?);
        }
        Ok(())
    }

    /// The index form of one credential and whether it is revoked; `None` when the row
    /// is gone.
    pub async fn credential_for_index(&self, id: i64) -> StoreResult<Option<(IndexedCredential, bool)>> {
        let sql = format!("SELECT {INDEX_COLUMNS}, revoked_at FROM credentials WHERE id = $1");
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let revoked = row.try_get::<Option<i64>, _>("revoked_at")?.is_some();
        Ok(Some((indexed_from(&row)?, revoked)))
    }

    pub async fn credential_by_public_id(&self, realm_id: i64, public_id: &str) -> StoreResult<CredentialRow> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM credentials WHERE realm_id = $1 AND public_id = $2");
        let row = sqlx::query(&sql).bind(realm_id).bind(public_id).fetch_one(&self.pool).await?;
        row_from(&row)
    }

    /// The credential whose secret has this digest, in any state.
    pub async fn credential_by_digest(&self, digest: &SecretDigest) -> StoreResult<CredentialRow> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM credentials WHERE secret_hash = $1");
        let row = sqlx::query(&sql).bind(digest.0.to_vec()).fetch_one(&self.pool).await?;
        row_from(&row)
    }

    pub async fn credential_by_id(&self, id: i64) -> StoreResult<CredentialRow> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM credentials WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_one(&self.pool).await?;
        row_from(&row)
    }

    /// Active credentials of one kind and owner, oldest first.
    pub async fn list_credentials(&self, query: CredentialQuery) -> StoreResult<Vec<CredentialRow>> {
        let owner_clause = if query.owner_id.is_some() { "owner_id = $3" } else { "owner_id IS NULL" };
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM credentials WHERE realm_id = $1 AND kind = $2 AND {owner_clause} \
             AND revoked_at IS NULL ORDER BY id"
        );
        let mut statement = sqlx::query(&sql).bind(query.realm_id).bind(query.kind.as_str());
        if let Some(owner_id) = query.owner_id {
            statement = statement.bind(owner_id);
        }
        let rows = statement.fetch_all(&self.pool).await?;
        rows.iter().map(row_from).collect()
    }

    /// Writes a batch of last-used times (unix ms) in one transaction. Times only move
    /// forward, so batches from several nodes can arrive in any order.
    pub async fn record_last_used(&self, uses: &[(i64, i64)]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for (id, at_ms) in uses {
            sqlx::query(
                "UPDATE credentials SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(at_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the realm has any way in with admin rights (an active admin key or an
    /// enabled user holding the admin role directly or through a group).
    pub async fn realm_has_admin(&self, realm_id: i64) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM credentials WHERE realm_id = $1 AND kind = 'admin_key' AND revoked_at IS NULL) + \
               (SELECT COUNT(*) FROM users u JOIN user_roles r ON r.user_id = u.id \
                  WHERE u.realm_id = $1 AND u.enabled = 1 AND r.role = 'admin') + \
               (SELECT COUNT(*) FROM users u JOIN group_members m ON m.user_id = u.id \
                  JOIN group_roles r ON r.group_id = m.group_id \
                  WHERE u.realm_id = $1 AND u.enabled = 1 AND r.role = 'admin') AS admins",
        )
        .bind(realm_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("admins")? > 0)
    }
}

impl Mutation {
    pub async fn insert_credential(&mut self, new: &NewCredential<'_>) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO credentials (public_id, realm_id, kind, owner_id, name, description, audience, \
             secret_prefix, secret_hash, created_at, created_by, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(new.public_id)
        .bind(new.realm_id)
        .bind(new.kind.as_str())
        .bind(new.owner_id)
        .bind(new.name)
        .bind(new.description)
        .bind(new.audience)
        .bind(new.secret_prefix)
        .bind(new.digest.0.to_vec())
        .bind(to_ms(new.created_at))
        .bind(new.created_by)
        .bind(new.expires_at.map(to_ms))
        .fetch_one(self.connection())
        .await?;
        let id: i64 = row.try_get("id")?;
        self.changed(crate::ChangeEntity::Credential, id).await?;
        Ok(id)
    }

    /// Revokes a credential. Answers `NotFound` when it was already revoked.
    pub async fn revoke_credential(&mut self, id: i64, now: OffsetDateTime) -> StoreResult<()> {
        let affected = sqlx::query("UPDATE credentials SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(to_ms(now))
            .bind(id)
            .execute(self.connection())
            .await?
            .rows_affected();
        if affected == 0 {
            return Err(StoreError::NotFound);
        }
        self.changed(crate::ChangeEntity::Credential, id).await
    }
}
