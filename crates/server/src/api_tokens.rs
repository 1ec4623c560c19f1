//! API tokens at run time: the records every node keeps in memory, minting a record's
//! JWT, and the checks `authenticate()` makes after the token service's verifier.
//!
//! A record is a credentials row of kind `api_token`. Its JWT carries `api_token_id` (the
//! record) and `api_token_gen` (the generation it was minted for), and its `jti` is
//! random; the row's digest is the HMAC of that `jti`, so the in-memory index holds the
//! current JWT of every enabled record exactly as it holds an opaque key. Unlocking
//! replaces the digest and bumps the generation: earlier JWTs stop matching at once.

use crate::oidc::tokens::{API_TOKEN_AUDIENCE, SignError, issuer, sign_with_current_key};
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
    /// What the current JWT may act within, when a token manager who is not an admin
    /// minted it; `Err` when the stored value cannot be read (the token then acts nowhere).
    pub bound: Option<Result<Bounds, ()>>,
}

/// The privileges an API token's user held when a token manager who is not an admin
/// minted it (or re-issued it, or gave the record to them): their roles, and the names
/// of their groups. The token is refused once its user holds more (`AuthRefusal::Outgrown`),
/// until someone who may give that much unlocks it. Stored as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub roles: keyward_core::RoleSet,
    pub groups: Vec<String>,
}

impl Bounds {
    pub fn to_json(&self) -> String {
        serde_json::json!({"roles": self.roles.names(), "groups": self.groups}).to_string()
    }

    pub fn from_json(text: &str) -> Option<Bounds> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Stored {
            roles: Vec<String>,
            groups: Vec<String>,
        }
        let stored: Stored = serde_json::from_str(text).ok()?;
        let roles = stored.roles.iter().map(|name| keyward_core::Role::parse(name)).collect::<Option<_>>()?;
        Some(Bounds { roles, groups: stored.groups })
    }

    /// Whether a user with these roles and groups (names) is within the bounds.
    pub fn admit(&self, roles: keyward_core::RoleSet, groups: &[String]) -> bool {
        self.roles.is_superset_of(roles) && groups.iter().all(|group| self.groups.contains(group))
    }
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
            bound: row.bound_privileges.as_deref().map(|text| {
                Bounds::from_json(text).ok_or_else(|| {
                    tracing::error!(token = %row.public_id, "unreadable privilege bounds; the token is refused everywhere");
                })
            }),
        }
    }
}

#[derive(Default)]
struct Tables {
    /// Live records by public id (the JWT's `api_token_id`).
    by_public_id: HashMap<String, Arc<ApiTokenInfo>>,
    /// Record id → the digest this node put into the index for it, so an unlock or a
    /// delete removes exactly that entry, whatever order changes arrive in.
    indexed: HashMap<i64, SecretDigest>,
}

/// Live records, kept current by the change feed. API tokens enter the index only
/// through [`apply_row`], from the same row as their record here.
#[derive(Default)]
pub struct ApiTokenTable {
    tables: RwLock<Tables>,
}

impl ApiTokenTable {
    pub fn get(&self, public_id: &str) -> Option<Arc<ApiTokenInfo>> {
        self.tables.read().ok()?.by_public_id.get(public_id).cloned()
    }

    /// Forgets the records of a deleted user (their rows, and their index entries, went
    /// with the user).
    pub fn remove_owned_by(&self, owner_id: i64) {
        if let Ok(mut tables) = self.tables.write() {
            let Tables { by_public_id, indexed } = &mut *tables;
            by_public_id.retain(|_, info| {
                let keep = info.owner_id != owner_id;
                if !keep {
                    indexed.remove(&info.id);
                }
                keep
            });
        }
    }
}

fn indexed_credential(row: &ApiTokenRow) -> store::IndexedCredential {
    store::IndexedCredential {
        id: row.id,
        realm_id: row.realm_id,
        kind: keyward_core::CredentialKind::ApiToken,
        owner_id: Some(row.owner_id),
        audience: None,
        digest: row.digest,
        expires_at: Some(row.expires_at.unix_timestamp()),
        // Bounded by its record instead (`ApiTokenInfo::bound`).
        role_ceiling: None,
        group_ceiling: None,
    }
}

/// Brings the index and the table in line with one row, as read from the store. The
/// digest this node indexed before for the record leaves the index when it differs
/// (an unlock), so the old JWT and every access token minted from it (`cid`) stop.
pub fn apply_row(state: &AppState, row: &ApiTokenRow) {
    let Ok(mut tables) = state.api_tokens.tables.write() else { return };
    if let Some(previous) = tables.indexed.get(&row.id).copied() {
        if previous != row.digest {
            state.index.remove_credential(&previous);
        }
    }
    if !row.revoked && row.enabled {
        state.index.upsert_credential(&indexed_credential(row));
        tables.indexed.insert(row.id, row.digest);
    } else {
        state.index.remove_credential(&row.digest);
        tables.indexed.remove(&row.id);
    }
    if row.revoked {
        tables.by_public_id.remove(&row.public_id);
    } else {
        tables.by_public_id.insert(row.public_id.clone(), Arc::new(ApiTokenInfo::from_row(row)));
    }
}

/// Reads every live record into the table and the index, at start. The start-up
/// credential load leaves API tokens out, so both come from these rows.
pub async fn load_all(state: &AppState) -> store::StoreResult<()> {
    for row in state.store.live_api_tokens().await? {
        apply_row(state, &row);
    }
    Ok(())
}

/// Re-reads one API token row when the change feed names it.
pub async fn apply_change(state: &AppState, credential_id: i64) -> store::StoreResult<()> {
    if let Some(row) = state.store.api_token_by_id(credential_id).await? {
        apply_row(state, &row);
    }
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
        iss: issuer(state, &minting.realm.name).into(),
        sub: minting.user_public_id.into(),
        aud: Audience::One(API_TOKEN_AUDIENCE.into()),
        exp: minting.expires_at.unix_timestamp(),
        iat: now,
        nbf: Some(now),
        jti: minting.jti.into(),
        client_id: API_TOKEN_CLIENT.into(),
        azp: API_TOKEN_CLIENT.into(),
        sid: None,
        scope: None,
        cid: None,
        api_token_id: Some(minting.record_public_id.into()),
        api_token_gen: Some(minting.generation),
        name: None,
        preferred_username: minting.username.into(),
        email: None,
        groups: Vec::new(),
        extra: serde_json::Map::new(),
    };
    // Signed inside the record's mutation: with the realm's key as it is (`ready_to_sign`
    // made one before the mutation began), never making one.
    sign_with_current_key(state, minting.realm, &claims)
}

#[cfg(test)]
mod bounds_tests {
    use super::Bounds;
    use keyward_core::{Role, RoleSet};

    #[test]
    fn bounds_admit_the_roles_and_groups_they_were_given_and_read_back_what_they_wrote() {
        let roles: RoleSet = [Role::CreateApiService].into_iter().collect();
        let bounds = Bounds { roles, groups: vec!["analysts".to_string()] };
        let stored = bounds.to_json();
        assert_eq!(Bounds::from_json(&stored), Some(bounds.clone()));
        assert!(bounds.admit(roles, &["analysts".to_string()]));
        assert!(bounds.admit(RoleSet::EMPTY, &[]), "less is fine");
        assert!(!bounds.admit([Role::Admin].into_iter().collect(), &[]), "a role it was not given");
        assert!(!bounds.admit(roles, &["finance".to_string()]), "a group it was not given");
        for unreadable in ["", "{}", r#"{"roles": ["root"], "groups": []}"#, r#"{"roles": [], "groups": [], "x": 1}"#] {
            assert_eq!(Bounds::from_json(unreadable), None, "{unreadable}");
        }
    }
}
