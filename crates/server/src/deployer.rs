//! The API deployer's rules as the server applies them: what a caller's standing is on
//! services and infrastructures (from their groups' grants, ownership and the admin
//! role), and the gateway auth settings, checked when written and resolved into what
//! the gateway applies to each call.

use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::remote_jwks::JwsAlgorithm;
use crate::state::AppState;
use keyward_core::Role;
use keyward_core::deployer::{InfraAccess, InfraPrivilege, ServiceAccess, ServicePrivilege};
use keyward_core::jwt::SigningAlg;
use proto::deployer::{GatewayAuth, JwtAuth};
use std::collections::HashMap;
use std::sync::Arc;
use store::{ApiServiceRow, GrantedOn, UserGrant};

/// A caller's privileges on every service and infrastructure of the realm, read once
/// per request.
pub struct Standing {
    realm_admin: bool,
    user_id: Option<i64>,
    /// An API token a token manager minted for its user, who owned no API service then:
    /// any service the user owns now came later, and the token does not act as its owner.
    bounded_api_token: bool,
    /// The groups a run's credential acts through at most ([`crate::index::Ceiling`]):
    /// grants through any other group of its user do not count.
    group_ceiling: Option<Arc<[i64]>>,
    services: HashMap<i64, ServicePrivilege>,
    infrastructures: HashMap<i64, InfraPrivilege>,
}

impl Standing {
    pub async fn of(state: &AppState, caller: &Caller) -> ApiResult<Standing> {
        let mut standing = Standing::without_grants(caller);
        let Some(user_id) = standing.user_id else { return Ok(standing) };
        standing.add_service_grants(state.store.grants_of_user(user_id, GrantedOn::ApiServices).await?);
        standing.add_infrastructure_grants(state.store.grants_of_user(user_id, GrantedOn::Infrastructures).await?);
        Ok(standing)
    }

    /// The same, read inside `mutation`: for a change of grants, so that a privilege
    /// another change took away before this one began is not used (mutations run one at
    /// a time). The admin role is the caller's as authenticated.
    pub async fn in_mutation(mutation: &mut store::Mutation, caller: &Caller) -> ApiResult<Standing> {
        let mut standing = Standing::without_grants(caller);
        let Some(user_id) = standing.user_id else { return Ok(standing) };
        standing.add_service_grants(mutation.grants_of_user(user_id, GrantedOn::ApiServices).await?);
        standing.add_infrastructure_grants(mutation.grants_of_user(user_id, GrantedOn::Infrastructures).await?);
        Ok(standing)
    }

    fn without_grants(caller: &Caller) -> Standing {
        Standing {
            realm_admin: caller.has_role(Role::Admin),
            user_id: caller.principal.as_ref().map(|principal| principal.id),
            bounded_api_token: caller.api_token.as_ref().is_some_and(|token| token.bound.is_some()),
            group_ceiling: caller.ceiling.groups.clone(),
            services: HashMap::new(),
            infrastructures: HashMap::new(),
        }
    }

    /// The grants that count: those through a group within the caller's ceiling.
    fn admitted(&self, grants: Vec<UserGrant>) -> impl Iterator<Item = UserGrant> + use<> {
        let ceiling = self.group_ceiling.clone();
        grants.into_iter().filter(move |grant| ceiling.as_ref().is_none_or(|ids| ids.contains(&grant.group_id)))
    }

    fn add_service_grants(&mut self, grants: Vec<UserGrant>) {
        for grant in self.admitted(grants) {
            if let Some(privilege) = ServicePrivilege::parse_grantable(&grant.privilege) {
                let held = self.services.entry(grant.target_id).or_insert(privilege);
                *held = (*held).max(privilege);
            }
        }
    }

    fn add_infrastructure_grants(&mut self, grants: Vec<UserGrant>) {
        for grant in self.admitted(grants) {
            if let Some(privilege) = InfraPrivilege::parse(&grant.privilege) {
                let held = self.infrastructures.entry(grant.target_id).or_insert(privilege);
                *held = (*held).max(privilege);
            }
        }
    }

    pub fn service(&self, service: &ApiServiceRow) -> ServiceAccess {
        self.service_by_id(service.id, service.owner_id)
    }

    /// The standing on a service known only by id (a deployment's): ownership needs
    /// the owner's id.
    pub fn service_by_id(&self, service_id: i64, owner_id: Option<i64>) -> ServiceAccess {
        let owner = self.user_id.is_some() && owner_id == self.user_id && !self.bounded_api_token;
        let granted = self.services.get(&service_id).copied();
        let privilege = if owner { Some(ServicePrivilege::Owner) } else { granted };
        ServiceAccess { privilege, realm_admin: self.realm_admin }
    }

    pub fn infrastructure(&self, infrastructure_id: i64) -> InfraAccess {
        InfraAccess { privilege: self.infrastructures.get(&infrastructure_id).copied(), realm_admin: self.realm_admin }
    }
}

/// A service's settings and keys apply to every deployment that uses them. Changing them
/// changes who may call those deployments, so it needs Deploy on each of their
/// infrastructures, as changing the deployments themselves would.
pub async fn require_deploy_wherever_service_settings_apply(
    state: &AppState,
    standing: &Standing,
    service_id: i64,
) -> ApiResult<()> {
    let infrastructures = state.store.infrastructures_under_service_settings(service_id).await?;
    require_deploy_on(standing, &infrastructures)
}

/// Deploy on each of `infrastructures`: those of the deployments a service's settings and
/// keys apply to (see [`require_deploy_wherever_service_settings_apply`]).
pub fn require_deploy_on(standing: &Standing, infrastructures: &[i64]) -> ApiResult<()> {
    if infrastructures.iter().all(|infrastructure| standing.infrastructure(*infrastructure).has(InfraPrivilege::Deploy))
    {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "The service's auth settings and keys apply to its deployments that use them, and one of those is on an \
         infrastructure where you cannot deploy; ask someone with the deploy privilege there, or give that \
         deployment its own settings."
            .to_string(),
    ))
}

/// Revealing a service key shows a key that opens every deployment using the service's
/// settings: the caller must be able to see each of them (View on its infrastructure).
pub async fn require_view_wherever_service_settings_apply(
    state: &AppState,
    standing: &Standing,
    service_id: i64,
) -> ApiResult<()> {
    let infrastructures = state.store.infrastructures_under_service_settings(service_id).await?;
    if infrastructures.iter().all(|infrastructure| standing.infrastructure(*infrastructure).can_see()) {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "This key opens a deployment on an infrastructure you cannot view, so it is not shown to you.".to_string(),
    ))
}

/// The algorithms a JWT setting accepts when it names none.
const DEFAULT_ALGORITHMS: [&str; 3] = ["ES256", "RS256", "EdDSA"];
const MAX_REQUIRED_CLAIMS: usize = 20;
/// Claims that differ per token or that the verifier checks itself: requiring a fixed
/// value of one is a mistake (or never matches).
const UNREQUIRABLE_CLAIMS: [&str; 9] =
    ["exp", "iat", "nbf", "jti", "iss", "aud", "cid", "api_token_id", "api_token_gen"];

/// Where a service's or deployment's settings are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingsOwner {
    Service,
    Deployment,
}

/// Checks auth settings before they are stored, for a service or deployment of the
/// caller's realm.
pub fn check_auth(state: &AppState, caller: &Caller, auth: &GatewayAuth, owner: SettingsOwner) -> ApiResult<()> {
    match auth {
        GatewayAuth::ApiKeys | GatewayAuth::None => Ok(()),
        GatewayAuth::Service if owner == SettingsOwner::Deployment => Ok(()),
        GatewayAuth::Service => Err(ApiError::invalid(
            "auth.type",
            "\"service\" (use the service's settings) is for deployments; a service takes apiKeys, jwt or none",
        )),
        GatewayAuth::Jwt(jwt) => check_jwt(state, caller, jwt),
    }
}

fn check_jwt(state: &AppState, caller: &Caller, jwt: &JwtAuth) -> ApiResult<()> {
    // An outside issuer may use any of `JwsAlgorithm`'s; never `none`, never HMAC: a
    // resource server holds no shared secret, and an HMAC "verified" with a public key
    // is a forgery.
    let allowed: Vec<&str> = match (&jwt.realm, &jwt.issuer, &jwt.jwks_url) {
        // A realm is a tenant: a deployment trusts its own realm's users, never another's,
        // and the answer for every other name is the same (it does not tell which exist).
        (Some(realm), None, None) => {
            if *realm != caller.realm_name || state.realm_by_name(realm).is_none() {
                return Err(ApiError::invalid(
                    "auth.realm",
                    format!("must be this realm, {:?}: a deployment takes its own realm's tokens", caller.realm_name),
                ));
            }
            DEFAULT_ALGORITHMS.to_vec()
        }
        (None, Some(issuer), Some(url)) => {
            if issuer.trim().is_empty() || issuer.len() > 500 {
                return Err(ApiError::invalid("auth.issuer", "must be the issuer's `iss`, 1 to 500 characters"));
            }
            check_jwks_url(url)?;
            JwsAlgorithm::ALL.iter().map(|algorithm| algorithm.as_str()).collect()
        }
        _ => {
            return Err(ApiError::invalid(
                "auth",
                "a jwt setting names either a keyward realm (`realm`) or an outside issuer (`issuer` and \
                 `jwksUrl`), not both and not neither",
            ));
        }
    };
    if jwt.audience.trim().is_empty() || jwt.audience.len() > 200 {
        return Err(ApiError::invalid("auth.audience", "must be the `aud` tokens carry, 1 to 200 characters"));
    }
    if jwt.required_claims.len() > MAX_REQUIRED_CLAIMS {
        return Err(ApiError::invalid("auth.requiredClaims", format!("at most {MAX_REQUIRED_CLAIMS} claims")));
    }
    for (name, value) in &jwt.required_claims {
        if name.is_empty() || name.len() > 100 {
            return Err(ApiError::invalid("auth.requiredClaims", "claim names are 1 to 100 characters"));
        }
        if UNREQUIRABLE_CLAIMS.contains(&name.as_str()) {
            return Err(ApiError::invalid(
                "auth.requiredClaims",
                format!("{name:?} differs per token or is checked already; require a claim such as organization"),
            ));
        }
        if !(value.is_string() || value.is_number() || value.is_boolean()) {
            return Err(ApiError::invalid(
                "auth.requiredClaims",
                format!("the value for {name:?} must be a string, number or boolean"),
            ));
        }
    }
    for algorithm in &jwt.algorithms {
        if !allowed.contains(&algorithm.as_str()) {
            return Err(ApiError::invalid(
                "auth.algorithms",
                format!("{algorithm:?} is not accepted here; choose from {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn check_jwks_url(url: &str) -> ApiResult<()> {
    let host = url.parse::<axum::http::Uri>().ok().and_then(|uri| uri.host().map(str::to_string));
    let well_formed = url.len() <= 2000
        && (url.starts_with("https://") || url.starts_with("http://"))
        && host.as_deref().is_some_and(|host| !host.is_empty());
    if !well_formed {
        return Err(ApiError::invalid("auth.jwksUrl", "must be an http:// or https:// URL with a host"));
    }
    let authority = url.parse::<axum::http::Uri>().ok().and_then(|uri| uri.authority().map(|a| a.as_str().to_string()));
    if authority.is_some_and(|authority| authority.contains('@')) {
        return Err(ApiError::invalid(
            "auth.jwksUrl",
            "must not carry a user name or password (user:password@host): a key set is public",
        ));
    }
    let literal = host.as_deref().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    if literal.parse::<std::net::IpAddr>().is_ok_and(proxy::forward::is_link_local) {
        return Err(ApiError::invalid("auth.jwksUrl", "may not be a link-local address (where cloud metadata lives)"));
    }
    Ok(())
}

/// Settings as stored; unreadable ones (never written by this server) count as API keys
/// only, so a damaged row fails closed.
pub fn stored_auth(text: &str) -> GatewayAuth {
    serde_json::from_str(text).unwrap_or(GatewayAuth::ApiKeys)
}

pub fn store_auth(auth: &GatewayAuth) -> ApiResult<String> {
    serde_json::to_string(auth).map_err(|error| ApiError::Internal(error.to_string()))
}

/// The audience a service's own keys are bound to.
pub fn service_key_audience(service_public_id: &str) -> String {
    format!("api-service:{service_public_id}")
}

/// The audience a deployment's own keys are bound to.
pub fn deployment_key_audience(deployment_public_id: &str) -> String {
    format!("deployment:{deployment_public_id}")
}

/// What the gateway checks on each call to a deployment.
#[derive(Debug)]
pub enum GatewayCheck {
    Public,
    /// A `kwd_` key bound to this audience (the service's or the deployment's).
    ApiKeys {
        audience: String,
    },
    Jwt(Arc<JwtCheck>),
}

#[derive(Debug)]
pub struct JwtCheck {
    pub source: JwtSource,
    pub audience: String,
    pub required_claims: Vec<(String, serde_json::Value)>,
    /// The accepted algorithms by name (a keyward realm's keys are checked against these).
    pub algorithms: Vec<String>,
    /// The same, parsed, for an outside issuer's tokens.
    pub remote_algorithms: Vec<JwsAlgorithm>,
}

#[derive(Debug)]
pub enum JwtSource {
    /// A keyward realm's own access tokens.
    Realm { realm_id: i64 },
    /// An outside issuer and its JWKS URL.
    Remote { issuer: String, jwks_url: String },
}

/// Resolves a deployment's settings (its own, or its service's) into the check the
/// gateway runs. `None` when the settings name a realm that no longer exists: the
/// gateway then refuses every call rather than fall open.
pub fn resolve(
    state: &AppState,
    realm_id: i64,
    deployment_auth: Option<&str>,
    service_auth: &str,
    service_public_id: &str,
    deployment_public_id: &str,
) -> Option<GatewayCheck> {
    let own = deployment_auth.map(stored_auth).filter(|auth| *auth != GatewayAuth::Service);
    let (auth, key_audience) = match own {
        Some(auth) => (auth, deployment_key_audience(deployment_public_id)),
        None => (stored_auth(service_auth), service_key_audience(service_public_id)),
    };
    match auth {
        GatewayAuth::None => Some(GatewayCheck::Public),
        GatewayAuth::ApiKeys => Some(GatewayCheck::ApiKeys { audience: key_audience }),
        GatewayAuth::Service => None,
        GatewayAuth::Jwt(jwt) => {
            let source = match (jwt.realm, jwt.issuer, jwt.jwks_url) {
                // Only the deployment's own realm, even for settings stored before that rule.
                (Some(realm), _, _) => {
                    let realm = state.realm_by_name(&realm).filter(|realm| realm.id == realm_id)?;
                    JwtSource::Realm { realm_id: realm.id }
                }
                (None, Some(issuer), Some(jwks_url)) => JwtSource::Remote { issuer, jwks_url },
                _ => return None,
            };
            let algorithms = if jwt.algorithms.is_empty() {
                DEFAULT_ALGORITHMS.iter().map(|name| name.to_string()).collect()
            } else {
                jwt.algorithms
            };
            let remote_algorithms = algorithms.iter().filter_map(|name| JwsAlgorithm::parse(name)).collect();
            Some(GatewayCheck::Jwt(Arc::new(JwtCheck {
                source,
                audience: jwt.audience,
                required_claims: jwt.required_claims.into_iter().collect(),
                algorithms,
                remote_algorithms,
            })))
        }
    }
}

/// The settings a deployment applies: its own, or its service's.
pub fn effective_auth(deployment_auth: Option<&str>, service_auth: &str) -> GatewayAuth {
    match deployment_auth.map(stored_auth) {
        Some(GatewayAuth::Service) | None => stored_auth(service_auth),
        Some(own) => own,
    }
}

/// Whether `algorithm` (a keyward key's) is among those a setting accepts.
pub fn accepts(check: &JwtCheck, algorithm: SigningAlg) -> bool {
    check.algorithms.iter().any(|name| name == algorithm.as_str())
}
