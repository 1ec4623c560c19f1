//! The change feed: applies changes that any process (this one, the CLI, another node)
//! wrote to the change log, so every index converges within one poll interval.

use crate::index::PrincipalInfo;
use crate::state::AppState;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use store::{Change, ChangeEntity, StoreResult};
use tokio::sync::Mutex;

/// How long a sequence number that was skipped is looked for again. A PostgreSQL
/// transaction can commit a lower sequence number after a higher one was read; one that
/// never shows up belonged to a rolled-back transaction.
const GAP_PATIENCE: Duration = Duration::from_secs(30);
const MAX_TRACKED_GAPS: usize = 1000;

struct Cursor {
    last_seq: i64,
    gaps: BTreeMap<i64, Instant>,
    /// A change named the gateway (or a realm its settings may name) and the gateway's
    /// table has not been rebuilt since. It is rebuilt once per batch, not per change,
    /// and a failed rebuild is tried again at the next poll.
    gateway_stale: bool,
}

pub struct ChangeFeed {
    cursor: Mutex<Cursor>,
    started: Instant,
    /// Milliseconds after `started` of the last successful poll.
    last_success_ms: AtomicU64,
}

impl ChangeFeed {
    pub fn starting_at(seq: i64) -> ChangeFeed {
        ChangeFeed {
            cursor: Mutex::new(Cursor { last_seq: seq, gaps: BTreeMap::new(), gateway_stale: false }),
            started: Instant::now(),
            last_success_ms: AtomicU64::new(0),
        }
    }

    fn mark_success(&self) {
        let elapsed = self.started.elapsed().as_millis() as u64;
        self.last_success_ms.store(elapsed, Ordering::Relaxed);
    }

    /// How long ago the last successful poll was (or the load at start).
    pub fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last_success_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// True when the index may be missing revocations because the change feed has not
    /// succeeded for longer than `limit`: the node must not vouch for credentials then.
    pub fn is_stale(&self, limit: Duration) -> bool {
        self.age() > limit
    }
}

/// Reads and applies every new change. Handlers call this right after they commit, so
/// their own node reflects the change before they answer.
pub async fn catch_up(state: &AppState) -> StoreResult<usize> {
    let mut cursor = state.feed.cursor.lock().await;
    let now = Instant::now();
    cursor.gaps.retain(|_, first_missed| now.duration_since(*first_missed) < GAP_PATIENCE);
    let gap_seqs: Vec<i64> = cursor.gaps.keys().copied().collect();
    let changes = state.store.changes_after(cursor.last_seq, &gap_seqs).await?;
    for change in &changes {
        if matches!(change.entity, ChangeEntity::Gateway | ChangeEntity::Realm) {
            cursor.gateway_stale = true;
        }
        apply(state, change).await?;
        if change.seq > cursor.last_seq {
            let mut missing = cursor.last_seq + 1;
            while missing < change.seq && cursor.gaps.len() < MAX_TRACKED_GAPS {
                cursor.gaps.insert(missing, now);
                missing += 1;
            }
            cursor.last_seq = change.seq;
        } else {
            cursor.gaps.remove(&change.seq);
        }
    }
    if cursor.gateway_stale {
        crate::published::reload(state).await?;
        cursor.gateway_stale = false;
    }
    state.feed.mark_success();
    Ok(changes.len())
}

async fn apply(state: &AppState, change: &Change) -> StoreResult<()> {
    match change.entity {
        ChangeEntity::Credential => match state.store.credential_for_index(change.entity_id).await? {
            Some((credential, _)) if credential.kind == keyward_core::CredentialKind::ApiToken => {
                crate::api_tokens::apply_change(state, credential.id).await?;
            }
            Some((credential, false)) => state.index.upsert_credential(&credential),
            Some((credential, true)) => state.index.remove_credential(&credential.digest),
            // Rows disappear only with their owner, whose change removes them.
            None => {}
        },
        ChangeEntity::Principal => match state.store.load_principal(change.entity_id).await? {
            Some(principal) => state.index.upsert_principal(PrincipalInfo::from(principal)),
            None => {
                state.index.remove_principal(change.entity_id);
                state.index.remove_credentials_of(change.entity_id);
                state.api_tokens.remove_owned_by(change.entity_id);
            }
        },
        ChangeEntity::Realm => {
            if let Ok(realm) = state.store.realm_by_id(change.entity_id).await {
                let is_new = state.realm(realm.id).is_none();
                state.set_realm(realm);
                if is_new {
                    crate::oidc::clients::reload_realm_clients(state, change.entity_id).await?;
                }
            }
        }
        ChangeEntity::SigningKeys => crate::oidc::keys::reload_realm_keys(state, change.entity_id).await?,
        ChangeEntity::Clients => crate::oidc::clients::reload_realm_clients(state, change.entity_id).await?,
        // Rebuilt once per batch by `catch_up`: gateway settings name realms too.
        ChangeEntity::Gateway => {}
        ChangeEntity::PortalSession => {
            if let Some(digest) = state.store.portal_session_digest(change.entity_id).await? {
                state.portal_sessions.remove(&digest);
            }
        }
        ChangeEntity::RevokedToken => {
            if let Some(revoked) = state.store.revocation_by_id(change.entity_id).await? {
                state.revocations.add(&revoked);
            }
        }
    }
    Ok(())
}

/// Follows the change log for as long as the server runs: every poll interval, and at
/// once when PostgreSQL notifies a change.
pub async fn follow(state: AppState) {
    let mut ticker = tokio::time::interval(state.config.change_poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut listener = match state.store.listen_for_changes().await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for change notifications; polling only");
            None
        }
    };
    loop {
        match listener.as_mut() {
            Some(active) => {
                tokio::select! {
                    _ = ticker.tick() => {}
                    notified = active.wait() => {
                        if let Err(error) = notified {
                            tracing::warn!(%error, "change notifications interrupted; polling meanwhile");
                            tokio::time::sleep(state.config.change_poll_interval).await;
                        }
                    }
                }
            }
            None => {
                ticker.tick().await;
            }
        }
        if let Err(error) = catch_up(&state).await {
            tracing::warn!(%error, "change feed poll failed; retrying");
        }
    }
}
