//! API tokens: signed JWTs that administrators and API Token Managers make for a user's
//! scripts, each with a record (name, description, expiry, IP filter, enabled switch)
//! that decides on every request whether the JWT still works.

use crate::api::users::load_user;
use crate::api::{
    audit_event, commit, decode_cursor, new_public_id, next_cursor, page_limit, parse_id, refuse_access_token_minting,
};
use crate::api_tokens::{Jti, Minting, mint};
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::{AppState, RealmInfo};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::ipfilter::{entry_text, parse_filter};
use keyward_core::policy::ApiTokenPolicy;
use keyward_core::{Role, RoleSet, validate};
use proto::{ApiToken, ApiTokenQuery, CreateApiToken, IssuedApiToken, Page, UpdateApiToken, UpdatedApiToken};
use std::sync::Arc;
use store::{ApiTokenPatch, ApiTokenRow, NewApiToken, StoreError, UserRow};
use time::OffsetDateTime;

const WHAT: &str = "API token";

pub fn api_token_dto(row: ApiTokenRow, now: OffsetDateTime) -> ApiToken {
    let status = if row.expires_at <= now {
        "expired"
    } else if !row.enabled {
        "disabled"
    } else {
        "active"
    };
    ApiToken {
        id: row.public_id,
        user_id: row.owner_public_id,
        username: row.owner_username,
        name: row.name,
        description: row.description,
        filter: row.filter,
        enabled: row.enabled,
        status: status.to_string(),
        expires_at: row.expires_at,
        generation: row.generation,
        created_at: row.created_at,
        created_by: row.created_by,
        updated_at: row.updated_at,
        updated_by: row.updated_by,
        last_used_at: row.last_used_at,
    }
}

/// Admins and API Token Managers manage API tokens.
fn require_token_manager(caller: &Caller) -> ApiResult<()> {
    if caller.has_role(Role::Admin) || caller.has_role(Role::TokenManager) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Managing API tokens needs the admin or token-manager role; ask an administrator to grant it.".to_string(),
        ))
    }
}

/// Changes that hand out or reshape a token need a credential of the caller's own: not
/// an access token or another API token.
fn require_manager_for_change(caller: &Caller) -> ApiResult<()> {
    require_token_manager(caller)?;
    refuse_access_token_minting(caller)
}

/// No privilege escalation through tokens: a token manager may act for a user only if
/// the manager holds every privilege that user holds now: each of their roles, each of
/// their groups (groups carry roles, and privileges on infrastructures and API services),
/// and no API service of their own (its owner holds everything on it). Admins may act for
/// anyone. Read from the store inside the caller's mutation (mutations are serialised, so
/// nothing changes before it commits); a user who is gone is not acted for.
///
/// Answers the privileges a JWT the caller mints now may act within
/// ([`crate::api_tokens::Bounds`], as stored): the user's roles and groups now (the user
/// owns no API service then), or `None` when the caller is an admin or the user. Checked on every use, so a manager who kept a copy of the
/// JWT does not gain what the user is granted later.
async fn check_may_act_for(
    mutation: &mut store::Mutation,
    caller: &Caller,
    user_id: i64,
    username: &str,
) -> ApiResult<Option<String>> {
    let principal = mutation.load_principal(user_id).await?.ok_or(ApiError::NotFound("user"))?;
    if caller.has_role(Role::Admin) {
        return Ok(None);
    }
    let refuse = |what: String| {
        Err(ApiError::Forbidden(format!(
            "{username} {what}; a token for them would act with those privileges. Ask an administrator to manage it."
        )))
    };
    let missing = principal.roles.without(caller.roles());
    if missing != RoleSet::EMPTY {
        return refuse(format!("holds roles you do not ({})", missing.names().join(", ")));
    }
    let own_groups = caller.groups();
    let missing: Vec<&str> =
        principal.groups.iter().filter(|group| !own_groups.contains(group)).map(String::as_str).collect();
    if !missing.is_empty() {
        // Counted, not named: the refusal must not tell a manager what groups exist.
        return refuse(format!("is in {} group(s) you are not in", missing.len()));
    }
    let is_self = caller.principal.as_ref().is_some_and(|own| own.id == user_id);
    if is_self {
        // One's own token gains nothing one does not hold oneself.
        return Ok(None);
    }
    if mutation.owns_api_services(user_id).await? {
        return refuse("owns API services".to_string());
    }
    Ok(Some(crate::api_tokens::Bounds { roles: principal.roles, groups: principal.groups }.to_json()))
}

/// API tokens are for people; service accounts hold service-account tokens.
fn require_person(user: &UserRow) -> ApiResult<()> {
    if user.kind == crate::api::service_accounts::SERVICE_KIND {
        return Err(ApiError::invalid(
            "userId",
            "is a service account; service accounts hold service-account tokens \
             (POST /api/v1/service-accounts/{id}/tokens), not API tokens",
        ));
    }
    Ok(())
}

/// The filter as stored: each entry parsed and written in canonical form. A bad entry
/// answers 400 naming it (it is not an address or range at all, rather than a value
/// that breaks a rule).
fn checked_filter(entries: &[String]) -> ApiResult<Vec<String>> {
    let parsed = parse_filter(entries).map_err(|error| {
        let position = entries.iter().position(|entry| *entry == error.entry);
        let field = position.map_or("filter".to_string(), |position| format!("filter[{position}]"));
        let entry = if error.entry.is_empty() { String::new() } else { format!("{:?} ", error.entry) };
        ApiError::BadRequest(format!("{field}: {entry}{}", error.message))
    })?;
    Ok(parsed.iter().map(entry_text).collect())
}

fn check_name_and_description(name: &str, description: &str) -> ApiResult<()> {
    validate::object_name(name).map_err(|detail| ApiError::invalid("name", detail))?;
    validate::free_text(description, validate::MAX_DESCRIPTION_CHARS)
        .map_err(|detail| ApiError::invalid("description", detail))
}

fn checked_expiry(requested: Option<OffsetDateTime>, now: OffsetDateTime) -> ApiResult<OffsetDateTime> {
    ApiTokenPolicy::expiry(requested, now).map_err(|error| ApiError::invalid("expiresAt", error.to_string()))
}

fn conflict_names_the_name(error: StoreError, username: &str) -> ApiError {
    match error {
        StoreError::Conflict { field } => ApiError::Conflict {
            field: Some(field.to_string()),
            detail: format!("{username} already has an API token with this {field}; choose another."),
        },
        other => other.into(),
    }
}

fn realm_of(state: &AppState, caller: &Caller) -> ApiResult<Arc<RealmInfo>> {
    state.realm(caller.realm_id).ok_or(ApiError::NotFound("realm"))
}

/// Makes sure the realm can sign before a mutation starts: creating its first key is a
/// mutation of its own, and mutations do not nest.
async fn ready_to_sign(state: &AppState, realm: &RealmInfo) -> ApiResult<()> {
    crate::oidc::keys::ensure_realm_key(state, realm.id, &realm.name)
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))
}

async fn sign(
    state: &AppState,
    realm: &RealmInfo,
    record: &str,
    generation: i64,
    user: &UserRow,
    expires_at: OffsetDateTime,
    jti: &Jti,
) -> ApiResult<String> {
    mint(
        state,
        Minting {
            realm,
            record_public_id: record,
            generation,
            user_public_id: &user.public_id,
            username: &user.username,
            expires_at,
            jti: &jti.value,
        },
    )
    .await
    .map_err(|error| match error {
        // Every key was removed since `ready_to_sign`: rare, and gone once one is made.
        crate::oidc::tokens::SignError::NoKey => ApiError::Unavailable,
        other => ApiError::Internal(other.to_string()),
    })
}

fn describe_filter(filter: &[String]) -> String {
    if filter.is_empty() { "anywhere".to_string() } else { filter.join(" ") }
}

#[utoipa::path(post, path = "/api/v1/api-tokens", tag = "api-tokens", request_body = CreateApiToken,
    responses((status = 201, body = IssuedApiToken), (status = 400, body = proto::Problem), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 409, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateApiToken>,
) -> ApiResult<(StatusCode, Json<IssuedApiToken>)> {
    require_manager_for_change(&caller)?;
    let user = load_user(&state, &caller, &body.user_id).await?;
    require_person(&user)?;
    check_name_and_description(&body.name, &body.description)?;
    let filter = checked_filter(&body.filter)?;
    let now = OffsetDateTime::now_utc();
    let expires_at = checked_expiry(body.expires_at, now)?;
    let realm = realm_of(&state, &caller)?;
    ready_to_sign(&state, &realm).await?;
    let public_id = new_public_id();
    let jti = Jti::generate(&state);
    let mut mutation = state.store.begin().await?;
    let bound = check_may_act_for(&mut mutation, &caller, user.id, &user.username).await?;
    mutation
        .insert_api_token(&NewApiToken {
            public_id: public_id.as_str(),
            realm_id: realm.id,
            owner_id: user.id,
            name: &body.name,
            description: &body.description,
            filter: &filter,
            enabled: body.enabled,
            digest: jti.digest,
            expires_at,
            created_at: now,
            created_by: &caller.actor(),
            bound_privileges: bound.as_deref(),
        })
        .await
        .map_err(|error| conflict_names_the_name(error, &user.username))?;
    let token = sign(&state, &realm, public_id.as_str(), 1, &user, expires_at, &jti).await?;
    let event = audit_event(
        &caller,
        "api_token.create",
        format!("api_token:{public_id}"),
        format!(
            "user:{} ({}) name={:?} expires={} filter={} enabled={}",
            user.public_id,
            user.username,
            body.name,
            expires_at.unix_timestamp(),
            describe_filter(&filter),
            body.enabled
        ),
    );
    // The record is read inside the mutation: once it commits, nothing can fail between
    // the commit and the answer that carries the only copy of the JWT.
    let row = mutation.api_token_for_update(realm.id, public_id.as_str()).await?;
    commit(&state, mutation, event).await?;
    Ok((StatusCode::CREATED, Json(IssuedApiToken { record: api_token_dto(row, now), token })))
}

#[utoipa::path(get, path = "/api/v1/api-tokens", tag = "api-tokens", params(ApiTokenQuery),
    responses((status = 200, body = Page<ApiToken>), (status = 403, body = proto::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ApiTokenQuery>,
) -> ApiResult<Json<Page<ApiToken>>> {
    require_token_manager(&caller)?;
    let limit = page_limit(query.limit)?;
    let after = decode_cursor(query.cursor.as_deref())?;
    let owner = match &query.user_id {
        Some(user_id) => Some(load_user(&state, &caller, user_id).await?.id),
        None => None,
    };
    let rows = state.store.list_api_tokens(caller.realm_id, owner, after, limit).await?;
    let (count, last) = (rows.len(), rows.last().map(|row| row.id));
    let now = OffsetDateTime::now_utc();
    let items = rows.into_iter().map(|row| api_token_dto(row, now)).collect();
    Ok(Json(Page { items, next_cursor: next_cursor(count, limit, last) }))
}

/// The caller's realm's live record `id`; anything else is 404.
async fn load(state: &AppState, caller: &Caller, id: &str) -> ApiResult<ApiTokenRow> {
    let id = parse_id(id, WHAT)?;
    state.store.api_token_by_public_id(caller.realm_id, id.as_str()).await.map_err(crate::error::not_found(WHAT))
}

/// The same, read inside `mutation` so that the edit is computed from the row it replaces.
async fn load_for_update(mutation: &mut store::Mutation, caller: &Caller, id: &str) -> ApiResult<ApiTokenRow> {
    let id = parse_id(id, WHAT)?;
    mutation.api_token_for_update(caller.realm_id, id.as_str()).await.map_err(crate::error::not_found(WHAT))
}

/// Starts a change of record `id`: the caller must manage tokens, the record must be
/// live in the caller's realm (read inside the mutation), and its user's roles must all
/// be the caller's.
async fn begin_change(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Change> {
    require_manager_for_change(caller)?;
    let mut mutation = state.store.begin().await?;
    let before = load_for_update(&mut mutation, caller, id).await?;
    let bound = check_may_act_for(&mut mutation, caller, before.owner_id, &before.owner_username).await?;
    Ok(Change { mutation, before, bound })
}

/// A change of a record begun by [`begin_change`].
struct Change {
    mutation: store::Mutation,
    before: ApiTokenRow,
    /// What a JWT minted by this change may act within (`check_may_act_for`).
    bound: Option<String>,
}

/// An edit that keeps every field of `before`; callers change what they change.
fn unchanged<'a>(before: &'a ApiTokenRow, actor: &'a str, now: OffsetDateTime) -> ApiTokenPatch<'a> {
    ApiTokenPatch {
        owner_id: before.owner_id,
        name: &before.name,
        description: &before.description,
        filter: &before.filter,
        enabled: before.enabled,
        expires_at: before.expires_at,
        new_digest: None,
        updated_at: now,
        updated_by: actor,
        // The JWT stays the same, and so do the privileges it may act within.
        bound_privileges: before.bound_privileges.as_deref(),
    }
}

#[utoipa::path(get, path = "/api/v1/api-tokens/{id}", tag = "api-tokens", params(("id" = String, Path)),
    responses((status = 200, body = ApiToken), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiToken>> {
    require_token_manager(&caller)?;
    let row = load(&state, &caller, &id).await?;
    Ok(Json(api_token_dto(row, OffsetDateTime::now_utc())))
}

/// What an edit changes, for the audit log.
fn changed_fields(before: &ApiTokenRow, after: &ApiTokenPatch<'_>, new_user: Option<&UserRow>) -> String {
    let mut changes = Vec::new();
    if let Some(user) = new_user {
        changes.push(format!("user={} ({})", user.public_id, user.username));
    }
    if before.name != after.name {
        changes.push(format!("name={:?}", after.name));
    }
    if before.description != after.description {
        changes.push("description".to_string());
    }
    if before.filter != after.filter {
        changes.push(format!("filter={}", describe_filter(after.filter)));
    }
    if before.enabled != after.enabled {
        changes.push(format!("enabled={}", after.enabled));
    }
    if before.expires_at != after.expires_at {
        changes.push(format!("expires={}", after.expires_at.unix_timestamp()));
    }
    if changes.is_empty() { "no change".to_string() } else { changes.join(" ") }
}

#[utoipa::path(patch, path = "/api/v1/api-tokens/{id}", tag = "api-tokens", params(("id" = String, Path)),
    request_body = UpdateApiToken,
    responses((status = 200, body = UpdatedApiToken), (status = 400, body = proto::Problem), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 409, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateApiToken>,
) -> ApiResult<Json<UpdatedApiToken>> {
    require_manager_for_change(&caller)?;
    // Everything about the request that does not depend on the row is checked first.
    let new_user = match &body.user_id {
        Some(user_id) => Some(load_user(&state, &caller, user_id).await?),
        None => None,
    };
    if let Some(user) = &new_user {
        require_person(user)?;
    }
    let filter = body.filter.as_deref().map(checked_filter).transpose()?;
    let now = OffsetDateTime::now_utc();
    let expires_at = body.expires_at.map(|at| checked_expiry(Some(at), now)).transpose()?;
    let realm = realm_of(&state, &caller)?;
    if new_user.is_some() {
        ready_to_sign(&state, &realm).await?;
    }
    let Change { mut mutation, before, .. } = begin_change(&state, &caller, &id).await?;
    let new_bound = match &new_user {
        Some(user) => Some(check_may_act_for(&mut mutation, &caller, user.id, &user.username).await?),
        None => None,
    };
    let name = body.name.as_deref().unwrap_or(&before.name);
    let description = body.description.as_deref().unwrap_or(&before.description);
    check_name_and_description(name, description)?;
    // A JWT names its user; giving the record to someone else ends the old JWT.
    let new_user = new_user.filter(|user| user.id != before.owner_id);
    let jti = new_user.as_ref().map(|_| Jti::generate(&state));
    let actor = caller.actor();
    // A new JWT (for another user) acts within what the caller may give it now.
    let bound_privileges = match (&new_user, &new_bound) {
        (Some(_), Some(bound)) => bound.as_deref(),
        _ => before.bound_privileges.as_deref(),
    };
    let patch = ApiTokenPatch {
        owner_id: new_user.as_ref().map_or(before.owner_id, |user| user.id),
        name,
        description,
        filter: filter.as_deref().unwrap_or(&before.filter),
        enabled: body.enabled.unwrap_or(before.enabled),
        expires_at: expires_at.unwrap_or(before.expires_at),
        new_digest: jti.as_ref().map(|jti| jti.digest),
        updated_at: now,
        updated_by: &actor,
        bound_privileges,
    };
    let owner_name = new_user.as_ref().map_or(before.owner_username.as_str(), |user| user.username.as_str());
    mutation.update_api_token(before.id, &patch).await.map_err(|error| match error {
        StoreError::NotFound => ApiError::NotFound(WHAT),
        other => conflict_names_the_name(other, owner_name),
    })?;
    let token = match (&new_user, &jti) {
        (Some(user), Some(jti)) => {
            Some(sign(&state, &realm, &before.public_id, before.generation + 1, user, patch.expires_at, jti).await?)
        }
        _ => None,
    };
    let detail = changed_fields(&before, &patch, new_user.as_ref());
    let event = audit_event(&caller, "api_token.update", format!("api_token:{}", before.public_id), detail);
    let row = mutation.api_token_for_update(caller.realm_id, &before.public_id).await?;
    commit(&state, mutation, event).await?;
    Ok(Json(UpdatedApiToken { record: api_token_dto(row, now), token }))
}

#[utoipa::path(post, path = "/api/v1/api-tokens/{id}/unlock", tag = "api-tokens", params(("id" = String, Path)),
    responses((status = 200, body = IssuedApiToken), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn unlock(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<IssuedApiToken>> {
    require_manager_for_change(&caller)?;
    let realm = realm_of(&state, &caller)?;
    ready_to_sign(&state, &realm).await?;
    let now = OffsetDateTime::now_utc();
    let Change { mut mutation, before, bound } = begin_change(&state, &caller, &id).await?;
    let user = mutation.user_by_id(before.owner_id).await?;
    let jti = Jti::generate(&state);
    let actor = caller.actor();
    // The new JWT acts within what the caller may give it now.
    let patch = ApiTokenPatch {
        new_digest: Some(jti.digest),
        bound_privileges: bound.as_deref(),
        ..unchanged(&before, &actor, now)
    };
    mutation.update_api_token(before.id, &patch).await?;
    let generation = before.generation + 1;
    let token = sign(&state, &realm, &before.public_id, generation, &user, before.expires_at, &jti).await?;
    let event = audit_event(
        &caller,
        "api_token.unlock",
        format!("api_token:{}", before.public_id),
        format!("generation {generation}; every earlier JWT of this token stops working"),
    );
    let row = mutation.api_token_for_update(caller.realm_id, &before.public_id).await?;
    commit(&state, mutation, event).await?;
    Ok(Json(IssuedApiToken { record: api_token_dto(row, now), token }))
}

#[utoipa::path(post, path = "/api/v1/api-tokens/{id}/expire", tag = "api-tokens", params(("id" = String, Path)),
    responses((status = 200, body = ApiToken), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn expire(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiToken>> {
    let now = OffsetDateTime::now_utc();
    let Change { mut mutation, before, .. } = begin_change(&state, &caller, &id).await?;
    let actor = caller.actor();
    // Expiring an expired token keeps its first expiry.
    let expires_at = before.expires_at.min(now);
    let patch = ApiTokenPatch { expires_at, ..unchanged(&before, &actor, now) };
    mutation.update_api_token(before.id, &patch).await?;
    let event = audit_event(
        &caller,
        "api_token.expire",
        format!("api_token:{}", before.public_id),
        format!("expired at {}", expires_at.unix_timestamp()),
    );
    let row = mutation.api_token_for_update(caller.realm_id, &before.public_id).await?;
    commit(&state, mutation, event).await?;
    Ok(Json(api_token_dto(row, now)))
}

#[utoipa::path(delete, path = "/api/v1/api-tokens/{id}", tag = "api-tokens", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let now = OffsetDateTime::now_utc();
    let Change { mut mutation, before, .. } = begin_change(&state, &caller, &id).await?;
    mutation.revoke_credential(before.id, now).await?;
    let event =
        audit_event(&caller, "api_token.delete", format!("api_token:{}", before.public_id), before.name.clone());
    commit(&state, mutation, event).await?;
    Ok(StatusCode::NO_CONTENT)
}
