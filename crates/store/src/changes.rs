//! The change log that keeps every process's in-memory index current.

use crate::{Store, StoreResult};
use sqlx::Row;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeEntity {
    Credential,
    Principal,
    Realm,
    /// The signing keys of the realm whose id is the entity id.
    SigningKeys,
    RevokedToken,
    /// The OAuth clients and claim mappers of the realm whose id is the entity id.
    Clients,
    /// What the gateway serves in the realm whose id is the entity id: its deployments,
    /// their services' settings, versions and infrastructures.
    Gateway,
    /// A portal session that ended (logout, or its user or realm disabled).
    PortalSession,
}

impl ChangeEntity {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeEntity::Credential => "credential",
            ChangeEntity::Principal => "principal",
            ChangeEntity::Realm => "realm",
            ChangeEntity::SigningKeys => "signing_keys",
            ChangeEntity::RevokedToken => "revoked_token",
            ChangeEntity::Clients => "clients",
            ChangeEntity::Gateway => "gateway",
            ChangeEntity::PortalSession => "portal_session",
        }
    }

    fn parse(text: &str) -> Option<ChangeEntity> {
        [
            ChangeEntity::Credential,
            ChangeEntity::Principal,
            ChangeEntity::Realm,
            ChangeEntity::SigningKeys,
            ChangeEntity::RevokedToken,
            ChangeEntity::Clients,
            ChangeEntity::Gateway,
            ChangeEntity::PortalSession,
        ]
        .into_iter()
        .find(|entity| entity.as_str() == text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub entity: ChangeEntity,
    pub entity_id: i64,
}

/// Wakes the change feed as soon as another process commits a change (PostgreSQL's
/// LISTEN/NOTIFY). Notifications can be lost, e.g. while reconnecting; the feed keeps
/// polling as well.
pub struct ChangeListener(sqlx::postgres::PgListener);

impl ChangeListener {
    /// Waits for the next notification. An error means the connection dropped; sqlx
    /// reconnects on the next call.
    pub async fn wait(&mut self) -> StoreResult<()> {
        self.0.recv().await?;
        Ok(())
    }
}

impl Store {
    /// A listener for change notifications, on PostgreSQL; `None` on SQLite.
    pub async fn listen_for_changes(&self) -> StoreResult<Option<ChangeListener>> {
        if self.backend != crate::Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen("keyward_changes").await?;
        Ok(Some(ChangeListener(listener)))
    }

    /// The newest change sequence number, where a fresh index starts following.
    pub async fn last_change_seq(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM changes").fetch_one(&self.pool).await?;
        Ok(row.try_get("seq")?)
    }

    /// Changes after `after_seq`, plus any of `also_seqs` (sequence numbers that were
    /// missing last time: on PostgreSQL a transaction can commit a lower number after a
    /// higher one became visible).
    pub async fn changes_after(&self, after_seq: i64, also_seqs: &[i64]) -> StoreResult<Vec<Change>> {
        let mut sql = String::from("SELECT seq, entity, entity_id FROM changes WHERE seq > $1");
        if !also_seqs.is_empty() {
            let listed: Vec<String> = also_seqs.iter().map(i64::to_string).collect();
            sql.push_str(&format!(" OR seq IN ({})", listed.join(",")));
        }
        sql.push_str(" ORDER BY seq LIMIT 10000");
        let rows = sqlx::query(&sql).bind(after_seq).fetch_all(&self.pool).await?;
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            let entity: String = row.try_get("entity")?;
            if let Some(entity) = ChangeEntity::parse(&entity) {
                changes.push(Change { seq: row.try_get("seq")?, entity, entity_id: row.try_get("entity_id")? });
            }
        }
        Ok(changes)
    }
}
