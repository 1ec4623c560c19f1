//! API tokens at run time: the records every node keeps in memory, minting a record's
//! JWT, and the checks `authenticate()` makes after the token service's verifier.
//!
//! A record is a credentials row of kind `api_token`. Its JWT carries `api_token_id` (the
//! record) and `api_token_gen` (the generation it was minted for), and its `jti` is
//! random; the row's digest is the HMAC of that `jti`, so the in-memory index holds the
//! current JWT of every enabled record exactly as it holds an opaque key. Unlocking
//! replaces the digest and bumps the generation: earlier JWTs stop matching at once.

use crate::oidc::tokens::{API_AUDIENCE, SignError, issuer, sign_claims};
use crate::state::{AppState, RealmInfo};
use ipnet::IpNet;
use keyward_core::SecretDigest;
use proto::oidc::{AccessTokenClaims, Audience};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use store::ApiTokenRow;
use time::OffsetDateTime;

/// The `azp`/`client_id` of every API token: no OAuth client is involved.
pub const API_TOKEN_CLIENT: &str = "keyward-api-token";

/// What a node keeps of a live (not deleted) record to check a presented JWT.
#[derive(Clone, Debug)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub public_id: String,
    pub realm_id: i64,
    pub owner_id: i64,
    pub enabled: bool,
    pub generation: i64,
    pub filter: Vec<IpNet>,
    /// The HMAC of the current JWT's `jti`, as the index holds it.
    pub digest: SecretDigest,
}

impl ApiTokenInfo {
    fn from_row(row: &ApiTokenRow) -> ApiTokenInfo {
        // The API only stores entries `ipfilter::parse_entry` accepted. A filter that no
        // longer parses must not turn into "anywhere": it admits only the unspecified
        // address `::`, which no peer has.
        let filter = row
            .filter
            .iter()
            .map(|entry| keyward_core::ipfilter::parse_entry(entry))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|error| {
                tracing::error!(token = %row.public_id, entry = %error.entry, "unreadable IP filter; the token is refused everywhere");
                vec![IpNet::from(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))]
            });
        ApiTokenInfo {
            id: row.id,
            public_id: row.public_id.clone(),
            realm_id: row.realm_id,
            owner_id: row.owner_id,
            enabled: row.enabled,
            generation: row.generation,
            filter,
            digest: row.digest,
        }
    }
}

/// Live records by public id (the JWT's `api_token_id`), kept current by the change feed.
#[derive(Default)]
pub struct ApiTokenTable {
    by_public_id: RwLock<HashMap<String, Arc<ApiTokenInfo>>>,
}

impl ApiTokenTable {
    pub fn get(&self, public_id: &str) -> Option<Arc<ApiTokenInfo>> {
        self.by_public_id.read().ok()?.get(public_id).cloned()
    }

    /// Applies a record as read from the store: a deleted one leaves the table.
    pub fn apply(&self, row: &ApiTokenRow) {
        if let Ok(mut table) = self.by_public_id.write() {
            if row.revoked {
                table.remove(&row.public_id);
            } else {
                table.insert(row.public_id.clone(), Arc::new(ApiTokenInfo::from_row(row)));
            }
        }
    }

    /// Forgets the records of a deleted user (their rows went with the user).
    pub fn remove_owned_by(&self, owner_id: i64) {
        if let Ok(mut table) = self.by_public_id.write() {
            table.retain(|_, info| info.owner_id != owner_id);
        }
    }
}

/// Reads every live record, at start.
pub async fn load_all(state: &AppState) -> store::StoreResult<()> {
    for row in state.store.live_api_tokens().await? {
        state.api_tokens.apply(&row);
    }
    Ok(())
}

/// Applies a changed API token row to the index and the table, when the change feed
/// names one. An unlock changed its digest: the old one leaves the index, so the old JWT
/// and every access token minted from it (`cid`) stop working.
pub async fn apply_change(state: &AppState, credential: &store::IndexedCredential) -> store::StoreResult<()> {
    let Some(row) = state.store.api_token_by_id(credential.id).await? else { return Ok(()) };
    if let Some(previous) = state.api_tokens.get(&row.public_id) {
        if previous.digest != credential.digest {
            state.index.remove_credential(&previous.digest);
        }
    }
    if row.revoked || !row.enabled {
        state.index.remove_credential(&credential.digest);
    } else {
        state.index.upsert_credential(credential);
    }
    state.api_tokens.apply(&row);
    Ok(())
}

/// A new JWT's random `jti` and the digest the record stores of it.
pub struct Jti {
    pub value: String,
    pub digest: SecretDigest,
}

impl Jti {
    /// 128 random bits from the OS CSPRNG, hex-encoded.
    pub fn generate(state: &AppState) -> Jti {
        use rand_core::RngCore;
        let mut bytes = [0u8; 16];
        rand_core::UnwrapErr(rand_core::OsRng).fill_bytes(&mut bytes);
        let value = hex::encode(bytes);
        let digest = state.pepper.digest(&value);
        Jti { value, digest }
    }
}

/// What a record's JWT says.
pub struct Minting<'a> {
    pub realm: &'a RealmInfo,
    pub record_public_id: &'a str,
    pub generation: i64,
    pub user_public_id: &'a str,
    pub username: &'a str,
    pub expires_at: OffsetDateTime,
    pub jti: &'a str,
}

/// Signs a record's JWT with the realm's current key. Its `exp` is the record's expiry
/// when it was made; keyward itself goes by the record, so a later edit of the expiry
/// holds for this JWT too.
pub async fn mint(state: &AppState, minting: Minting<'_>) -> Result<String, SignError> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let claims = AccessTokenClaims {
        iss: issuer(state, &minting.realm.name),
        sub: minting.user_public_id.to_string(),
        aud: Audience::One(API_AUDIENCE.to_string()),
        exp: minting.expires_at.unix_timestamp(),
        iat: now,
        nbf: Some(now),
        jti: minting.jti.to_string(),
        client_id: API_TOKEN_CLIENT.to_string(),
        azp: API_TOKEN_CLIENT.to_string(),
        sid: None,
        scope: None,
        cid: None,
        api_token_id: Some(minting.record_public_id.to_string()),
        api_token_gen: Some(minting.generation),
        name: None,
        preferred_username: minting.username.to_string(),
        email: None,
        groups: Vec::new(),
        extra: serde_json::Map::new(),
    };
    sign_claims(state, minting.realm, &claims).await
}
