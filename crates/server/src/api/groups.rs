//! Groups, their members and the roles granted to them. Admin only.

use crate::api::users::{load_user, parse_role};
use crate::api::{audit_event, commit, decode_cursor, new_public_id, next_cursor, page_limit, parse_id, require_admin};
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::{Role, validate};
use proto::{CreateGroup, Group, GroupMember, Page, PageQuery};
use store::GroupRow;
use time::OffsetDateTime;

async fn group_dto(state: &AppState, row: GroupRow) -> ApiResult<Group> {
    let roles = state.store.group_roles(row.id).await?;
    let members = state.store.group_members(row.id).await?;
    Ok(Group {
        id: row.public_id,
        name: row.name,
        description: row.description,
        roles: roles.names(),
        members: members
            .into_iter()
            .map(|member| GroupMember { id: member.public_id, username: member.username })
            .collect(),
        created_at: row.created_at,
    })
}

pub(crate) async fn load_group(state: &AppState, caller: &Caller, id: &str) -> ApiResult<GroupRow> {
    let id = parse_id(id, "group")?;
    state.store.group_by_public_id(caller.realm_id, id.as_str()).await.map_err(crate::error::not_found("group"))
}

#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = CreateGroup,
    responses((status = 201, body = Group), (status = 409, body = proto::Problem)))]
pub async fn create_group(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateGroup>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    require_admin(&caller)?;
    validate::object_name(&body.name).map_err(|detail| ApiError::invalid("name", detail))?;
    validate::free_text(&body.description, validate::MAX_DESCRIPTION_CHARS)
        .map_err(|detail| ApiError::invalid("description", detail))?;
    let public_id = new_public_id();
    let mut mutation = state.store.begin().await?;
    mutation
        .insert_group(public_id.as_str(), caller.realm_id, &body.name, &body.description, OffsetDateTime::now_utc())
        .await?;
    let event = audit_event(&caller, "group.create", format!("group:{public_id}"), body.name.clone());
    commit(&state, mutation, event).await?;
    let row = state.store.group_by_public_id(caller.realm_id, public_id.as_str()).await?;
    Ok((StatusCode::CREATED, Json(group_dto(&state, row).await?)))
}

#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", params(PageQuery), responses((status = 200, body = Page<Group>)))]
pub async fn list_groups(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Group>>> {
    require_admin(&caller)?;
    let limit = page_limit(query.limit)?;
    let after = decode_cursor(query.cursor.as_deref())?;
    let rows = state.store.list_groups(caller.realm_id, after, limit).await?;
    let count = rows.len();
    let last = rows.last().map(|row| row.id);
    let mut items = Vec::with_capacity(count);
    for row in rows {
        items.push(group_dto(&state, row).await?);
    }
    Ok(Json(Page { items, next_cursor: next_cursor(count, limit, last) }))
}

#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "groups", params(("id" = String, Path)),
    responses((status = 200, body = Group), (status = 404, body = proto::Problem)))]
pub async fn get_group(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Group>> {
    require_admin(&caller)?;
    let row = load_group(&state, &caller, &id).await?;
    Ok(Json(group_dto(&state, row).await?))
}

/// Nobody takes the admin role from themselves, directly or through a group: refuses a
/// change that would leave the caller, a member of `group_id`, without admin when this
/// group is where their admin role comes from. Admin keys hold no group.
async fn keep_own_admin(state: &AppState, caller: &Caller, group_id: i64) -> ApiResult<()> {
    let Some(own) = caller.principal.as_ref() else { return Ok(()) };
    let groups = state.store.groups_of_user(own.id).await?;
    if !groups.iter().any(|group| group.id == group_id) || state.store.direct_roles(own.id).await?.contains(Role::Admin)
    {
        return Ok(());
    }
    for other in groups.iter().filter(|group| group.id != group_id) {
        if state.store.group_roles(other.id).await?.contains(Role::Admin) {
            return Ok(());
        }
    }
    Err(ApiError::Conflict {
        field: None,
        detail: "This would take the admin role from you: you hold it through this group only. Ask another \
                 administrator."
            .to_string(),
    })
}

#[utoipa::path(delete, path = "/api/v1/groups/{id}", tag = "groups", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = proto::Problem)))]
pub async fn delete_group(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require_admin(&caller)?;
    let row = load_group(&state, &caller, &id).await?;
    if state.store.group_roles(row.id).await?.contains(Role::Admin) {
        keep_own_admin(&state, &caller, row.id).await?;
    }
    let mut mutation = state.store.begin().await?;
    mutation.delete_group(row.id).await?;
    let event = audit_event(&caller, "group.delete", format!("group:{}", row.public_id), row.name.clone());
    commit(&state, mutation, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/groups/{id}/members/{userId}", tag = "groups",
    params(("id" = String, Path), ("userId" = String, Path)), responses((status = 200, body = Group)))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, user_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Group>> {
    require_admin(&caller)?;
    let group = load_group(&state, &caller, &id).await?;
    let user = load_user(&state, &caller, &user_id).await?;
    let mut mutation = state.store.begin().await?;
    mutation.add_group_member(group.id, user.id).await?;
    let event = audit_event(
        &caller,
        "group.member.add",
        format!("group:{}", group.public_id),
        format!("user:{}", user.public_id),
    );
    commit(&state, mutation, event).await?;
    Ok(Json(group_dto(&state, group).await?))
}

#[utoipa::path(delete, path = "/api/v1/groups/{id}/members/{userId}", tag = "groups",
    params(("id" = String, Path), ("userId" = String, Path)), responses((status = 200, body = Group)))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, user_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Group>> {
    require_admin(&caller)?;
    let group = load_group(&state, &caller, &id).await?;
    let user = load_user(&state, &caller, &user_id).await?;
    let is_self = caller.principal.as_ref().is_some_and(|own| own.id == user.id);
    if is_self && state.store.group_roles(group.id).await?.contains(Role::Admin) {
        keep_own_admin(&state, &caller, group.id).await?;
    }
    let mut mutation = state.store.begin().await?;
    mutation.remove_group_member(group.id, user.id).await?;
    let event = audit_event(
        &caller,
        "group.member.remove",
        format!("group:{}", group.public_id),
        format!("user:{}", user.public_id),
    );
    commit(&state, mutation, event).await?;
    Ok(Json(group_dto(&state, group).await?))
}

#[utoipa::path(put, path = "/api/v1/groups/{id}/roles/{role}", tag = "groups",
    params(("id" = String, Path), ("role" = String, Path)), responses((status = 200, body = Group)))]
pub async fn grant_group_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, role)): ApiPath<(String, String)>,
) -> ApiResult<Json<Group>> {
    require_admin(&caller)?;
    let group = load_group(&state, &caller, &id).await?;
    let role = parse_role(&role)?;
    let mut mutation = state.store.begin().await?;
    mutation.grant_group_role(group.id, role).await?;
    let event =
        audit_event(&caller, "group.role.grant", format!("group:{}", group.public_id), role.as_str().to_string());
    commit(&state, mutation, event).await?;
    Ok(Json(group_dto(&state, group).await?))
}

#[utoipa::path(delete, path = "/api/v1/groups/{id}/roles/{role}", tag = "groups",
    params(("id" = String, Path), ("role" = String, Path)), responses((status = 200, body = Group)))]
pub async fn revoke_group_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, role)): ApiPath<(String, String)>,
) -> ApiResult<Json<Group>> {
    require_admin(&caller)?;
    let group = load_group(&state, &caller, &id).await?;
    let role = parse_role(&role)?;
    if role == Role::Admin {
        keep_own_admin(&state, &caller, group.id).await?;
    }
    let mut mutation = state.store.begin().await?;
    mutation.revoke_group_role(group.id, role).await?;
    let event =
        audit_event(&caller, "group.role.revoke", format!("group:{}", group.public_id), role.as_str().to_string());
    commit(&state, mutation, event).await?;
    Ok(Json(group_dto(&state, group).await?))
}
