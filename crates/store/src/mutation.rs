//! One mutation = one transaction that also extends the audit chain and the change log.

use crate::audit::NewAuditEvent;
use crate::changes::ChangeEntity;
use crate::{Store, StoreResult, to_ms};
use keyward_core::audit::{AuditFields, AuditKey};
use sqlx::{Any, AnyConnection, Row, Transaction};

/// An open write transaction. Dropping it without `commit` rolls everything back, so an
/// error anywhere leaves nothing half-written.
pub struct Mutation {
    tx: Transaction<'static, Any>,
    audit_key: AuditKey,
    head_seq: i64,
    head_hash: [u8; 32],
}

impl Store {
    /// Starts a mutation. Its first statement locks the audit chain head, which makes
    /// the transaction a writer at once (SQLite) and serialises chain appends (both).
    pub async fn begin(&self) -> StoreResult<Mutation> {
        let audit_key = self.audit_key()?;
        let mut tx = self.pool.begin().await?;
        let row =
            sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash").fetch_one(&mut *tx).await?;
        let head_seq: i64 = row.try_get("seq")?;
        let hash: Vec<u8> = row.try_get("hash")?;
        let mut head_hash = [0u8; 32];
        if hash.len() == 32 {
            head_hash.copy_from_slice(&hash);
        }
        Ok(Mutation { tx, audit_key, head_seq, head_hash })
    }

    /// Appends events in their own transaction (used for failed authentications,
    /// which change nothing else).
    pub async fn append_audit(&self, events: Vec<NewAuditEvent>) -> StoreResult<()> {
        let mut mutation = self.begin().await?;
        for event in events {
            mutation.audit(event).await?;
        }
        mutation.commit().await
    }
}

impl Mutation {
    pub(crate) fn connection(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Appends one audit event to the chain.
    pub async fn audit(&mut self, event: NewAuditEvent) -> StoreResult<()> {
        let seq = self.head_seq + 1;
        let at_ms = to_ms(event.at);
        let fields = AuditFields {
            seq,
            at_unix_ms: at_ms,
            realm: &event.realm,
            actor: &event.actor,
            action: &event.action,
            target: &event.target,
            client_ip: &event.client_ip,
            result: &event.result,
            detail: &event.detail,
        };
        let hash = fields.chain_hash(&self.audit_key, &self.head_hash);
        sqlx::query(
            "INSERT INTO audit_events (seq, realm, at, actor, action, target, client_ip, result, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(seq)
        .bind(&event.realm)
        .bind(at_ms)
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.target)
        .bind(&event.client_ip)
        .bind(&event.result)
        .bind(&event.detail)
        .bind(self.head_hash.to_vec())
        .bind(hash.to_vec())
        .execute(&mut *self.tx)
        .await?;
        self.head_seq = seq;
        self.head_hash = hash;
        Ok(())
    }

    /// Records that an entity changed, so every process reloads it from the store.
    pub async fn changed(&mut self, entity: ChangeEntity, entity_id: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO changes (entity, entity_id, at) VALUES ($1, $2, $3)")
            .bind(entity.as_str())
            .bind(entity_id)
            .bind(to_ms(time::OffsetDateTime::now_utc()))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Commits the mutation together with its audit events and change records.
    pub async fn commit(mut self) -> StoreResult<()> {
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(self.head_seq)
            .bind(self.head_hash.to_vec())
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }
}
