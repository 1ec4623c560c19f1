//! Deployments: a version of an API service on an infrastructure, enabled or disabled,
//! with the service's auth settings or its own. Deployments carry no permissions:
//! reading one needs Read on the service and View on the infrastructure, and every
//! change needs Deploy on both (`keyward_core::deployer::decide_deployment`).

use crate::api::api_services::{load_service, load_version};
use crate::api::infrastructures::load_infrastructure;
use crate::api::{audit_event, commit, new_public_id, parse_id};
use crate::authn::Caller;
use crate::deployer::{SettingsOwner, Standing, check_auth, effective_auth, store_auth, stored_auth};
use crate::error::{ApiError, ApiResult, not_found};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::deployer::{Decision, DeploymentAction, decide_deployment};
use proto::deployer::{CreateDeployment, Deployment, DeploymentQuery, GatewayAuth, UpdateDeployment};
use store::{DeploymentPatch, DeploymentRow, Mutation, NewDeployment, StoreError};
use time::OffsetDateTime;

/// Where the gateway serves a deployment: `/public/…` for the default realm,
/// `/realms/{realm}/public/…` for the others.
pub fn gateway_url(state: &AppState, realm_name: &str, infrastructure: &str, service: &str) -> String {
    if realm_name == state.config.default_realm {
        format!("{}/public/{infrastructure}/{service}", state.config.public_url)
    } else {
        format!("{}/realms/{realm_name}/public/{infrastructure}/{service}", state.config.public_url)
    }
}

fn deployment_dto(state: &AppState, caller: &Caller, row: DeploymentRow) -> Deployment {
    Deployment {
        url: gateway_url(state, &caller.realm_name, &row.infrastructure_name, &row.service_name),
        effective_auth: effective_auth(row.auth.as_deref(), &row.service_auth),
        auth: row.auth.as_deref().map_or(GatewayAuth::Service, stored_auth),
        id: row.public_id,
        service_id: row.service_public_id,
        service_name: row.service_name,
        infrastructure_id: row.infrastructure_public_id,
        infrastructure_name: row.infrastructure_name,
        version_id: row.version_public_id,
        version_number: row.version_number,
        enabled: row.enabled,
        created_at: row.created_at,
        created_by: row.created_by,
        updated_at: row.updated_at,
        updated_by: row.updated_by,
    }
}

/// The caller's decision on `action` for an existing deployment.
fn decision(standing: &Standing, row: &DeploymentRow, action: DeploymentAction) -> Decision {
    decide_deployment(
        standing.service_by_id(row.service_id, row.service_owner_id),
        standing.infrastructure(row.infrastructure_id),
        action,
    )
}

fn apply(decision: Decision) -> ApiResult<()> {
    match decision {
        Decision::Allowed => Ok(()),
        Decision::Invisible => Err(ApiError::NotFound("deployment")),
        Decision::Forbidden => Err(ApiError::Forbidden(
            "Changing a deployment needs the deploy privilege on both its API service and its infrastructure \
             (or the admin role)."
                .to_string(),
        )),
    }
}

/// Reads the caller's grants again inside the mutation that acts on a deployment: a
/// Deploy privilege another change took away before this one began is not used (mutations
/// run one at a time). The admin role is the caller's as authenticated.
pub(crate) async fn recheck_caller(
    mutation: &mut Mutation,
    caller: &Caller,
    row: &DeploymentRow,
    action: DeploymentAction,
) -> ApiResult<()> {
    let standing = Standing::in_mutation(mutation, caller).await?;
    apply(decision(&standing, row, action))
}

/// A deployment of the caller's realm on which the caller may take `action`.
pub async fn load_deployment(
    state: &AppState,
    caller: &Caller,
    standing: &Standing,
    id: &str,
    action: DeploymentAction,
) -> ApiResult<DeploymentRow> {
    let id = parse_id(id, "deployment")?;
    let row =
        state.store.deployment_by_public_id(caller.realm_id, id.as_str()).await.map_err(not_found("deployment"))?;
    apply(decision(standing, &row, action))?;
    Ok(row)
}

/// Refuses a version whose upstream the infrastructure's admins have not allowed.
fn require_allowed_upstream(allowed_upstreams: &[String], upstream: &str) -> ApiResult<()> {
    if crate::api::infrastructures::allows_upstream(allowed_upstreams, upstream) {
        return Ok(());
    }
    Err(ApiError::invalid(
        "versionId",
        format!(
            "the version's upstream {upstream} is not among the infrastructure's allowed upstreams ({}); ask its \
             admins, or use a version that forwards to an allowed host",
            allowed_upstreams.join(", ")
        ),
    ))
}

fn parse_auth(state: &AppState, caller: &Caller, auth: Option<GatewayAuth>) -> ApiResult<Option<String>> {
    match auth {
        None | Some(GatewayAuth::Service) => Ok(None),
        Some(auth) => {
            check_auth(state, caller, &auth, SettingsOwner::Deployment)?;
            Ok(Some(store_auth(&auth)?))
        }
    }
}

#[utoipa::path(post, path = "/api/v1/deployments", tag = "deployer", request_body = CreateDeployment,
    responses((status = 201, body = Deployment), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 409, body = proto::Problem),
        (status = 422, body = proto::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateDeployment>,
) -> ApiResult<(StatusCode, Json<Deployment>)> {
    let standing = Standing::of(&state, &caller).await?;
    let (service, service_access) = load_service(&state, &caller, &standing, &body.service_id).await?;
    let (infrastructure, infra_access) =
        load_infrastructure(&state, &caller, &standing, &body.infrastructure_id).await?;
    apply(decide_deployment(service_access, infra_access, DeploymentAction::Create))?;
    let version = load_version(&state, service.id, &body.version_id).await?;
    require_allowed_upstream(&infrastructure.allowed_upstreams, &version.upstream)?;
    let auth = parse_auth(&state, &caller, body.auth)?;
    let public_id = new_public_id();
    let mut mutation = state.store.begin().await?;
    recheck_target(&mut mutation, infrastructure.id, version.id).await?;
    let standing = Standing::in_mutation(&mut mutation, &caller).await?;
    let (service_access, infra_access) = (standing.service(&service), standing.infrastructure(infrastructure.id));
    apply(decide_deployment(service_access, infra_access, DeploymentAction::Create))?;
    let id = mutation
        .insert_deployment(&NewDeployment {
            public_id: public_id.as_str(),
            realm_id: caller.realm_id,
            service_id: service.id,
            infrastructure_id: infrastructure.id,
            version_id: version.id,
            enabled: body.enabled.unwrap_or(true),
            auth: auth.as_deref(),
            created_by: &caller.actor(),
            now: OffsetDateTime::now_utc(),
        })
        .await
        .map_err(|error| match error {
            StoreError::Conflict { .. } => ApiError::Conflict {
                field: Some("infrastructureId".to_string()),
                detail: format!(
                    "{} is already deployed on {}; update that deployment (PATCH) instead.",
                    service.name, infrastructure.name
                ),
            },
            other => other.into(),
        })?;
    let detail = format!(
        "api_service:{} infrastructure:{} version={} auth={}",
        service.public_id,
        infrastructure.public_id,
        version.number,
        auth.as_deref().unwrap_or("service")
    );
    commit(&state, mutation, audit_event(&caller, "deployment.create", format!("deployment:{public_id}"), detail))
        .await?;
    let row = state.store.deployment_by_id(id).await?;
    Ok((StatusCode::CREATED, Json(deployment_dto(&state, &caller, row))))
}

#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployer", params(DeploymentQuery),
    responses((status = 200, body = Vec<Deployment>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<DeploymentQuery>,
) -> ApiResult<Json<Vec<Deployment>>> {
    let standing = Standing::of(&state, &caller).await?;
    let rows = state.store.list_deployments(Some(caller.realm_id)).await?;
    Ok(Json(
        rows.into_iter()
            .filter(|row| query.service_id.as_ref().is_none_or(|id| *id == row.service_public_id))
            .filter(|row| query.infrastructure_id.as_ref().is_none_or(|id| *id == row.infrastructure_public_id))
            .filter(|row| decision(&standing, row, DeploymentAction::Read) == Decision::Allowed)
            .map(|row| deployment_dto(&state, &caller, row))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployer",
    responses((status = 200, body = Deployment), (status = 404, body = proto::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Deployment>> {
    let standing = Standing::of(&state, &caller).await?;
    let row = load_deployment(&state, &caller, &standing, &id, DeploymentAction::Read).await?;
    Ok(Json(deployment_dto(&state, &caller, row)))
}

/// What a change sets; `None` fields stay. `auth: Some(None)` goes back to the service's.
struct Change {
    /// The version's row id and number.
    version: Option<(i64, i64)>,
    enabled: Option<bool>,
    auth: Option<Option<String>>,
}

/// Reads again, inside the mutation that writes a deployment, what the checks before it
/// read: an infrastructure or version deleted, or an allowed-upstream list narrowed, by a
/// change that committed in between is seen here (mutations run one at a time), so no
/// deployment lands on a target that no longer takes it.
async fn recheck_target(mutation: &mut Mutation, infrastructure_id: i64, version_id: i64) -> ApiResult<()> {
    let infrastructure =
        mutation.infrastructure_for_update(infrastructure_id).await.map_err(not_found("infrastructure"))?;
    let version = mutation.version_for_update(version_id).await.map_err(not_found("version"))?;
    require_allowed_upstream(&infrastructure.allowed_upstreams, &version.upstream)
}

/// Applies `change` to a deployment the caller was allowed `action` on, audited.
async fn apply_change(
    state: &AppState,
    caller: &Caller,
    row: DeploymentRow,
    action: DeploymentAction,
    change: Change,
) -> ApiResult<Json<Deployment>> {
    let actor = caller.actor();
    let mut mutation = state.store.begin().await?;
    recheck_caller(&mut mutation, caller, &row, action).await?;
    if let Some((version_id, _)) = change.version {
        recheck_target(&mut mutation, row.infrastructure_id, version_id).await?;
    }
    mutation
        .update_deployment(
            caller.realm_id,
            row.id,
            &DeploymentPatch {
                version_id: change.version.map(|(id, _)| id),
                enabled: change.enabled,
                auth: change.auth.as_ref().map(Option::as_deref),
                updated_by: &actor,
                now: OffsetDateTime::now_utc(),
            },
        )
        .await
        .map_err(not_found("deployment"))?;
    let mut detail = Vec::new();
    if let Some(enabled) = change.enabled {
        detail.push(format!("enabled={enabled}"));
    }
    if let Some(auth) = &change.auth {
        detail.push(format!("auth={}", auth.as_deref().unwrap_or("service")));
    }
    if let Some((_, number)) = change.version {
        detail.push(format!("version={number}"));
    }
    let event = audit_event(
        caller,
        &format!("deployment.{}", action.as_str()),
        format!("deployment:{}", row.public_id),
        detail.join(" "),
    );
    commit(state, mutation, event).await?;
    Ok(Json(deployment_dto(state, caller, state.store.deployment_by_id(row.id).await?)))
}

#[utoipa::path(patch, path = "/api/v1/deployments/{id}", tag = "deployer", request_body = UpdateDeployment,
    responses((status = 200, body = Deployment), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateDeployment>,
) -> ApiResult<Json<Deployment>> {
    let standing = Standing::of(&state, &caller).await?;
    let row = load_deployment(&state, &caller, &standing, &id, DeploymentAction::Update).await?;
    let auth = match body.auth {
        Some(auth) => Some(parse_auth(&state, &caller, Some(auth))?),
        None => None,
    };
    // Only a version of the deployment's own service will do.
    let version = match &body.version_id {
        Some(version) => {
            let version = load_version(&state, row.service_id, version).await?;
            require_allowed_upstream(&row.allowed_upstreams, &version.upstream)?;
            Some((version.id, version.number))
        }
        None => None,
    };
    apply_change(&state, &caller, row, DeploymentAction::Update, Change { version, enabled: None, auth }).await
}

/// Enables or disables a deployment.
async fn switch(state: &AppState, caller: &Caller, id: &str, enabled: bool) -> ApiResult<Json<Deployment>> {
    let action = if enabled { DeploymentAction::Enable } else { DeploymentAction::Disable };
    let standing = Standing::of(state, caller).await?;
    let row = load_deployment(state, caller, &standing, id, action).await?;
    apply_change(state, caller, row, action, Change { version: None, enabled: Some(enabled), auth: None }).await
}

#[utoipa::path(post, path = "/api/v1/deployments/{id}/enable", tag = "deployer",
    responses((status = 200, body = Deployment), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem)))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Deployment>> {
    switch(&state, &caller, &id, true).await
}

#[utoipa::path(post, path = "/api/v1/deployments/{id}/disable", tag = "deployer",
    responses((status = 200, body = Deployment), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Deployment>> {
    switch(&state, &caller, &id, false).await
}

#[utoipa::path(delete, path = "/api/v1/deployments/{id}", tag = "deployer",
    responses((status = 204), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let standing = Standing::of(&state, &caller).await?;
    let row = load_deployment(&state, &caller, &standing, &id, DeploymentAction::Delete).await?;
    let mut mutation = state.store.begin().await?;
    recheck_caller(&mut mutation, &caller, &row, DeploymentAction::Delete).await?;
    let audience = crate::deployer::deployment_key_audience(&row.public_id);
    let revoked = mutation.revoke_gateway_keys(caller.realm_id, &audience, OffsetDateTime::now_utc()).await?;
    mutation.delete_deployment(caller.realm_id, row.id).await.map_err(not_found("deployment"))?;
    let detail = format!(
        "api_service:{} infrastructure:{} keys_revoked={}",
        row.service_public_id,
        row.infrastructure_public_id,
        revoked.len()
    );
    let target = format!("deployment:{}", row.public_id);
    commit(&state, mutation, audit_event(&caller, "deployment.delete", target, detail)).await?;
    Ok(StatusCode::NO_CONTENT)
}
