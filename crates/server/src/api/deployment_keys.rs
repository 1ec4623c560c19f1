//! Deployment API keys (`kwd_`): several per API service (used by every deployment that
//! takes the service's settings) or per deployment (when it has its own), all valid at
//! once. Each is a credentials row without an owner, bound by its audience to its
//! service or deployment, so the one `authenticate()` accepts it at that gateway path
//! only. Read holders may see a key again: the secret is also kept sealed with a key
//! derived from the master key, and every reveal is audited. Lists never carry secrets.

use crate::api::api_services::{load_service, require_service};
use crate::api::deployments::gateway_url;
use crate::api::deployments::load_deployment;
use crate::api::{audit_event, commit, new_public_id, parse_id, refuse_access_token_minting};
use crate::authn::Caller;
use crate::deployer::effective_auth;
use crate::deployer::{
    Standing, deployment_key_audience, require_deploy_on, require_deploy_wherever_service_settings_apply,
    require_view_wherever_service_settings_apply, service_key_audience,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::deployer::{DeploymentAction, ServicePrivilege};
use keyward_core::{CredentialKind, Secret, validate};
use proto::deployer::{CreateDeploymentKey, DeploymentKey, DeploymentSample, GatewayAuth, RevealedDeploymentKey};
use store::{Counted, CredentialRow, NewCredential, StoreError};
use time::OffsetDateTime;

/// Which keys a route manages: a service's or a deployment's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Service,
    Deployment,
}

/// What a caller wants to do with a scope's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyAction {
    /// List them (never with secrets): Read on the service (and View on the
    /// deployment's infrastructure).
    List,
    /// Reveal one: as List, and a service's key only to those who can view every
    /// deployment it opens.
    Reveal,
    /// Create or delete one: Deploy on the service and on every infrastructure the keys
    /// open a deployment on.
    Manage,
}

/// How many keys a service or deployment may hold at once.
const MAX_KEYS_PER_SCOPE: i64 = 20;

/// What holds a scope's keys, as read when the caller's right was established: enough to
/// decide again inside the mutation that changes them.
enum Holder {
    Service { id: i64, owner_id: Option<i64> },
    Deployment(Box<store::DeploymentRow>),
}

/// Decides again, inside `mutation`, that the caller may manage the keys of `holder`
/// (Deploy on the service and on every infrastructure its settings apply to; or on the
/// deployment's service and infrastructure): a privilege another change took away before
/// this one began mints no key that outlives it (mutations run one at a time).
async fn recheck_manage(mutation: &mut store::Mutation, caller: &Caller, holder: &Holder) -> ApiResult<()> {
    match holder {
        Holder::Service { id, owner_id } => {
            let standing = Standing::in_mutation(mutation, caller).await?;
            require_service(standing.service_by_id(*id, *owner_id), ServicePrivilege::Deploy)?;
            let infrastructures = mutation.infrastructures_under_service_settings(*id).await?;
            require_deploy_on(&standing, &infrastructures)
        }
        Holder::Deployment(row) => {
            crate::api::deployments::recheck_caller(mutation, caller, row, DeploymentAction::Update).await
        }
    }
}

/// The audience of the keys at `id` in `scope`, the audit target, the scope's public id
/// and what holds them, once the caller's right to `action` is established. Anything the
/// caller may not read is 404.
async fn scope_audience(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    id: &str,
    action: KeyAction,
) -> ApiResult<(String, String, String, Holder)> {
    let standing = Standing::of(state, caller).await?;
    match scope {
        Scope::Service => {
            let (service, access) = load_service(state, caller, &standing, id).await?;
            match action {
                KeyAction::List => {}
                KeyAction::Reveal => {
                    require_view_wherever_service_settings_apply(state, &standing, service.id).await?;
                }
                KeyAction::Manage => {
                    require_service(access, ServicePrivilege::Deploy)?;
                    require_deploy_wherever_service_settings_apply(state, &standing, service.id).await?;
                }
            }
            let target = format!("api_service:{}", service.public_id);
            let holder = Holder::Service { id: service.id, owner_id: service.owner_id };
            Ok((service_key_audience(&service.public_id), target, service.public_id, holder))
        }
        Scope::Deployment => {
            let needed = match action {
                KeyAction::List | KeyAction::Reveal => DeploymentAction::Read,
                KeyAction::Manage => DeploymentAction::Update,
            };
            let deployment = load_deployment(state, caller, &standing, id, needed).await?;
            let target = format!("deployment:{}", deployment.public_id);
            let audience = deployment_key_audience(&deployment.public_id);
            let public_id = deployment.public_id.clone();
            Ok((audience, target, public_id, Holder::Deployment(Box::new(deployment))))
        }
    }
}

fn key_dto(row: CredentialRow) -> DeploymentKey {
    DeploymentKey {
        id: row.public_id,
        name: row.name,
        prefix: row.secret_prefix,
        created_at: row.created_at,
        created_by: row.created_by,
        last_used_at: row.last_used_at,
    }
}

/// What a sealed key is bound to: its own row. A sealed secret copied to another row
/// does not open.
fn sealing_context(public_id: &str) -> String {
    format!("keyward deployment key|{public_id}")
}

/// An active key at `audience`; every other id answers 404.
async fn load_key(state: &AppState, caller: &Caller, audience: &str, key_id: &str) -> ApiResult<CredentialRow> {
    let key_id = parse_id(key_id, "key")?;
    match state.store.credential_by_public_id(caller.realm_id, key_id.as_str()).await {
        Ok(row)
            if row.kind == CredentialKind::DeploymentKey
                && row.audience.as_deref() == Some(audience)
                && row.revoked_at.is_none() =>
        {
            Ok(row)
        }
        Ok(_) | Err(StoreError::NotFound) => Err(ApiError::NotFound("key")),
        Err(other) => Err(other.into()),
    }
}

async fn create(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    id: &str,
    body: CreateDeploymentKey,
) -> ApiResult<(StatusCode, Json<RevealedDeploymentKey>)> {
    refuse_access_token_minting(caller)?;
    let (audience, target, scope_id, holder) = scope_audience(state, caller, scope, id, KeyAction::Manage).await?;
    validate::object_name(&body.name).map_err(|detail| ApiError::invalid("name", detail))?;
    let secret = Secret::generate(CredentialKind::DeploymentKey, &mut rand_core::UnwrapErr(rand_core::OsRng));
    let public_id = new_public_id();
    let sealed = state
        .sealer
        .seal(
            &mut rand_core::UnwrapErr(rand_core::OsRng),
            sealing_context(public_id.as_str()).as_bytes(),
            secret.expose().as_bytes(),
        )
        .map_err(|error| ApiError::Internal(format!("sealing a deployment key: {error}")))?;
    let mut mutation = state.store.begin().await?;
    recheck_manage(&mut mutation, caller, &holder).await?;
    // The service or deployment may have gone since it was read: its deletion revokes
    // its keys, and a key made after that would be one nobody could list or revoke.
    let still_there = match scope {
        Scope::Service => Counted::ApiService { public_id: &scope_id },
        Scope::Deployment => Counted::Deployment { public_id: &scope_id },
    };
    if mutation.count(still_there).await? == 0 {
        return Err(ApiError::NotFound(if scope == Scope::Service { "API service" } else { "deployment" }));
    }
    if mutation.count(Counted::GatewayKeys { realm_id: caller.realm_id, audience: &audience }).await?
        >= MAX_KEYS_PER_SCOPE
    {
        return Err(ApiError::Conflict {
            field: None,
            detail: format!("At most {MAX_KEYS_PER_SCOPE} keys may be valid at once here; delete an old one first."),
        });
    }
    let credential_id = mutation
        .insert_credential(&NewCredential {
            public_id: public_id.as_str(),
            realm_id: caller.realm_id,
            kind: CredentialKind::DeploymentKey,
            owner_id: None,
            name: &body.name,
            description: "",
            audience: Some(&audience),
            secret_prefix: &secret.display_prefix(),
            digest: state.pepper.digest(secret.expose()),
            created_at: OffsetDateTime::now_utc(),
            created_by: &caller.actor(),
            expires_at: None,
        })
        .await?;
    mutation.set_sealed_secret(credential_id, &sealed).await?;
    let detail = format!("key:{public_id} {}", body.name);
    commit(state, mutation, audit_event(caller, "deployment_key.create", target, detail)).await?;
    let row = state.store.credential_by_id(credential_id).await?;
    let revealed = RevealedDeploymentKey { key: key_dto(row), secret: secret.expose().to_string() };
    Ok((StatusCode::CREATED, Json(revealed)))
}

async fn list(state: &AppState, caller: &Caller, scope: Scope, id: &str) -> ApiResult<Json<Vec<DeploymentKey>>> {
    let (audience, ..) = scope_audience(state, caller, scope, id, KeyAction::List).await?;
    let rows = state.store.gateway_keys(caller.realm_id, &audience).await?;
    Ok(Json(rows.into_iter().map(key_dto).collect()))
}

async fn reveal(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    id: &str,
    key_id: &str,
) -> ApiResult<Json<RevealedDeploymentKey>> {
    // A token handed out for minutes (or an IP-filtered API token) must not walk away
    // with a key that outlives it.
    refuse_access_token_minting(caller)?;
    let (audience, target, ..) = scope_audience(state, caller, scope, id, KeyAction::Reveal).await?;
    let row = load_key(state, caller, &audience, key_id).await?;
    let secret = open_and_audit(state, caller, &row, target).await?;
    Ok(Json(RevealedDeploymentKey { key: key_dto(row), secret }))
}

/// Opens a key's sealed secret, once the reveal is on record.
async fn open_and_audit(state: &AppState, caller: &Caller, row: &CredentialRow, target: String) -> ApiResult<String> {
    let sealed = state
        .store
        .sealed_secret(row.id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("deployment key {} has no sealed secret", row.public_id)))?;
    let secret = state
        .sealer
        .open(sealing_context(&row.public_id).as_bytes(), &sealed)
        .map_err(|_| ApiError::Internal(format!("deployment key {} does not open", row.public_id)))?;
    let secret = String::from_utf8(secret.to_vec())
        .map_err(|_| ApiError::Internal(format!("deployment key {} is not text", row.public_id)))?;
    // The reveal is on record before the secret leaves.
    let mutation = state.store.begin().await?;
    let detail = format!("key:{} {}", row.public_id, row.name);
    commit(state, mutation, audit_event(caller, "deployment_key.reveal", target, detail)).await?;
    Ok(secret)
}

#[utoipa::path(get, path = "/api/v1/deployments/{id}/sample", tag = "deployer",
    responses((status = 200, body = DeploymentSample), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem)))]
pub async fn deployment_sample(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeploymentSample>> {
    let standing = Standing::of(&state, &caller).await?;
    let deployment = load_deployment(&state, &caller, &standing, &id, DeploymentAction::Read).await?;
    let url = gateway_url(&state, &caller.realm_name, &deployment.infrastructure_name, &deployment.service_name);
    let (header, key_id) = match effective_auth(deployment.auth.as_deref(), &deployment.service_auth) {
        GatewayAuth::ApiKeys => {
            refuse_access_token_minting(&caller)?;
            let (scope, scope_id) = match deployment.auth {
                Some(_) => (Scope::Deployment, deployment.public_id.clone()),
                None => (Scope::Service, deployment.service_public_id.clone()),
            };
            let (audience, target, ..) = scope_audience(&state, &caller, scope, &scope_id, KeyAction::Reveal).await?;
            match state.store.gateway_keys(caller.realm_id, &audience).await?.into_iter().next() {
                Some(first) => {
                    let secret = open_and_audit(&state, &caller, &first, target).await?;
                    (Some(format!("Authorization: Bearer {secret}")), Some(first.public_id))
                }
                None => (Some("Authorization: Bearer KEY".to_string()), None),
            }
        }
        GatewayAuth::Jwt(_) => (Some("Authorization: Bearer $ACCESS_TOKEN".to_string()), None),
        GatewayAuth::None | GatewayAuth::Service => (None, None),
    };
    Ok(Json(DeploymentSample { curl: sample_curl(&url, header.as_deref()), key_id }))
}

/// The seeds' sample call to a deployment at `url`, with its credential `header`.
pub fn sample_curl(url: &str, header: Option<&str>) -> String {
    let data = r#"--data '{"key": "value"}'"#;
    match header {
        Some(header) => format!("curl -X POST --header '{header}' {url} {data}"),
        None => format!("curl -X POST {url} {data}"),
    }
}

async fn delete(state: &AppState, caller: &Caller, scope: Scope, id: &str, key_id: &str) -> ApiResult<StatusCode> {
    let (audience, target, _, holder) = scope_audience(state, caller, scope, id, KeyAction::Manage).await?;
    let row = load_key(state, caller, &audience, key_id).await?;
    let mut mutation = state.store.begin().await?;
    recheck_manage(&mut mutation, caller, &holder).await?;
    mutation.revoke_credential(row.id, OffsetDateTime::now_utc()).await.map_err(crate::error::not_found("key"))?;
    let detail = format!("key:{} {}", row.public_id, row.name);
    commit(state, mutation, audit_event(caller, "deployment_key.delete", target, detail)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/api-services/{id}/keys", tag = "deployer", request_body = CreateDeploymentKey,
    responses((status = 201, body = RevealedDeploymentKey), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn create_service_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateDeploymentKey>,
) -> ApiResult<(StatusCode, Json<RevealedDeploymentKey>)> {
    create(&state, &caller, Scope::Service, &id, body).await
}

#[utoipa::path(get, path = "/api/v1/api-services/{id}/keys", tag = "deployer",
    responses((status = 200, body = Vec<DeploymentKey>), (status = 404, body = proto::Problem)))]
pub async fn list_service_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<DeploymentKey>>> {
    list(&state, &caller, Scope::Service, &id).await
}

#[utoipa::path(post, path = "/api/v1/api-services/{id}/keys/{key_id}/reveal", tag = "deployer",
    responses((status = 200, body = RevealedDeploymentKey), (status = 404, body = proto::Problem)))]
pub async fn reveal_service_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<RevealedDeploymentKey>> {
    reveal(&state, &caller, Scope::Service, &id, &key_id).await
}

#[utoipa::path(delete, path = "/api/v1/api-services/{id}/keys/{key_id}", tag = "deployer",
    responses((status = 204), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn delete_service_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    delete(&state, &caller, Scope::Service, &id, &key_id).await
}

#[utoipa::path(post, path = "/api/v1/deployments/{id}/keys", tag = "deployer", request_body = CreateDeploymentKey,
    responses((status = 201, body = RevealedDeploymentKey), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn create_deployment_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateDeploymentKey>,
) -> ApiResult<(StatusCode, Json<RevealedDeploymentKey>)> {
    create(&state, &caller, Scope::Deployment, &id, body).await
}

#[utoipa::path(get, path = "/api/v1/deployments/{id}/keys", tag = "deployer",
    responses((status = 200, body = Vec<DeploymentKey>), (status = 404, body = proto::Problem)))]
pub async fn list_deployment_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<DeploymentKey>>> {
    list(&state, &caller, Scope::Deployment, &id).await
}

#[utoipa::path(post, path = "/api/v1/deployments/{id}/keys/{key_id}/reveal", tag = "deployer",
    responses((status = 200, body = RevealedDeploymentKey), (status = 404, body = proto::Problem)))]
pub async fn reveal_deployment_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<RevealedDeploymentKey>> {
    reveal(&state, &caller, Scope::Deployment, &id, &key_id).await
}

#[utoipa::path(delete, path = "/api/v1/deployments/{id}/keys/{key_id}", tag = "deployer",
    responses((status = 204), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn delete_deployment_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    delete(&state, &caller, Scope::Deployment, &id, &key_id).await
}
