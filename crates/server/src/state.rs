//! Shared state: the store, the index, and the background work that keeps them in step.

use crate::config::ServerConfig;
use crate::feed::ChangeFeed;
use crate::index::{Index, PrincipalInfo};
use crate::oidc::clients::ClientRegistry;
use crate::oidc::keys::KeyRing;
use crate::oidc::tokens::{Revocations, TokenCache};
use crate::throttle::Throttle;
use axum::http::HeaderMap;
use keyward_core::jwt::TokenSettings;
use keyward_core::policy::{ServiceTokenPolicy, UserKeyPolicy};
use keyward_core::secret::KeySealer;
use keyward_core::{MasterKey, Pepper};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use store::{NewAuditEvent, RealmRow, Store, StoreResult};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the server keeps about a realm.
#[derive(Clone, Debug)]
pub struct RealmInfo {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub user_key_policy: UserKeyPolicy,
    pub service_token_policy: ServiceTokenPolicy,
    pub display_name: String,
    pub token_settings: TokenSettings,
    /// What the gateway forwards for a call with a deployment key of this realm: such a
    /// caller has no principal, so this depends on the realm alone. Made on first use; a
    /// realm that changes is replaced, not mutated.
    pub deployment_key_identity: OnceLock<Arc<HeaderMap>>,
}

impl From<RealmRow> for RealmInfo {
    fn from(row: RealmRow) -> Self {
        RealmInfo {
            id: row.id,
            name: row.name,
            enabled: row.enabled,
            user_key_policy: row.user_key_policy,
            service_token_policy: row.service_token_policy,
            display_name: row.display_name,
            token_settings: row.token_settings,
            deployment_key_identity: OnceLock::new(),
        }
    }
}

pub struct Inner {
    pub store: Store,
    pub index: Index,
    pub pepper: Pepper,
    /// Opens signing keys' private halves.
    pub sealer: KeySealer,
    /// Every realm's signing keys: published ones, and retired ones kept for API tokens.
    pub keys: KeyRing,
    /// Revoked access-token ids and session ids.
    pub revocations: Revocations,
    /// Access tokens whose signature was verified, so a repeat costs a lookup.
    pub token_cache: TokenCache,
    /// Registered OAuth clients and claim mappers, per realm.
    pub clients: ClientRegistry,
    /// The forwarding engine of the upstream routes (the one `keyward proxy` uses).
    pub forwarder: proxy::forward::Forwarder,
    /// Access tokens minted for upstream routes, reused until they near expiry.
    pub route_tokens: crate::gateway::RouteTokens,
    /// Outside issuers' key sets, for gateway deployments that accept their JWTs.
    pub remote_jwks: crate::remote_jwks::RemoteJwks,
    /// What the gateway serves: `/public/{infrastructure}/{service}` → deployment.
    pub published: crate::published::PublishedTable,
    /// Live API token records (enabled switch, generation, IP filter).
    pub api_tokens: crate::api_tokens::ApiTokenTable,
    pub config: ServerConfig,
    /// Live portal sessions, so a page view does not wait on the database.
    pub portal_sessions: crate::portal::session::SessionCache,
    pub realms: RwLock<HashMap<i64, Arc<RealmInfo>>>,
    pub throttle: Throttle,
    pub feed: ChangeFeed,
    /// Credential id → last use (unix ms), written in batches.
    pub last_used: Mutex<HashMap<i64, i64>>,
    /// Credential id → the day (unix days) its near-expiry use was last audited.
    pub near_expiry_noted: Mutex<HashMap<i64, i64>>,
    /// Failed authentications on their way to the audit log, so the refusal itself
    /// never waits on the database.
    pub audit_queue: mpsc::Sender<NewAuditEvent>,
    audit_receiver: Mutex<Option<mpsc::Receiver<NewAuditEvent>>>,
}

/// Cheap to clone; every handler gets one.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

const AUDIT_QUEUE: usize = 10_000;

/// A service-account token used this close to its expiry leaves an audit event (once a
/// day per token and node), and counts in `keyward_service_account_tokens_expiring`.
pub const NEAR_EXPIRY: time::Duration = time::Duration::days(7);

impl AppState {
    /// Loads realms, principals and every active credential into memory. Changes that
    /// land while loading are replayed by the first poll, because the feed starts at
    /// the change sequence read before loading.
    pub async fn load(store: Store, master_key: &MasterKey, config: ServerConfig) -> StoreResult<AppState> {
        let start_seq = store.last_change_seq().await?;
        let mut credentials = store.active_credentials().await?;
        // API tokens enter the index with their records (`api_tokens::load_all`).
        credentials.retain(|credential| credential.kind != keyward_core::CredentialKind::ApiToken);
        let (audit_queue, receiver) = mpsc::channel(AUDIT_QUEUE);
        let inner = Inner {
            store,
            index: Index::with_capacity(credentials.len()),
            pepper: master_key.pepper(),
            sealer: master_key.key_sealer(),
            keys: KeyRing::default(),
            revocations: Revocations::default(),
            token_cache: TokenCache::default(),
            clients: ClientRegistry::default(),
            api_tokens: Default::default(),
            forwarder: proxy::forward::Forwarder::new(),
            route_tokens: Default::default(),
            published: Default::default(),
            remote_jwks: Default::default(),
            throttle: Throttle::new(config.auth_failures_per_minute),
            config,
            portal_sessions: Default::default(),
            realms: RwLock::new(HashMap::new()),
            feed: ChangeFeed::starting_at(start_seq),
            last_used: Mutex::new(HashMap::new()),
            near_expiry_noted: Mutex::new(HashMap::new()),
            audit_queue,
            audit_receiver: Mutex::new(Some(receiver)),
        };
        let state = AppState(Arc::new(inner));
        for realm in state.store.list_realms().await? {
            state.set_realm(realm);
        }
        for principal in state.store.load_principals().await? {
            state.index.upsert_principal(PrincipalInfo::from(principal));
        }
        state.index.upsert_credentials(&credentials);
        crate::oidc::keys::load_all_keys(&state).await?;
        crate::oidc::clients::load_all_clients(&state).await?;
        crate::api_tokens::load_all(&state).await?;
        crate::published::reload(&state).await?;
        for revoked in state.store.active_revocations(time::OffsetDateTime::now_utc()).await? {
            state.revocations.add(&revoked);
        }
        Ok(state)
    }

    pub fn set_realm(&self, realm: RealmRow) {
        if let Ok(mut realms) = self.realms.write() {
            realms.insert(realm.id, Arc::new(RealmInfo::from(realm)));
        }
    }

    pub fn realm_list(&self) -> Vec<Arc<RealmInfo>> {
        self.realms.read().map(|realms| realms.values().cloned().collect()).unwrap_or_default()
    }

    /// Audits the use of a service-account token that expires within [`NEAR_EXPIRY`],
    /// at most once a day per token on this node. The event names the token by its
    /// public id, which the index does not keep, so it is looked up off the request path.
    pub fn note_near_expiry(&self, caller: &crate::Caller, now_secs: i64) {
        let Some(expires_at) = caller.credential_expires_at else { return };
        if caller.kind != keyward_core::CredentialKind::ServiceAccountToken
            || expires_at - now_secs > NEAR_EXPIRY.whole_seconds()
        {
            return;
        }
        let day = now_secs.div_euclid(86_400);
        let first_today = match self.near_expiry_noted.lock() {
            Ok(mut noted) => noted.insert(caller.credential_id, day) != Some(day),
            Err(_) => false,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if !first_today {
            return;
        }
        let state = self.clone();
        let (credential_id, actor, client_ip, realm) =
            (caller.credential_id, caller.actor(), caller.client_ip.to_string(), caller.realm_name.clone());
        runtime.spawn(async move {
            let Ok(token) = state.store.credential_by_id(credential_id).await else { return };
            let expires = token.expires_at.map(|at| at.unix_timestamp()).unwrap_or(expires_at);
            state.queue_audit(NewAuditEvent {
                realm,
                at: time::OffsetDateTime::now_utc(),
                actor,
                action: "service_token.near_expiry".to_string(),
                target: format!("service_token:{}", token.public_id),
                client_ip,
                result: "ok".to_string(),
                detail: format!("{} expires in {} h", token.name, (expires - now_secs).max(0) / 3600),
            });
        });
    }

    pub fn realm(&self, id: i64) -> Option<Arc<RealmInfo>> {
        self.realms.read().ok()?.get(&id).cloned()
    }

    /// The realm called `name`. Realms are few; a scan is cheaper than a second map.
    pub fn realm_by_name(&self, name: &str) -> Option<Arc<RealmInfo>> {
        self.realms.read().ok()?.values().find(|realm| realm.name == name).cloned()
    }

    /// Starts the change feed, the last-used writer and the audit writer.
    pub fn spawn_background(&self) -> Vec<JoinHandle<()>> {
        let mut tasks = vec![
            tokio::spawn(crate::feed::follow(self.clone())),
            tokio::spawn(flush_last_used_periodically(self.clone())),
            tokio::spawn(prune_throttle_periodically(self.clone())),
        ];
        if let Some(receiver) = self.audit_receiver.lock().ok().and_then(|mut slot| slot.take()) {
            tasks.push(tokio::spawn(write_audit_queue(self.clone(), receiver)));
        }
        tasks
    }

    pub fn record_use(&self, credential_id: i64, now_ms: i64) {
        if let Ok(mut pending) = self.last_used.lock() {
            pending.insert(credential_id, now_ms);
        }
    }

    /// Writes pending last-used times; called periodically and at shutdown.
    pub async fn flush_last_used(&self) {
        let batch: Vec<(i64, i64)> = match self.last_used.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => return,
        };
        if batch.is_empty() {
            return;
        }
        if let Err(error) = self.store.record_last_used(&batch).await {
            tracing::warn!(%error, count = batch.len(), "could not record last-used times");
        }
    }

    /// Waits (up to `limit`) for queued audit events to be written, at shutdown.
    pub async fn drain_audit_queue(&self, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        while self.audit_queue.capacity() < self.audit_queue.max_capacity() && started.elapsed() < limit {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // The writer may still hold the last batch it took; give it a moment to commit.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    /// Queues an audit event without waiting; under a flood the queue may be full, in
    /// which case the event is counted and dropped rather than slowing refusals.
    pub fn queue_audit(&self, event: NewAuditEvent) {
        if self.audit_queue.try_send(event).is_err() {
            metrics::counter!("keyward_audit_events_dropped_total").increment(1);
        }
    }
}

async fn flush_last_used_periodically(state: AppState) {
    let mut ticker = tokio::time::interval(state.config.last_used_flush_interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        state.flush_last_used().await;
    }
}

async fn prune_throttle_periodically(state: AppState) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        ticker.tick().await;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        state.throttle.prune(now);
        state.revocations.prune(now);
        if let Ok(mut noted) = state.near_expiry_noted.lock() {
            noted.retain(|_, day| *day >= now.div_euclid(86_400));
        }
    }
}

async fn write_audit_queue(state: AppState, mut receiver: mpsc::Receiver<NewAuditEvent>) {
    let mut batch = Vec::with_capacity(256);
    while receiver.recv_many(&mut batch, 256).await > 0 {
        let events = std::mem::take(&mut batch);
        let count = events.len();
        if let Err(error) = state.store.append_audit(events).await {
            tracing::error!(%error, count, "could not write audit events");
        }
    }
}
