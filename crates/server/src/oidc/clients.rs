//! Registered OAuth clients and claim mappers, kept in memory per realm and reloaded by
//! the change feed, so client authentication never waits on the database.

use crate::state::AppState;
use keyward_core::SecretDigest;
use keyward_core::claims::ClaimMapper;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use store::{ClientRow, StoreResult};
use time::Duration;

/// A registered client as the token endpoint needs it.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub client_id: String,
    pub secret_digest: SecretDigest,
    pub grants: Vec<String>,
    pub audiences: Vec<String>,
    pub service_account_id: Option<i64>,
    pub access_token_lifetime: Option<Duration>,
    pub mappers: Vec<ClaimMapper>,
    pub enabled: bool,
}

#[derive(Clone, Debug, Default)]
pub struct RealmClients {
    pub mappers: Vec<ClaimMapper>,
    pub clients: HashMap<String, Arc<ClientInfo>>,
}

#[derive(Default)]
pub struct ClientRegistry {
    realms: RwLock<HashMap<i64, Arc<RealmClients>>>,
}

impl ClientRegistry {
    pub fn realm(&self, realm_id: i64) -> Arc<RealmClients> {
        self.realms.read().ok().and_then(|realms| realms.get(&realm_id).cloned()).unwrap_or_default()
    }

    pub fn client(&self, realm_id: i64, client_id: &str) -> Option<Arc<ClientInfo>> {
        self.realm(realm_id).clients.get(client_id).cloned()
    }

    fn replace(&self, realm_id: i64, clients: RealmClients) {
        if let Ok(mut realms) = self.realms.write() {
            realms.insert(realm_id, Arc::new(clients));
        }
    }
}

/// The wire form of a mapper to the domain's.
pub fn mapper_from_dto(dto: &proto::oidc::ClaimMapper) -> ClaimMapper {
    match dto.clone() {
        proto::oidc::ClaimMapper::Static { claim, value } => ClaimMapper::Static { claim, value },
        proto::oidc::ClaimMapper::Attribute { claim, attribute } => ClaimMapper::Attribute { claim, attribute },
        proto::oidc::ClaimMapper::Groups { claim } => ClaimMapper::Groups { claim },
    }
}

/// Parses stored mappers (a JSON array); a row that does not parse maps nothing and is
/// logged, rather than failing every token of the realm.
pub fn parse_mappers(json: &str) -> Vec<proto::oidc::ClaimMapper> {
    serde_json::from_str(json).unwrap_or_else(|error| {
        tracing::error!(%error, "stored claim mappers do not parse; ignoring them");
        Vec::new()
    })
}

fn words(text: &str) -> Vec<String> {
    text.split(' ').filter(|word| !word.is_empty()).map(str::to_string).collect()
}

fn client_info(row: &ClientRow) -> ClientInfo {
    let mut digest = [0u8; 32];
    if row.secret_digest.len() == 32 {
        digest.copy_from_slice(&row.secret_digest);
    }
    ClientInfo {
        client_id: row.client_id.clone(),
        secret_digest: SecretDigest(digest),
        grants: words(&row.grants),
        audiences: words(&row.audiences),
        service_account_id: row.service_account_id,
        access_token_lifetime: row.access_token_lifetime_secs.map(Duration::seconds),
        mappers: parse_mappers(&row.claim_mappers).iter().map(mapper_from_dto).collect(),
        enabled: row.enabled,
    }
}

/// Reloads one realm's clients and mappers from the store.
pub async fn reload_realm_clients(state: &AppState, realm_id: i64) -> StoreResult<()> {
    let rows = state.store.realm_clients(realm_id).await?;
    let mappers =
        parse_mappers(&state.store.realm_claim_mappers(realm_id).await?).iter().map(mapper_from_dto).collect();
    let clients = rows.iter().map(|row| (row.client_id.clone(), Arc::new(client_info(row)))).collect();
    state.clients.replace(realm_id, RealmClients { mappers, clients });
    Ok(())
}

/// Loads every realm's clients and mappers, at start.
pub async fn load_all_clients(state: &AppState) -> StoreResult<()> {
    for realm in state.realm_list() {
        reload_realm_clients(state, realm.id).await?;
    }
    Ok(())
}
