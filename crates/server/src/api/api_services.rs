//! API services and their versions. Holders of `create-api-service` create them and
//! become Owner; groups hold Read, Write, Deploy or Admin. A service the caller cannot
//! read answers 404, exactly as an unknown id does.

use crate::api::grants;
use crate::api::{audit_event, check_description, commit, new_public_id, parse_id};
use crate::authn::Caller;
use crate::deployer::{
    SettingsOwner, Standing, check_auth, require_deploy_wherever_service_settings_apply, store_auth, stored_auth,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::Role;
use keyward_core::deployer::{ServiceAccess, ServicePrivilege, check_gateway_name};
use proto::deployer::{
    ApiService, ApiServiceVersion, CreateApiService, CreateVersion, GatewayAuth, Grant, SetGrant, UpdateApiService,
};
use store::{ApiServiceRow, Counted, DeploymentColumn, GrantTarget, NewApiService, NewVersion, VersionRow};
use time::OffsetDateTime;

/// Services are few per realm; the limit keeps the gateway's table (rebuilt whole on
/// every change) and its bookkeeping small.
const MAX_SERVICES_PER_REALM: i64 = 1000;

fn service_dto(row: ApiServiceRow, access: ServiceAccess) -> ApiService {
    ApiService {
        id: row.public_id,
        name: row.name,
        description: row.description,
        owner_id: row.owner_public_id,
        auth: stored_auth(&row.auth),
        my_privilege: access.effective().map(|privilege| privilege.as_str().to_string()),
        created_at: row.created_at,
        created_by: row.created_by,
    }
}

fn version_dto(row: VersionRow) -> ApiServiceVersion {
    ApiServiceVersion {
        id: row.public_id,
        number: row.number,
        upstream: row.upstream,
        description: row.description,
        created_at: row.created_at,
        created_by: row.created_by,
    }
}

/// A service of the caller's realm that the caller may read, with their standing.
pub async fn load_service(
    state: &AppState,
    caller: &Caller,
    standing: &Standing,
    id: &str,
) -> ApiResult<(ApiServiceRow, ServiceAccess)> {
    let id = parse_id(id, "API service")?;
    let row = state
        .store
        .api_service_by_public_id(caller.realm_id, id.as_str())
        .await
        .map_err(crate::error::not_found("API service"))?;
    let access = standing.service(&row);
    if !access.can_see() {
        return Err(ApiError::NotFound("API service"));
    }
    Ok((row, access))
}

/// Refuses a caller who can read the service but holds less than `needed`.
pub fn require_service(access: ServiceAccess, needed: ServicePrivilege) -> ApiResult<()> {
    if access.has(needed) {
        return Ok(());
    }
    let held = access.effective().map_or("no privilege", ServicePrivilege::as_str);
    Err(ApiError::Forbidden(format!(
        "This needs the {} privilege on the API service (or the admin role); you hold {held}. Ask its owner or \
         an admin of it.",
        needed.as_str()
    )))
}

#[utoipa::path(post, path = "/api/v1/api-services", tag = "deployer", request_body = CreateApiService,
    responses((status = 201, body = ApiService), (status = 403, body = proto::Problem),
        (status = 409, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateApiService>,
) -> ApiResult<(StatusCode, Json<ApiService>)> {
    if !caller.has_role(Role::CreateApiService) && !caller.has_role(Role::Admin) {
        return Err(ApiError::Forbidden(
            "Creating API services needs the create-api-service role; ask an administrator to grant it to one of \
             your groups."
                .to_string(),
        ));
    }
    check_gateway_name(&body.name).map_err(|detail| ApiError::invalid("name", detail))?;
    check_description(&body.description)?;
    let auth = body.auth.unwrap_or(GatewayAuth::ApiKeys);
    check_auth(&state, &caller, &auth, SettingsOwner::Service)?;
    let public_id = new_public_id();
    let owner_id = caller.principal.as_ref().map(|principal| principal.id);
    let mut mutation = state.store.begin().await?;
    if mutation.count(Counted::ApiServices { realm_id: caller.realm_id }).await? >= MAX_SERVICES_PER_REALM {
        return Err(ApiError::Conflict {
            field: None,
            detail: format!(
                "This realm holds {MAX_SERVICES_PER_REALM} API services, the most it may; delete unused ones first."
            ),
        });
    }
    mutation
        .insert_api_service(&NewApiService {
            public_id: public_id.as_str(),
            realm_id: caller.realm_id,
            name: &body.name,
            description: &body.description,
            owner_id,
            auth: &store_auth(&auth)?,
            created_by: &caller.actor(),
            now: OffsetDateTime::now_utc(),
        })
        .await?;
    let event = audit_event(&caller, "api_service.create", format!("api_service:{public_id}"), body.name);
    commit(&state, mutation, event).await?;
    let row = state.store.api_service_by_public_id(caller.realm_id, public_id.as_str()).await?;
    let access = Standing::of(&state, &caller).await?.service(&row);
    Ok((StatusCode::CREATED, Json(service_dto(row, access))))
}

#[utoipa::path(get, path = "/api/v1/api-services", tag = "deployer", responses((status = 200, body = Vec<ApiService>)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<ApiService>>> {
    let standing = Standing::of(&state, &caller).await?;
    let rows = state.store.list_api_services(caller.realm_id).await?;
    Ok(Json(
        rows.into_iter()
            .filter_map(|row| {
                let access = standing.service(&row);
                access.can_see().then(|| service_dto(row, access))
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/api-services/{id}", tag = "deployer",
    responses((status = 200, body = ApiService), (status = 404, body = proto::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiService>> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, access) = load_service(&state, &caller, &standing, &id).await?;
    Ok(Json(service_dto(row, access)))
}

#[utoipa::path(patch, path = "/api/v1/api-services/{id}", tag = "deployer", request_body = UpdateApiService,
    responses((status = 200, body = ApiService), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateApiService>,
) -> ApiResult<Json<ApiService>> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, access) = load_service(&state, &caller, &standing, &id).await?;
    require_service(access, ServicePrivilege::Admin)?;
    if let Some(description) = &body.description {
        check_description(description)?;
    }
    let asked_auth = match body.auth {
        Some(auth) => {
            check_auth(&state, &caller, &auth, SettingsOwner::Service)?;
            let auth = store_auth(&auth)?;
            if auth != row.auth {
                require_deploy_wherever_service_settings_apply(&state, &standing, row.id).await?;
            }
            Some(auth)
        }
        None => None,
    };
    let mut mutation = state.store.begin().await?;
    // The service as it is now and the caller's grants, read again inside the change: what
    // the body leaves out is kept as it is now (an auth setting tightened meanwhile is not
    // written back looser), and an Admin or Deploy privilege taken away meanwhile changes
    // nothing (the auth settings decide who may call the deployments).
    let now = mutation.api_service_for_update(row.id).await.map_err(crate::error::not_found("API service"))?;
    let standing = Standing::in_mutation(&mut mutation, &caller).await?;
    require_service(standing.service(&now), ServicePrivilege::Admin)?;
    let description = body.description.unwrap_or(now.description);
    let auth = asked_auth.unwrap_or(now.auth.clone());
    if auth != now.auth {
        let infrastructures = mutation.infrastructures_under_service_settings(row.id).await?;
        crate::deployer::require_deploy_on(&standing, &infrastructures)?;
    }
    mutation.update_api_service(caller.realm_id, row.id, &description, &auth).await?;
    let target = format!("api_service:{}", row.public_id);
    let detail = format!("{} auth={auth}", row.name);
    commit(&state, mutation, audit_event(&caller, "api_service.update", target, detail)).await?;
    let row = state.store.api_service_by_public_id(caller.realm_id, &row.public_id).await?;
    Ok(Json(service_dto(row, access)))
}

#[utoipa::path(delete, path = "/api/v1/api-services/{id}", tag = "deployer",
    responses((status = 204), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, access) = load_service(&state, &caller, &standing, &id).await?;
    require_service(access, ServicePrivilege::Admin)?;
    let mut mutation = state.store.begin().await?;
    if mutation.deployments_using(DeploymentColumn::ApiService, row.id).await? > 0 {
        return Err(ApiError::Conflict {
            field: None,
            detail: "The service is still deployed; delete its deployments first.".to_string(),
        });
    }
    let audience = crate::deployer::service_key_audience(&row.public_id);
    let revoked = mutation.revoke_gateway_keys(caller.realm_id, &audience, OffsetDateTime::now_utc()).await?;
    mutation.delete_api_service(row.id).await?;
    let target = format!("api_service:{}", row.public_id);
    let detail = format!("{} keys_revoked={}", row.name, revoked.len());
    commit(&state, mutation, audit_event(&caller, "api_service.delete", target, detail)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/api-services/{id}/permissions", tag = "deployer",
    responses((status = 200, body = Vec<Grant>), (status = 404, body = proto::Problem)))]
pub async fn list_permissions(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<Grant>>> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, _) = load_service(&state, &caller, &standing, &id).await?;
    Ok(Json(grants::list(&state, GrantTarget::ApiService(row.id)).await?))
}

#[utoipa::path(put, path = "/api/v1/api-services/{id}/permissions/{group_id}", tag = "deployer",
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
    let (row, access) = load_service(&state, &caller, &standing, &id).await?;
    require_service(access, ServicePrivilege::Admin)?;
    let privilege = ServicePrivilege::parse_grantable(&body.privilege).ok_or_else(|| {
        ApiError::invalid("privilege", "must be one of read, write, deploy, admin (owner is only the creator)")
    })?;
    let audited = grants::Audited { kind: "api_service", public_id: &row.public_id };
    let allowed = |standing: &Standing| require_service(standing.service(&row), ServicePrivilege::Admin);
    let target = (GrantTarget::ApiService(row.id), &allowed as grants::Allowed<'_>);
    Ok(Json(grants::set(&state, &caller, target, audited, &group_id, privilege.as_str()).await?))
}

#[utoipa::path(delete, path = "/api/v1/api-services/{id}/permissions/{group_id}", tag = "deployer",
    responses((status = 204), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn remove_permission(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, group_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, access) = load_service(&state, &caller, &standing, &id).await?;
    require_service(access, ServicePrivilege::Admin)?;
    let audited = grants::Audited { kind: "api_service", public_id: &row.public_id };
    let allowed = |standing: &Standing| require_service(standing.service(&row), ServicePrivilege::Admin);
    let target = (GrantTarget::ApiService(row.id), &allowed as grants::Allowed<'_>);
    grants::remove(&state, &caller, target, audited, &group_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/api-services/{id}/versions", tag = "deployer", request_body = CreateVersion,
    responses((status = 201, body = ApiServiceVersion), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn create_version(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateVersion>,
) -> ApiResult<(StatusCode, Json<ApiServiceVersion>)> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, access) = load_service(&state, &caller, &standing, &id).await?;
    require_service(access, ServicePrivilege::Write)?;
    proxy::forward::Upstream::parse(&body.upstream).map_err(|error| match error {
        proxy::forward::UpstreamError::LinkLocal(_) => {
            ApiError::invalid("upstream", "may not be a link-local address (where cloud metadata lives)")
        }
        proxy::forward::UpstreamError::NotHttp(_) => {
            ApiError::invalid("upstream", "must be an http:// URL with a host, e.g. http://10.0.0.5:8000/predict")
        }
        proxy::forward::UpstreamError::Credentials => ApiError::invalid(
            "upstream",
            "must not carry a user name or password (user:password@host): it would be stored, shown and audited",
        ),
    })?;
    check_description(&body.description)?;
    let public_id = new_public_id();
    let mut mutation = state.store.begin().await?;
    mutation
        .insert_version(&NewVersion {
            public_id: public_id.as_str(),
            service_id: row.id,
            upstream: &body.upstream,
            description: &body.description,
            created_by: &caller.actor(),
            now: OffsetDateTime::now_utc(),
        })
        .await?;
    let target = format!("api_service:{}", row.public_id);
    let detail = format!("version:{public_id} upstream={}", body.upstream);
    commit(&state, mutation, audit_event(&caller, "api_service.version.create", target, detail)).await?;
    let version = state.store.version_by_public_id(row.id, public_id.as_str()).await?;
    Ok((StatusCode::CREATED, Json(version_dto(version))))
}

#[utoipa::path(get, path = "/api/v1/api-services/{id}/versions", tag = "deployer",
    responses((status = 200, body = Vec<ApiServiceVersion>), (status = 404, body = proto::Problem)))]
pub async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<ApiServiceVersion>>> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, _) = load_service(&state, &caller, &standing, &id).await?;
    let versions = state.store.versions_of(row.id).await?;
    Ok(Json(versions.into_iter().map(version_dto).collect()))
}

#[utoipa::path(delete, path = "/api/v1/api-services/{id}/versions/{version_id}", tag = "deployer",
    responses((status = 204), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem)))]
pub async fn delete_version(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, version_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let standing = Standing::of(&state, &caller).await?;
    let (row, access) = load_service(&state, &caller, &standing, &id).await?;
    require_service(access, ServicePrivilege::Write)?;
    let version = load_version(&state, row.id, &version_id).await?;
    let mut mutation = state.store.begin().await?;
    if mutation.deployments_using(DeploymentColumn::Version, version.id).await? > 0 {
        return Err(ApiError::Conflict {
            field: None,
            detail: "A deployment runs this version; move it to another version or delete it first.".to_string(),
        });
    }
    mutation.delete_version(version.id).await?;
    let target = format!("api_service:{}", row.public_id);
    let detail = format!("version:{} number={}", version.public_id, version.number);
    commit(&state, mutation, audit_event(&caller, "api_service.version.delete", target, detail)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A version of the service; anything else answers 404.
pub async fn load_version(state: &AppState, service_id: i64, id: &str) -> ApiResult<VersionRow> {
    let id = parse_id(id, "version")?;
    state.store.version_by_public_id(service_id, id.as_str()).await.map_err(crate::error::not_found("version"))
}
