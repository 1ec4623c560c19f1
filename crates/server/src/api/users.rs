//! Users: create, list, get, update, disable, delete, and role grants. Admin only.
//! Passwords have their own file, `passwords.rs`.

use crate::api::{audit_event, commit, decode_cursor, new_public_id, next_cursor, page_limit, parse_id, require_admin};
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, IdentifiedCaller};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::{Role, validate};
use proto::{CreateUser, GroupRef, Page, PageQuery, UpdateUser, User};
use std::collections::BTreeMap;
use store::{NewUser, UserPatch, UserRow};
use time::OffsetDateTime;

/// Builds the wire form of a user: their direct roles, effective roles and groups.
pub async fn user_dto(state: &AppState, row: UserRow) -> ApiResult<User> {
    let roles = state.store.direct_roles(row.id).await?;
    let effective = state.index.principal(row.id).map(|principal| principal.roles).unwrap_or(roles);
    let groups = state.store.groups_of_user(row.id).await?;
    Ok(User {
        full_name: full_name(&row.first_name, &row.last_name),
        id: row.public_id,
        kind: row.kind,
        username: row.username,
        email: row.email,
        first_name: row.first_name,
        last_name: row.last_name,
        avatar_url: row.avatar_url,
        enabled: row.enabled,
        roles: roles.names(),
        effective_roles: effective.names(),
        groups: groups.into_iter().map(|group| GroupRef { id: group.public_id, name: group.name }).collect(),
        attributes: row.attributes,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub fn full_name(first: &str, last: &str) -> String {
    format!("{first} {last}").trim().to_string()
}

/// Loads a user of the caller's realm by public id; anything else is 404.
pub async fn load_user(state: &AppState, caller: &Caller, id: &str) -> ApiResult<UserRow> {
    let id = parse_id(id, "user")?;
    state.store.user_by_public_id(caller.realm_id, id.as_str()).await.map_err(crate::error::not_found("user"))
}

fn check_names(first: &str, last: &str) -> ApiResult<()> {
    validate::free_text(first, 100).map_err(|detail| ApiError::invalid("firstName", detail))?;
    validate::free_text(last, 100).map_err(|detail| ApiError::invalid("lastName", detail))
}

/// Applies `validate::attributes`; the problem names `attributes.<name>`, or `attributes`
/// when the set as a whole is refused.
fn check_attributes(attributes: &BTreeMap<String, String>) -> ApiResult<()> {
    validate::attributes(attributes).map_err(|error| match error.name {
        Some(name) => ApiError::invalid(&format!("attributes.{name}"), error.message),
        None => ApiError::invalid("attributes", error.message),
    })
}

/// Names of the attributes that `after` adds, removes or gives another value, in name
/// order. Only names: values may be personal data and stay out of the audit log.
fn changed_attribute_names<'a>(
    before: &'a BTreeMap<String, String>,
    after: &'a BTreeMap<String, String>,
) -> Vec<&'a str> {
    let mut names: Vec<&str> = before
        .keys()
        .chain(after.keys())
        .filter(|name| before.get(*name) != after.get(*name))
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The audit detail of a user event: the username and, when some changed, the names of
/// the attributes (never their values).
fn audit_detail(username: &str, attribute_names: &[&str]) -> String {
    if attribute_names.is_empty() {
        username.to_string()
    } else {
        format!("{username}; attributes: {}", attribute_names.join(", "))
    }
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = User), (status = 409, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    require_admin(&caller)?;
    validate::username(&body.username).map_err(|detail| ApiError::invalid("username", detail))?;
    validate::email(&body.email).map_err(|detail| ApiError::invalid("email", detail))?;
    check_names(&body.first_name, &body.last_name)?;
    if let Some(url) = &body.avatar_url {
        validate::avatar_url(url).map_err(|detail| ApiError::invalid("avatarUrl", detail))?;
    }
    check_attributes(&body.attributes)?;
    let password_hash = match &body.password {
        Some(password) => {
            crate::api::refuse_access_token_minting(&caller)?;
            Some(crate::api::passwords::checked_hash(password, &body.username, "password").await?)
        }
        None => None,
    };
    let public_id = new_public_id();
    let now = OffsetDateTime::now_utc();
    let mut mutation = state.store.begin().await?;
    let id = mutation
        .insert_user(&NewUser {
            public_id: public_id.as_str(),
            realm_id: caller.realm_id,
            kind: "user",
            idp_id: None,
            username: &body.username,
            email: &body.email,
            email_key: &validate::email_key(&body.email),
            first_name: &body.first_name,
            last_name: &body.last_name,
            avatar_url: body.avatar_url.as_deref(),
            attributes: &body.attributes,
            now,
        })
        .await?;
    let attribute_names: Vec<&str> = body.attributes.keys().map(String::as_str).collect();
    let detail = audit_detail(&body.username, &attribute_names);
    let mut event = audit_event(&caller, "user.create", format!("user:{public_id}"), detail);
    if let Some(hash) = &password_hash {
        mutation.audit(event).await?;
        event = crate::api::passwords::set_on_create(&mut mutation, &caller, id, public_id.as_str(), hash, now).await?;
    }
    commit(&state, mutation, event).await?;
    let row = state.store.user_by_id(id).await?;
    Ok((StatusCode::CREATED, Json(user_dto(&state, row).await?)))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageQuery), responses((status = 200, body = Page<User>)))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<User>>> {
    require_admin(&caller)?;
    let limit = page_limit(query.limit)?;
    let after = decode_cursor(query.cursor.as_deref())?;
    let rows = state.store.list_users(caller.realm_id, after, limit).await?;
    let count = rows.len();
    let last = rows.last().map(|row| row.id);
    let mut items = Vec::with_capacity(count);
    for row in rows {
        items.push(user_dto(&state, row).await?);
    }
    Ok(Json(Page { items, next_cursor: next_cursor(count, limit, last) }))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = proto::Problem)))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<User>> {
    require_admin(&caller)?;
    let row = load_user(&state, &caller, &id).await?;
    Ok(Json(user_dto(&state, row).await?))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 404, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<User>> {
    require_admin(&caller)?;
    let row = load_user(&state, &caller, &id).await?;
    let mut patch = UserPatch::default();
    if let Some(email) = body.email {
        validate::email(&email).map_err(|detail| ApiError::invalid("email", detail))?;
        let key = validate::email_key(&email);
        patch.email = Some((email, key));
    }
    check_names(body.first_name.as_deref().unwrap_or(""), body.last_name.as_deref().unwrap_or(""))?;
    patch.first_name = body.first_name;
    patch.last_name = body.last_name;
    if let Some(url) = body.avatar_url {
        if url.is_empty() {
            patch.avatar_url = Some(None);
        } else {
            validate::avatar_url(&url).map_err(|detail| ApiError::invalid("avatarUrl", detail))?;
            patch.avatar_url = Some(Some(url));
        }
    }
    if let Some(enabled) = body.enabled {
        refuse_service_account_toggle(&row)?;
        refuse_self_lockout(&caller, &row, enabled)?;
        patch.enabled = Some(enabled);
    }
    if let Some(attributes) = body.attributes {
        check_attributes(&attributes)?;
        patch.attributes = Some(attributes);
    }
    save_patch(&state, &caller, &row, patch, "user.update").await
}

/// A service account is activated and deactivated on its own routes, where
/// deactivating also invalidates its tokens so that activating revives none.
fn refuse_service_account_toggle(row: &UserRow) -> ApiResult<()> {
    if row.kind == crate::api::service_accounts::SERVICE_KIND {
        return Err(ApiError::Conflict {
            field: Some("enabled".to_string()),
            detail: "This is a service account: use POST /api/v1/service-accounts/{id}/deactivate or /activate."
                .to_string(),
        });
    }
    Ok(())
}

/// An administrator cannot disable their own account through the API: that is how
/// realms end up with no way in.
fn refuse_self_lockout(caller: &Caller, row: &UserRow, enabled: bool) -> ApiResult<()> {
    let is_self = caller.principal.as_ref().is_some_and(|principal| principal.id == row.id);
    if is_self && !enabled {
        return Err(ApiError::Conflict {
            field: Some("enabled".to_string()),
            detail: "You cannot disable your own account; ask another administrator.".to_string(),
        });
    }
    Ok(())
}

async fn save_patch(
    state: &AppState,
    caller: &Caller,
    row: &UserRow,
    patch: UserPatch,
    action: &str,
) -> ApiResult<Json<User>> {
    let mut mutation = state.store.begin().await?;
    // Compared inside the transaction, so the audit names what this change changed even
    // when another one landed since `row` was read.
    let attributes_before = match &patch.attributes {
        Some(_) => Some(mutation.user_attributes(row.id).await?),
        None => None,
    };
    mutation.update_user(row.id, &patch, OffsetDateTime::now_utc()).await?;
    let changed = match (&attributes_before, &patch.attributes) {
        (Some(before), Some(after)) => changed_attribute_names(before, after),
        _ => Vec::new(),
    };
    let event = audit_event(caller, action, format!("user:{}", row.public_id), audit_detail(&row.username, &changed));
    commit(state, mutation, event).await?;
    let row = state.store.user_by_id(row.id).await?;
    Ok(Json(user_dto(state, row).await?))
}

async fn set_enabled(state: AppState, caller: Caller, id: String, enabled: bool) -> ApiResult<Json<User>> {
    require_admin(&caller)?;
    let row = load_user(&state, &caller, &id).await?;
    refuse_service_account_toggle(&row)?;
    refuse_self_lockout(&caller, &row, enabled)?;
    let patch = UserPatch { enabled: Some(enabled), ..UserPatch::default() };
    save_patch(&state, &caller, &row, patch, if enabled { "user.enable" } else { "user.disable" }).await
}

#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = proto::Problem)))]
pub async fn disable_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<User>> {
    set_enabled(state, caller, id, false).await
}

#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = proto::Problem)))]
pub async fn enable_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<User>> {
    set_enabled(state, caller, id, true).await
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = proto::Problem)))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require_admin(&caller)?;
    let row = load_user(&state, &caller, &id).await?;
    if caller.principal.as_ref().is_some_and(|principal| principal.id == row.id) {
        return Err(ApiError::Conflict { field: None, detail: "You cannot delete your own account.".to_string() });
    }
    let mut mutation = state.store.begin().await?;
    mutation.delete_user(row.id).await?;
    let event = audit_event(&caller, "user.delete", format!("user:{}", row.public_id), row.username.clone());
    commit(&state, mutation, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Parses a role from a path segment.
pub fn parse_role(name: &str) -> ApiResult<Role> {
    Role::parse(name).ok_or_else(|| {
        ApiError::invalid("role", "must be one of admin, token-manager, create-api-service, workload-launcher")
    })
}

#[utoipa::path(put, path = "/api/v1/users/{id}/roles/{role}", tag = "users",
    params(("id" = String, Path), ("role" = String, Path)), responses((status = 200, body = User)))]
pub async fn grant_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, role)): ApiPath<(String, String)>,
) -> ApiResult<Json<User>> {
    require_admin(&caller)?;
    let row = load_user(&state, &caller, &id).await?;
    let role = parse_role(&role)?;
    if role == Role::Admin && row.kind == crate::api::service_accounts::SERVICE_KIND {
        return Err(ApiError::invalid(
            "role",
            "a service account cannot hold the admin role: service accounts never manage principals or credentials",
        ));
    }
    let mut mutation = state.store.begin().await?;
    mutation.grant_user_role(row.id, role).await?;
    let event = audit_event(&caller, "user.role.grant", format!("user:{}", row.public_id), role.as_str().to_string());
    commit(&state, mutation, event).await?;
    Ok(Json(user_dto(&state, row).await?))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}/roles/{role}", tag = "users",
    params(("id" = String, Path), ("role" = String, Path)), responses((status = 200, body = User)))]
pub async fn revoke_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, role)): ApiPath<(String, String)>,
) -> ApiResult<Json<User>> {
    require_admin(&caller)?;
    let row = load_user(&state, &caller, &id).await?;
    let role = parse_role(&role)?;
    let is_self = caller.principal.as_ref().is_some_and(|principal| principal.id == row.id);
    if is_self && role == Role::Admin {
        return Err(ApiError::Conflict {
            field: Some("role".to_string()),
            detail: "You cannot take the admin role from yourself; ask another administrator.".to_string(),
        });
    }
    let mut mutation = state.store.begin().await?;
    mutation.revoke_user_role(row.id, role).await?;
    let event = audit_event(&caller, "user.role.revoke", format!("user:{}", row.public_id), role.as_str().to_string());
    commit(&state, mutation, event).await?;
    Ok(Json(user_dto(&state, row).await?))
}

#[utoipa::path(get, path = "/api/v1/users/me", tag = "users",
    responses((status = 200, body = User), (status = 401, body = proto::Problem)))]
pub async fn me(State(state): State<AppState>, IdentifiedCaller(caller): IdentifiedCaller) -> ApiResult<Json<User>> {
    let row = caller_user(&state, &caller).await?;
    let mut user = user_dto(&state, row).await?;
    if caller.ceiling.is_bounded() {
        // A run's credential with a ceiling sees itself as it acts: not the roles and
        // groups its user was given after the run started.
        let roles = caller.roles().names();
        let groups = caller.groups();
        user.roles.retain(|role| roles.contains(role));
        user.effective_roles = roles;
        user.groups.retain(|group| groups.contains(&group.name));
    }
    Ok(Json(user))
}

/// The user behind the caller's credential. Admin keys belong to no user.
pub async fn caller_user(state: &AppState, caller: &Caller) -> ApiResult<UserRow> {
    let principal = caller.principal.as_ref().ok_or_else(|| {
        ApiError::Forbidden(
            "This credential is an admin key, which belongs to no user; call with a user's key.".to_string(),
        )
    })?;
    Ok(state.store.user_by_id(principal.id).await?)
}
