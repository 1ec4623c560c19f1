//! The realms API: create, list, read, update, disable and enable realms. Admin keys
//! only. Admin keys of the default realm manage every realm, as Keycloak's master realm
//! does; an admin key of any other realm sees only its own, and every other name answers
//! the same 404 as a name that does not exist.

use crate::api::{audit_event, commit, decode_cursor, next_cursor, page_limit};
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::CredentialKind;
use keyward_core::jwt::{SigningAlg, TokenSettings};
use keyward_core::validate;
use proto::{CreateRealm, Page, PageQuery, Realm, UpdateRealm};
use store::{ChangeEntity, RealmPatch, RealmRow};
use time::{Duration, OffsetDateTime};

pub const LIFETIME_SECS: std::ops::RangeInclusive<i64> = 10..=86_400;

fn realm_dto(row: RealmRow) -> Realm {
    Realm {
        name: row.name,
        display_name: row.display_name,
        enabled: row.enabled,
        signing_alg: row.token_settings.signing_alg.as_str().to_string(),
        access_token_lifetime_seconds: row.token_settings.access_token_lifetime.whole_seconds(),
        user_api_keys_allowed: row.user_key_policy.allowed,
        user_api_key_max_lifetime_days: row.user_key_policy.max_lifetime.whole_days(),
        service_token_max_lifetime_days: row.service_token_policy.max_lifetime.whole_days(),
        created_at: row.created_at,
    }
}

/// Refuses every caller but an admin key: realms are above any one user's roles.
fn require_admin_key(caller: &Caller) -> ApiResult<()> {
    if caller.kind == CredentialKind::AdminKey {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "Realm management needs an admin key (create one with `keyward admin-key create`); users and service \
         accounts cannot manage realms, even with the admin role."
            .to_string(),
    ))
}

/// Whether the caller holds an admin key of the default realm, which manages every realm.
fn manages_every_realm(state: &AppState, caller: &Caller) -> bool {
    caller.kind == CredentialKind::AdminKey && caller.realm_name == state.config.default_realm
}

/// The realm `name`, if the caller may see it. A realm the caller may not see answers
/// exactly like one that does not exist, before any lookup.
pub async fn visible_realm(state: &AppState, caller: &Caller, name: &str) -> ApiResult<RealmRow> {
    require_admin_key(caller)?;
    if !manages_every_realm(state, caller) && name != caller.realm_name {
        return Err(ApiError::NotFound("realm"));
    }
    state.store.realm_by_name(name).await.map_err(crate::error::not_found("realm"))
}

fn parse_signing_alg(text: &str) -> ApiResult<SigningAlg> {
    SigningAlg::parse(text).ok_or_else(|| ApiError::invalid("signingAlg", "must be ES256, RS256 or EdDSA"))
}

fn parse_lifetime(seconds: i64) -> ApiResult<Duration> {
    if LIFETIME_SECS.contains(&seconds) {
        Ok(Duration::seconds(seconds))
    } else {
        Err(ApiError::invalid("accessTokenLifetimeSeconds", "must be between 10 and 86400"))
    }
}

/// A new realm's token settings: what the body asks for, defaults for the rest.
fn new_token_settings(body: &CreateRealm) -> ApiResult<TokenSettings> {
    let defaults = TokenSettings::default();
    Ok(TokenSettings {
        signing_alg: body.signing_alg.as_deref().map(parse_signing_alg).transpose()?.unwrap_or(defaults.signing_alg),
        access_token_lifetime: body
            .access_token_lifetime_seconds
            .map(parse_lifetime)
            .transpose()?
            .unwrap_or(defaults.access_token_lifetime),
        ..defaults
    })
}

/// The settings a change sets, for the audit log.
fn settings_detail(patch: &RealmPatch) -> String {
    let mut parts = Vec::new();
    if let Some(display_name) = &patch.display_name {
        parts.push(format!("displayName={display_name:?}"));
    }
    if let Some(alg) = patch.signing_alg {
        parts.push(format!("signingAlg={}", alg.as_str()));
    }
    if let Some(lifetime) = patch.access_token_lifetime {
        parts.push(format!("accessTokenLifetimeSeconds={}", lifetime.whole_seconds()));
    }
    parts.join(" ")
}

fn check_display_name(text: &str) -> ApiResult<()> {
    validate::free_text(text, validate::MAX_NAME_CHARS).map_err(|detail| ApiError::invalid("displayName", detail))
}

#[utoipa::path(post, path = "/api/v1/realms", tag = "realms", request_body = CreateRealm,
    responses((status = 201, body = Realm), (status = 403, body = proto::Problem), (status = 409, body = proto::Problem),
        (status = 422, body = proto::Problem)))]
pub async fn create_realm(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateRealm>,
) -> ApiResult<(StatusCode, Json<Realm>)> {
    require_admin_key(&caller)?;
    if !manages_every_realm(&state, &caller) {
        return Err(ApiError::Forbidden(format!(
            "Only admin keys of the {0:?} realm can create realms (`keyward admin-key create --realm {0}`).",
            state.config.default_realm
        )));
    }
    validate::realm_name(&body.name).map_err(|detail| ApiError::invalid("name", detail))?;
    check_display_name(&body.display_name)?;
    let tokens = new_token_settings(&body)?;
    let mut mutation = state.store.begin().await?;
    let id = mutation.insert_realm(&body.name, &body.display_name, tokens, OffsetDateTime::now_utc()).await.map_err(
        |error| match error {
            store::StoreError::Conflict { .. } => ApiError::Conflict {
                field: Some("name".to_string()),
                detail: format!("A realm named {:?} exists; choose another name.", body.name),
            },
            other => other.into(),
        },
    )?;
    mutation.changed(ChangeEntity::Realm, id).await?;
    let detail = settings_detail(&RealmPatch {
        display_name: Some(body.display_name.clone()),
        signing_alg: Some(tokens.signing_alg),
        access_token_lifetime: Some(tokens.access_token_lifetime),
    });
    commit(&state, mutation, audit_event(&caller, "realm.create", format!("realm:{}", body.name), detail)).await?;
    let row = state.store.realm_by_id(id).await?;
    Ok((StatusCode::CREATED, Json(realm_dto(row))))
}

#[utoipa::path(get, path = "/api/v1/realms", tag = "realms", params(PageQuery),
    responses((status = 200, body = Page<Realm>), (status = 403, body = proto::Problem)))]
pub async fn list_realms(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Realm>>> {
    require_admin_key(&caller)?;
    let limit = page_limit(query.limit)?;
    let after = decode_cursor(query.cursor.as_deref())?;
    let rows = if manages_every_realm(&state, &caller) {
        state.store.list_realms_page(after, limit).await?
    } else {
        let own = state.store.realm_by_id(caller.realm_id).await?;
        if own.id > after { vec![own] } else { Vec::new() }
    };
    let (count, last) = (rows.len(), rows.last().map(|row| row.id));
    let items = rows.into_iter().map(realm_dto).collect();
    Ok(Json(Page { items, next_cursor: next_cursor(count, limit, last) }))
}

#[utoipa::path(get, path = "/api/v1/realms/{name}", tag = "realms", params(("name" = String, Path)),
    responses((status = 200, body = Realm), (status = 404, body = proto::Problem)))]
pub async fn get_realm(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Realm>> {
    Ok(Json(realm_dto(visible_realm(&state, &caller, &name).await?)))
}

#[utoipa::path(patch, path = "/api/v1/realms/{name}", tag = "realms", params(("name" = String, Path)),
    request_body = UpdateRealm,
    responses((status = 200, body = Realm), (status = 404, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn update_realm(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateRealm>,
) -> ApiResult<Json<Realm>> {
    let realm = visible_realm(&state, &caller, &name).await?;
    if let Some(display_name) = &body.display_name {
        check_display_name(display_name)?;
    }
    let patch = RealmPatch {
        signing_alg: body.signing_alg.as_deref().map(parse_signing_alg).transpose()?,
        access_token_lifetime: body.access_token_lifetime_seconds.map(parse_lifetime).transpose()?,
        display_name: body.display_name,
    };
    let mut mutation = state.store.begin().await?;
    mutation.update_realm(realm.id, &patch).await?;
    let detail = settings_detail(&patch);
    save(&state, &caller, mutation, &realm, "realm.update", detail).await
}

#[utoipa::path(post, path = "/api/v1/realms/{name}/disable", tag = "realms", params(("name" = String, Path)),
    responses((status = 200, body = Realm), (status = 404, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn disable_realm(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Realm>> {
    set_enabled(state, caller, name, false).await
}

#[utoipa::path(post, path = "/api/v1/realms/{name}/enable", tag = "realms", params(("name" = String, Path)),
    responses((status = 200, body = Realm), (status = 404, body = proto::Problem)))]
pub async fn enable_realm(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Realm>> {
    set_enabled(state, caller, name, true).await
}

async fn set_enabled(state: AppState, caller: Caller, name: String, enabled: bool) -> ApiResult<Json<Realm>> {
    let realm = visible_realm(&state, &caller, &name).await?;
    if !enabled && realm.name == state.config.default_realm {
        return Err(ApiError::Conflict {
            field: None,
            detail: format!(
                "The {:?} realm cannot be disabled: its admin keys are the ones that manage realms, so disabling it \
                 would lock out realm management.",
                realm.name
            ),
        });
    }
    let mut mutation = state.store.begin().await?;
    mutation.set_realm_enabled(realm.id, enabled).await?;
    let action = if enabled { "realm.enable" } else { "realm.disable" };
    save(&state, &caller, mutation, &realm, action, String::new()).await
}

/// Records the realm change, commits with its audit event, and answers with the realm
/// as it is now.
async fn save(
    state: &AppState,
    caller: &Caller,
    mut mutation: store::Mutation,
    realm: &RealmRow,
    action: &str,
    detail: String,
) -> ApiResult<Json<Realm>> {
    mutation.changed(ChangeEntity::Realm, realm.id).await?;
    commit(state, mutation, audit_event(caller, action, format!("realm:{}", realm.name), detail)).await?;
    Ok(Json(realm_dto(state.store.realm_by_id(realm.id).await?)))
}
