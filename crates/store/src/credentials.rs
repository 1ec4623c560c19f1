//! The one credentials table: every opaque secret keyward hands out is a row here.

use crate::{Backend, Mutation, Store, StoreError, StoreResult, from_ms, to_ms};
use keyward_core::{CredentialKind, RoleSet, SecretDigest};
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
    /// The most roles the credential acts with (`credentials.role_ceiling`); `None`: its
    /// owner's, whatever they are.
    pub role_ceiling: Option<RoleSet>,
    /// The ids of the most groups it acts through (`credentials.group_ceiling`); `None`:
    /// its owner's, whatever they are.
    pub group_ceiling: Option<Vec<i64>>,
}

const ROW_COLUMNS: &str = "id, public_id, realm_id, kind, owner_id, name, description, audience, secret_prefix, \
     created_at, created_by, expires_at, last_used_at, revoked_at";
const INDEX_COLUMNS: &str =
    "id, realm_id, kind, owner_id, audience, secret_hash, expires_at, role_ceiling, group_ceiling";

/// Ids per packed read: about 1 MB of text a query.
const PACKED_RANGE: i64 = 10_000;

/// One text value for the active credentials with ids in [$1, $2): records separated by
/// `;`, fields by `,`, in the order of `unpack`. Free text (the audience) is hex-encoded,
/// so no field can contain a separator. A group ceiling (digits and spaces) is sent with a
/// `g` before it, so that an empty one (no group) differs from none (NULL).
const PACKED_SQLITE: &str = "SELECT group_concat(id || ',' || realm_id || ',' || kind || ',' || ifnull(owner_id, '') \
     || ',' || ifnull(hex(audience), '') || ',' || hex(secret_hash) || ',' || ifnull(expires_at, '') || ',' \
     || ifnull(role_ceiling, '') || ',' || ifnull('g' || group_ceiling, ''), ';') \
     FROM credentials WHERE id >= $1 AND id < $2 AND revoked_at IS NULL AND enabled = 1";
const PACKED_POSTGRES: &str = "SELECT string_agg(concat_ws(',', id, realm_id, kind, coalesce(owner_id::text, ''), \
     coalesce(encode(convert_to(audience, 'UTF8'), 'hex'), ''), encode(secret_hash, 'hex'), \
     coalesce(expires_at::text, ''), coalesce(role_ceiling::text, ''), coalesce('g' || group_ceiling, '')), ';') \
     FROM credentials WHERE id >= $1 AND id < $2 AND revoked_at IS NULL AND enabled = 1";

/// Parses one record of a packed read.
fn unpack(record: &str) -> StoreResult<IndexedCredential> {
    let bad = || StoreError::Database("unreadable packed credential record".to_string());
    let mut fields = record.split(',');
    let mut next = || fields.next().ok_or_else(bad);
    let number = |text: &str| text.parse::<i64>().map_err(|_| bad());
    let optional = |text: &str| if text.is_empty() { Ok(None) } else { number(text).map(Some) };
    let id = number(next()?)?;
    let realm_id = number(next()?)?;
    let kind = kind_from_text(next()?)?;
    let owner_id = optional(next()?)?;
    let audience = match next()? {
        "" => None,
        text => Some(String::from_utf8(hex::decode(text).map_err(|_| bad())?).map_err(|_| bad())?),
    };
    let mut digest = [0u8; 32];
    hex::decode_to_slice(next()?, &mut digest).map_err(|_| bad())?;
    let expires_at = optional(next()?)?.map(|ms| ms.div_euclid(1000));
    let role_ceiling = optional(next()?)?.map(role_ceiling).transpose()?;
    let group_ceiling = match next()? {
        "" => None,
        text => Some(group_ceiling(text.strip_prefix('g').ok_or_else(bad)?)?),
    };
    if fields.next().is_some() {
        return Err(bad());
    }
    Ok(IndexedCredential {
        id,
        realm_id,
        kind,
        owner_id,
        audience,
        digest: SecretDigest(digest),
        expires_at,
        role_ceiling,
        group_ceiling,
    })
}

/// A stored group ceiling: group ids separated by single spaces, `""` for none.
fn group_ceiling(text: &str) -> StoreResult<Vec<i64>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(' ')
        .map(|id| {
            id.parse::<i64>()
                .map_err(|_| StoreError::Database(format!("credential group ceiling {text:?} is unreadable")))
        })
        .collect()
}

/// The stored form of a group ceiling (see [`group_ceiling`]).
fn group_ceiling_text(group_ids: &[i64]) -> String {
    group_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
}

/// A stored role ceiling; a value naming no role set is an error, not "no ceiling".
fn role_ceiling(bits: i64) -> StoreResult<RoleSet> {
    u8::try_from(bits)
        .ok()
        .and_then(RoleSet::from_bits)
        .ok_or_else(|| StoreError::Database(format!("credential role ceiling {bits} names no role set")))
}

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

/// The index form of one row selected with `INDEX_COLUMNS` (the change feed's path;
/// the start-up load reads packed records through `unpack`).
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
        role_ceiling: row.try_get::<Option<i64>, _>("role_ceiling")?.map(role_ceiling).transpose()?,
        group_ceiling: row.try_get::<Option<String>, _>("group_ceiling")?.as_deref().map(group_ceiling).transpose()?,
    })
}

/// Which credentials a list asks for.
#[derive(Clone, Copy, Debug)]
pub struct CredentialQuery {
    pub realm_id: i64,
    pub kind: CredentialKind,
    /// `None` lists credentials without an owner (admin keys).
    pub owner_id: Option<i64>,
    /// Also list revoked credentials (newest history included), not only active ones.
    pub include_revoked: bool,
}

impl Store {
    /// Every active credential in index form, in no particular order.
    ///
    /// This runs once at start over every credential, and handing rows one by one through
    /// the driver costs several microseconds each. So the table is read in id ranges, and
    /// the database packs each range's rows into one text value (see `PACKED_SQLITE`),
    /// which is parsed here; several ranges are read at once on their own connections.
    pub async fn active_credentials(&self) -> StoreResult<Vec<IndexedCredential>> {
        let bounds =
            sqlx::query("SELECT MIN(id) AS low, MAX(id) AS high FROM credentials").fetch_one(&self.pool).await?;
        let (Some(low), Some(high)) =
            (bounds.try_get::<Option<i64>, _>("low")?, bounds.try_get::<Option<i64>, _>("high")?)
        else {
            return Ok(Vec::new());
        };
        let readers = self.read_parallelism() as i64;
        let reads = (0..readers).map(|reader| {
            let store = self.clone();
            tokio::spawn(async move {
                let mut found = Vec::new();
                let mut from = low.checked_add(reader * PACKED_RANGE);
                while let Some(start) = from.filter(|start| *start <= high) {
                    store.packed_credentials_in(start, start.saturating_add(PACKED_RANGE), &mut found).await?;
                    from = start.checked_add(readers * PACKED_RANGE);
                }
                StoreResult::Ok(found)
            })
        });
        let mut all = Vec::new();
        for read in reads.collect::<Vec<_>>() {
            let part =
                read.await.map_err(|error| StoreError::Database(format!("credential load failed: {error}")))??;
            if all.is_empty() {
                all = part;
            } else {
                all.extend(part);
            }
        }
        Ok(all)
    }

    async fn packed_credentials_in(
        &self,
        from: i64,
        until: i64,
        found: &mut Vec<IndexedCredential>,
    ) -> StoreResult<()> {
        let sql = match self.backend {
            Backend::Sqlite => PACKED_SQLITE,
            Backend::Postgres => PACKED_POSTGRES,
        };
        let packed: Option<String> = sqlx::query_scalar(sql).bind(from).bind(until).fetch_one(&self.pool).await?;
        for record in packed.as_deref().unwrap_or("").split(';').filter(|record| !record.is_empty()) {
            found.push(unpack(record)?);
        }
        Ok(())
    }

    /// The index form of one credential and whether it is out of the index (revoked or
    /// disabled); `None` when the row is gone.
    pub async fn credential_for_index(&self, id: i64) -> StoreResult<Option<(IndexedCredential, bool)>> {
        let sql = format!("SELECT {INDEX_COLUMNS}, revoked_at, enabled FROM credentials WHERE id = $1");
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let out = row.try_get::<Option<i64>, _>("revoked_at")?.is_some() || row.try_get::<i64, _>("enabled")? == 0;
        Ok(Some((indexed_from(&row)?, out)))
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
        let revoked_clause = if query.include_revoked { "" } else { "AND revoked_at IS NULL" };
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM credentials WHERE realm_id = $1 AND kind = $2 AND {owner_clause} \
             {revoked_clause} ORDER BY id"
        );
        let mut statement = sqlx::query(&sql).bind(query.realm_id).bind(query.kind.as_str());
        if let Some(owner_id) = query.owner_id {
            statement = statement.bind(owner_id);
        }
        let rows = statement.fetch_all(&self.pool).await?;
        rows.iter().map(row_from).collect()
    }

    /// Active deployment keys bound to `audience` (a service's or a deployment's), oldest
    /// first: the first is the one sample code shows.
    pub async fn gateway_keys(&self, realm_id: i64, audience: &str) -> StoreResult<Vec<CredentialRow>> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM credentials WHERE realm_id = $1 AND kind = 'deployment_key' \
             AND audience = $2 AND revoked_at IS NULL ORDER BY id"
        );
        let rows = sqlx::query(&sql).bind(realm_id).bind(audience).fetch_all(&self.pool).await?;
        rows.iter().map(row_from).collect()
    }

    /// The active (not revoked) credential of this kind that `owner_id` holds under `name`.
    pub async fn active_credential_named(
        &self,
        owner_id: i64,
        kind: CredentialKind,
        name: &str,
    ) -> StoreResult<CredentialRow> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM credentials WHERE owner_id = $1 AND kind = $2 AND name = $3 \
             AND revoked_at IS NULL"
        );
        let row = sqlx::query(&sql).bind(owner_id).bind(kind.as_str()).bind(name).fetch_one(&self.pool).await?;
        row_from(&row)
    }

    /// A realm's active credentials of one kind that expire in `[from, until)`, soonest first.
    pub async fn credentials_expiring(
        &self,
        realm_id: i64,
        kind: CredentialKind,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<Vec<CredentialRow>> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM credentials WHERE realm_id = $1 AND kind = $2 AND revoked_at IS NULL \
             AND expires_at >= $3 AND expires_at < $4 ORDER BY expires_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(realm_id)
            .bind(kind.as_str())
            .bind(to_ms(from))
            .bind(to_ms(until))
            .fetch_all(&self.pool)
            .await?;
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

    /// Sets the most roles credential `id` acts with and the most groups it acts through
    /// (see [`IndexedCredential::role_ceiling`] and [`IndexedCredential::group_ceiling`]).
    pub async fn set_ceiling(&mut self, id: i64, roles: RoleSet, group_ids: &[i64]) -> StoreResult<()> {
        sqlx::query("UPDATE credentials SET role_ceiling = $1, group_ceiling = $2 WHERE id = $3")
            .bind(i64::from(roles.bits()))
            .bind(group_ceiling_text(group_ids))
            .bind(id)
            .execute(self.connection())
            .await?;
        self.changed(crate::ChangeEntity::Credential, id).await
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

    /// Revokes every active credential of `kind` that `owner_id` holds; returns how many.
    pub async fn revoke_owned(&mut self, owner_id: i64, kind: CredentialKind, now: OffsetDateTime) -> StoreResult<u64> {
        let rows = sqlx::query(
            "UPDATE credentials SET revoked_at = $1 WHERE owner_id = $2 AND kind = $3 AND revoked_at IS NULL RETURNING id",
        )
        .bind(to_ms(now))
        .bind(owner_id)
        .bind(kind.as_str())
        .fetch_all(self.connection())
        .await?;
        for row in &rows {
            self.changed(crate::ChangeEntity::Credential, row.try_get("id")?).await?;
        }
        Ok(rows.len() as u64)
    }

    /// Marks expired, unrevoked credentials of `owner_id` named `name` as revoked at
    /// their expiry, so the name is free for a new one: names are unique among valid
    /// credentials only.
    pub async fn retire_expired_named(
        &mut self,
        owner_id: i64,
        kind: CredentialKind,
        name: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let rows = sqlx::query(
            "UPDATE credentials SET revoked_at = expires_at WHERE owner_id = $1 AND kind = $2 AND name = $3 \
             AND revoked_at IS NULL AND expires_at <= $4 RETURNING id",
        )
        .bind(owner_id)
        .bind(kind.as_str())
        .bind(name)
        .bind(to_ms(now))
        .fetch_all(self.connection())
        .await?;
        for row in &rows {
            self.changed(crate::ChangeEntity::Credential, row.try_get("id")?).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_records_read_back_from_either_engine() {
        let digest = "00ff".repeat(16);
        // SQLite's hex() is upper case, PostgreSQL's encode() lower case.
        for hex_digest in [digest.to_uppercase(), digest.clone()] {
            let record = format!("7,1,user_api_key,42,6d6f64656c2d6d6f6e69746f72,{hex_digest},1700000000999,,");
            let credential = unpack(&record).unwrap();
            assert_eq!((credential.id, credential.realm_id, credential.owner_id), (7, 1, Some(42)));
            assert_eq!(credential.kind, CredentialKind::UserApiKey);
            assert_eq!(credential.audience.as_deref(), Some("model-monitor"));
            assert_eq!(credential.digest.0[..2], [0x00, 0xff]);
            assert_eq!(credential.expires_at, Some(1_700_000_000));
        }
        let admin = unpack(&format!("8,1,admin_key,,,{digest},,,")).unwrap();
        assert_eq!((admin.owner_id, admin.audience, admin.expires_at, admin.role_ceiling), (None, None, None, None));
        assert_eq!(admin.group_ceiling, None);
        // A run's credential with a ceiling of create-api-service and workload-launcher,
        // through groups 3 and 14; an empty ceiling is a ceiling too (no roles, no
        // groups), not none.
        let run = unpack(&format!("9,1,workload_credential,42,,{digest},,12,g3 14")).unwrap();
        assert_eq!(
            run.role_ceiling.map(RoleSet::names),
            Some(vec!["create-api-service".into(), "workload-launcher".into()])
        );
        assert_eq!(run.group_ceiling, Some(vec![3, 14]));
        let run = unpack(&format!("9,1,workload_credential,42,,{digest},,0,g")).unwrap();
        assert_eq!((run.role_ceiling, run.group_ceiling), (Some(RoleSet::EMPTY), Some(Vec::new())));
        // Written and read back the same way.
        assert_eq!(group_ceiling(&group_ceiling_text(&[3, 14])).unwrap(), vec![3, 14]);
        assert_eq!(group_ceiling(&group_ceiling_text(&[])).unwrap(), Vec::<i64>::new());
    }

    #[test]
    fn damaged_packed_records_are_errors_not_credentials() {
        let digest = "ab".repeat(32);
        for record in [
            "7,1,user_api_key,42,,abcd,".to_string(),
            format!("7,1,user_api_key,42,,{digest}"),
            format!("x,1,user_api_key,,,{digest},,"),
            format!("7,1,no_such_kind,,,{digest},,"),
            format!("7,1,user_api_key,,,{digest},,,extra"),
            format!("7,1,user_api_key,,,{digest},"),
            format!("7,1,workload_credential,,,{digest},,16,"),
            format!("7,1,workload_credential,,,{digest},,-1,"),
            format!("7,1,workload_credential,,,{digest},,0,3"),
            format!("7,1,workload_credential,,,{digest},,0,g3  4"),
            format!("7,1,workload_credential,,,{digest},,0,gx"),
            format!("7,1,workload_credential,,,{digest},,0"),
        ] {
            assert!(unpack(&record).is_err(), "{record}");
        }
    }
}
