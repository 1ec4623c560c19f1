//! Reading and verifying the audit log. Appending happens in [`crate::Mutation`].

use crate::{Store, StoreError, StoreResult, from_ms, to_ms};
use futures_util::TryStreamExt;
use keyward_core::audit::{AuditFields, ChainBreak, verify_chain};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

/// An event to append. The store assigns its sequence number and hashes.
#[derive(Clone, Debug)]
pub struct NewAuditEvent {
    pub realm: String,
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub client_ip: String,
    pub result: String,
    pub detail: String,
}

#[derive(Clone, Debug)]
pub struct AuditEventRow {
    pub seq: i64,
    pub realm: String,
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub client_ip: String,
    pub result: String,
    pub detail: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Which events to read; every field narrows.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub realm: String,
    /// The cursor: the last event of the page before (0 for the first page). Oldest
    /// first, the events after it; newest first, those before it.
    pub after_seq: i64,
    pub newest_first: bool,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub result: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub limit: i64,
}

fn event_from_row(row: &AnyRow) -> StoreResult<AuditEventRow> {
    Ok(AuditEventRow {
        seq: row.try_get("seq")?,
        realm: row.try_get("realm")?,
        at: from_ms(row.try_get("at")?),
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        client_ip: row.try_get("client_ip")?,
        result: row.try_get("result")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

const EVENT_COLUMNS: &str = "seq, realm, at, actor, action, target, client_ip, result, detail, prev_hash, hash";

impl Store {
    /// Events of one realm in sequence order, narrowed by the filter.
    pub async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEventRow>> {
        let (from, order, cursor) = match (filter.newest_first, filter.after_seq) {
            (false, after) => ("seq > $2", "seq", after),
            (true, 0) => ("seq < $2", "seq DESC", i64::MAX),
            (true, before) => ("seq < $2", "seq DESC", before),
        };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE realm = $1 AND {from} \
             AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR actor = $4) AND ($5 IS NULL OR result = $5) \
             AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7) ORDER BY {order} LIMIT $8"
        );
        let rows = sqlx::query(&sql)
            .bind(&filter.realm)
            .bind(cursor)
            .bind(filter.action.as_deref())
            .bind(filter.actor.as_deref())
            .bind(filter.result.as_deref())
            .bind(filter.since.map(to_ms))
            .bind(filter.until.map(to_ms))
            .bind(filter.limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Recomputes the whole chain. Returns the number of events verified, or where and
    /// how the stored chain differs from what was written.
    pub async fn verify_audit(&self) -> StoreResult<Result<i64, ChainBreak>> {
        let key = self.audit_key()?;
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&self.pool).await?;
        let head_seq: i64 = head.try_get("seq")?;
        let head_hash = to_hash(&head.try_get::<Vec<u8>, _>("hash")?);
        // Events appended while we read have higher numbers than the head we read.
        let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq <= $1 ORDER BY seq");
        let mut rows = sqlx::query(&sql).bind(head_seq).fetch(&self.pool);
        let mut events = Vec::new();
        while let Some(row) = rows.try_next().await? {
            events.push(event_from_row(&row)?);
        }
        let stored = events.iter().map(|event| {
            let fields = AuditFields {
                seq: event.seq,
                at_unix_ms: to_ms(event.at),
                realm: &event.realm,
                actor: &event.actor,
                action: &event.action,
                target: &event.target,
                client_ip: &event.client_ip,
                result: &event.result,
                detail: &event.detail,
            };
            (fields, to_hash(&event.prev_hash), to_hash(&event.hash))
        });
        Ok(verify_chain(&key, stored, (head_seq, head_hash)))
    }
}

fn to_hash(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if bytes.len() == 32 {
        out.copy_from_slice(bytes);
    }
    out
}

impl From<ChainBreak> for StoreError {
    fn from(chain_break: ChainBreak) -> Self {
        StoreError::Database(chain_break.to_string())
    }
}
