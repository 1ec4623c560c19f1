//! Infrastructures: where API services are deployed (`dev`, `prod`, …). Only
//! administrators create them; groups hold View, Deploy or Admin on each, and
//! Infrastructure Admins manage its settings and permissions. An infrastructure the
//! caller cannot view answers 404, exactly as an unknown id does.

use crate::api::grants;
use crate::api::{audit_event, check_description, commit, new_public_id, parse_id, require_admin};
use crate::authn::Caller;
use crate::deployer::Standing;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::deployer::{
    InfraAccess, InfraPrivilege, MAX_UPSTREAM_RULES, check_gateway_name, parse_upstream_rule, upstream_allowed,
};
use proto::deployer::{CreateInfrastructure, Grant, Infrastructure, SetGrant, UpdateInfrastructure};
use store::{DeploymentColumn, GrantTarget, InfrastructureRow, NewInfrastructure};
use time::OffsetDateTime;

fn infrastructure_dto(row: InfrastructureRow, access: InfraAccess) -> Infrastructure {
    Infrastructure {
        id: row.public_id,
        name: row.name,
        description: row.description,
        allowed_upstreams: row.allowed_upstreams,
        my_privilege: access.effective().map(|privilege| privilege.as_str().to_string()),
        created_at: row.created_at,
        created_by: row.created_by,
    }
}

/// The host of an upstream URL, lowercase, without brackets.
pub fn upstream_host(upstream: &str) -> Option<String> {
    let uri = upstream.parse::<axum::http::Uri>().ok()?;
    Some(uri.host()?.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
}

/// Whether an infrastructure's list allows `upstream`.
pub fn allows_upstream(allowed_upstreams: &[String], upstream: &str) -> bool {
    let rules: Vec<_> = allowed_upstreams.iter().filter_map(|entry| parse_upstream_rule(entry).ok()).collect();
    // Entries are checked when written; one that no longer parses restricts to nothing.
    if rules.len() != allowed_upstreams.len() {
        return false;
    }
    upstream_host(upstream).is_some_and(|host| upstream_allowed(&rules, &host))
}

/// An infrastructure of the caller's realm that the caller may view, with their standing.
pub async fn load_infrastructure(
    state: &AppState,
    caller: &Caller,
    standing: &Standing,
    id: &str,
) -> ApiResult<(InfrastructureRow, InfraAccess)> {
    let id = parse_id(id, "infrastructure")?;
    let row = state
        .store
        .infrastructure_by_public_id(caller.realm_id, id.as_str())
        .await
        .map_err(crate::error::not_found("infrastructure"))?;
    let access = standing.infrastructure(row.id);
    if !access.can_see() {
        return Err(ApiError::NotFound("infrastructure"));
    }
    Ok((row, access))
}

fn require_infra_admin(access: InfraAccess) -> ApiResult<()> {
    if access.has(InfraPrivilege::Admin) {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "This needs the admin privilege on the infrastructure (or the admin role); ask one of its admins.".to_string(),
    ))
}

/// Checks an allowed-upstreams list and returns it in canonical form.
fn check_allowed_upstreams(entries: &[String]) -> ApiResult<Vec<String>> {
    if entries.len() > MAX_UPSTREAM_RULES {
        return Err(ApiError::invalid("allowedUpstreams", format!("at most {MAX_UPSTREAM_RULES} entries")));
    }
    entries
        .iter()
        .map(|entry| {
            parse_upstream_rule(entry)
                .map(|_| entry.trim().to_ascii_lowercase())
                .map_err(|detail| ApiError::invalid("allowedUpstreams", detail))
        })
        .collect()
}

#[utoipa::path(post, path = "/api/v1/infrastructures", tag = "deployer", request_body = CreateInfrastructure,
    responses((status = 201, body = Infrastructure), (status = 403, body = proto::Problem),
        (status = 409, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateInfrastructure>,
) -> ApiResult<(StatusCode, Json<Infrastructure>)> {
    require_admin(&caller)?;
    check_gateway_name(&body.name).map_err(|detail| ApiError::invalid("name", detail))?;
    check_description(&body.description)?;
    let allowed_upstreams = check_allowed_upstreams(&body.allowed_upstreams)?;
    let public_id = new_public_id();
    let mut mutation = state.store.begin().await?;
    mutation
        .insert_infrastructure(&NewInfrastructure {
            public_id: public_id.as_str(),
            realm_id: caller.realm_id,
            name: &body.name,
            description: &body.description,
            allowed_upstreams: &allowed_upstreams,
            created_by: &caller.actor(),
            now: OffsetDateTime::now_utc(),
        })
        .await?;
    let event = audit_event(&caller, "infrastructure.create", format!("infrastructure:{public_id}"), body.name);
    commit(&state, mutation, event).await?;
    let row = state.store.infrastructure_by_public_id(caller.realm_id, public_id.as_str()).await?;
    let access = InfraAccess { privilege: None, realm_admin: true };
    Ok((StatusCode::CREATED, Json(infrastructure_dto(row, access))))
}

#[utoipa::path(get, path = "/api/v1/infrastructures", tag = "deployer",
    responses((status = 200, body = Vec<Infrastructure>)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Infrastructure>>> {
    let standing = Standing::of(&state, &caller).await?;
    let rows = state.store.list_infrastructures(caller.realm_id).await?;
    Ok(Json(
        rows.into_iter()
            .filter_map(|row| {
                let access = standing.infrastructure(row.id);
                access.can_see().then(|| infrastructure_dto(row, access))
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/infrastructures/{id}", tag = "deployer",
    responses((status = 200, body = Infrastructure), (status = 404, body = proto::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Infrastructure>> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, access) = load_infrastructure(&state, &caller, &standing, &id).await?;
    Ok(Json(infrastructure_dto(row, access)))
}

#[utoipa::path(patch, path = "/api/v1/infrastructures/{id}", tag = "deployer", request_body = UpdateInfrastructure,
    responses((status = 200, body = Infrastructure), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateInfrastructure>,
) -> ApiResult<Json<Infrastructure>> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, access) = load_infrastructure(&state, &caller, &standing, &id).await?;
    require_infra_admin(access)?;
    if let Some(description) = &body.description {
        check_description(description)?;
    }
    let asked_upstreams = body.allowed_upstreams.as_deref().map(check_allowed_upstreams).transpose()?;
    let mut mutation = state.store.begin().await?;
    // The caller's grants read again inside the change: an Admin privilege taken away
    // meanwhile widens no list.
    require_infra_admin(Standing::in_mutation(&mut mutation, &caller).await?.infrastructure(row.id))?;
    // What the body leaves out is kept as it is now, read inside the transaction: a list
    // another admin narrowed meanwhile is not written back wider.
    let now = mutation.infrastructure_for_update(row.id).await.map_err(crate::error::not_found("infrastructure"))?;
    let description = body.description.unwrap_or(now.description);
    let allowed_upstreams = asked_upstreams.unwrap_or(now.allowed_upstreams);
    let rules = allowed_upstreams.iter().filter_map(|entry| parse_upstream_rule(entry).ok()).collect::<Vec<_>>();
    // A narrower list must not strand deployments that run now: they move first. Read
    // inside the transaction, so no deployment slips in between.
    let outside = mutation
        .upstreams_on_infrastructure(row.id)
        .await?
        .iter()
        .filter(|upstream| !upstream_host(upstream).is_some_and(|host| upstream_allowed(&rules, &host)))
        .count();
    if outside > 0 {
        return Err(ApiError::Conflict {
            field: Some("allowedUpstreams".to_string()),
            detail: format!(
                "{outside} deployment(s) on this infrastructure forward to upstreams outside the new list; move them \
                 to allowed upstreams first."
            ),
        });
    }
    mutation.update_infrastructure(caller.realm_id, row.id, &description, &allowed_upstreams).await?;
    let target = format!("infrastructure:{}", row.public_id);
    let detail = format!("{} allowed_upstreams={allowed_upstreams:?}", row.name);
    commit(&state, mutation, audit_event(&caller, "infrastructure.update", target, detail)).await?;
    let row = state.store.infrastructure_by_public_id(caller.realm_id, &row.public_id).await?;
    Ok(Json(infrastructure_dto(row, access)))
}

#[utoipa::path(delete, path = "/api/v1/infrastructures/{id}", tag = "deployer",
    responses((status = 204), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, access) = load_infrastructure(&state, &caller, &standing, &id).await?;
    require_infra_admin(access)?;
    let mut mutation = state.store.begin().await?;
    if mutation.deployments_using(DeploymentColumn::Infrastructure, row.id).await? > 0 {
        return Err(ApiError::Conflict {
            field: None,
            detail: "Deployments still run on this infrastructure; delete them first.".to_string(),
        });
    }
    mutation.delete_infrastructure(row.id).await?;
    let target = format!("infrastructure:{}", row.public_id);
    commit(&state, mutation, audit_event(&caller, "infrastructure.delete", target, row.name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/infrastructures/{id}/permissions", tag = "deployer",
    responses((status = 200, body = Vec<Grant>), (status = 404, body = proto::Problem)))]
pub async fn list_permissions(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<Grant>>> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, _) = load_infrastructure(&state, &caller, &standing, &id).await?;
    Ok(Json(grants::list(&state, GrantTarget::Infrastructure(row.id)).await?))
}

#[utoipa::path(put, path = "/api/v1/infrastructures/{id}/permissions/{group_id}", tag = "deployer",
    request_body = SetGrant,
    responses((status = 200, body = Vec<Grant>), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn set_permission(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, group_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetGrant>,
) -> ApiResult<Json<Vec<Grant>>> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, access) = load_infrastructure(&state, &caller, &standing, &id).await?;
    require_infra_admin(access)?;
    let privilege = InfraPrivilege::parse(&body.privilege)
        .ok_or_else(|| ApiError::invalid("privilege", "must be one of view, deploy, admin"))?;
    let audited = grants::Audited { kind: "infrastructure", public_id: &row.public_id };
    let allowed = |standing: &Standing| require_infra_admin(standing.infrastructure(row.id));
    let target = (GrantTarget::Infrastructure(row.id), &allowed as grants::Allowed<'_>);
    Ok(Json(grants::set(&state, &caller, target, audited, &group_id, privilege.as_str()).await?))
}

#[utoipa::path(delete, path = "/api/v1/infrastructures/{id}/permissions/{group_id}", tag = "deployer",
    responses((status = 204), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn remove_permission(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, group_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, access) = load_infrastructure(&state, &caller, &standing, &id).await?;
    require_infra_admin(access)?;
    let audited = grants::Audited { kind: "infrastructure", public_id: &row.public_id };
    let allowed = |standing: &Standing| require_infra_admin(standing.infrastructure(row.id));
    let target = (GrantTarget::Infrastructure(row.id), &allowed as grants::Allowed<'_>);
    grants::remove(&state, &caller, target, audited, &group_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
