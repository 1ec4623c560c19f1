//! Personal API keys: a user makes, lists and revokes their own; admins list and revoke
//! anyone's in the realm.

use crate::api::users::{caller_user, load_user};
use crate::api::{audit_event, commit, new_public_id, owned_active_credential, require_admin};
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::policy::PolicyError;
use keyward_core::{CredentialKind, Secret, validate};
use proto::{ApiKey, CreateApiKey, CreatedApiKey};
use store::{CredentialQuery, CredentialRow, NewCredential, UserRow};
use time::OffsetDateTime;

pub fn api_key_dto(row: CredentialRow) -> ApiKey {
    ApiKey {
        id: row.public_id,
        name: row.name,
        description: row.description,
        prefix: row.secret_prefix,
        audience: row.audience,
        created_at: row.created_at,
        expires_at: row.expires_at,
        last_used_at: row.last_used_at,
    }
}

#[utoipa::path(post, path = "/api/v1/users/me/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = proto::Problem), (status = 409, body = proto::Problem),
        (status = 422, body = proto::Problem)))]
pub async fn create_my_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let user = caller_user(&state, &caller).await?;
    Ok((StatusCode::CREATED, Json(create_key(&state, &caller, &user, body).await?)))
}

/// An administrator issues a key for a user, e.g. the first one, before the user has
/// any way to sign in. The same realm policy applies.
#[utoipa::path(post, path = "/api/v1/users/{id}/api-keys", tag = "api-keys", params(("id" = String, Path)),
    request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn create_user_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    require_admin(&caller)?;
    let user = load_user(&state, &caller, &id).await?;
    Ok((StatusCode::CREATED, Json(create_key(&state, &caller, &user, body).await?)))
}

/// Makes a personal key for `user` under the realm's policy, audited and committed
/// through the change feed. The API and the portal's API-key page both call this.
pub(crate) async fn create_key(
    state: &AppState,
    caller: &Caller,
    user: &UserRow,
    body: CreateApiKey,
) -> ApiResult<CreatedApiKey> {
    crate::api::refuse_access_token_minting(caller)?;
    if user.kind != "user" {
        return Err(ApiError::Forbidden(
            "Service accounts hold service-account tokens, not personal API keys.".to_string(),
        ));
    }
    validate::object_name(&body.name).map_err(|detail| ApiError::invalid("name", detail))?;
    validate::free_text(&body.description, validate::MAX_DESCRIPTION_CHARS)
        .map_err(|detail| ApiError::invalid("description", detail))?;
    if let Some(audience) = &body.audience {
        validate::audience(audience).map_err(|detail| ApiError::invalid("audience", detail))?;
        if !state.config.known_audiences().any(|known| known == audience) {
            let known: Vec<&str> = state.config.known_audiences().collect();
            return Err(ApiError::invalid(
                "audience",
                format!("no header serves this audience; configured audiences: {}", known.join(", ")),
            ));
        }
    }
    let realm = state.realm(caller.realm_id).ok_or(ApiError::NotFound("realm"))?;
    let now = OffsetDateTime::now_utc();
    let mut expires_at =
        realm.user_key_policy.expiry_for_new_key(body.expires_at, now).map_err(|error| match error {
            PolicyError::UserKeysDisabled => ApiError::Forbidden(error.to_string()),
            other => ApiError::invalid("expiresAt", other.to_string()),
        })?;
    // A key never outlives the key that made it, so a stolen key cannot renew itself.
    if let Some(limit) = caller.credential_expires_at.and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok()) {
        if body.expires_at.is_some_and(|requested| requested > limit) {
            return Err(ApiError::invalid(
                "expiresAt",
                "must not be later than the expiry of the key you are calling with",
            ));
        }
        expires_at = expires_at.min(limit);
    }
    let secret = Secret::generate(CredentialKind::UserApiKey, &mut rand_core::UnwrapErr(rand_core::OsRng));
    let public_id = new_public_id();
    let mut mutation = state.store.begin().await?;
    let id = mutation
        .insert_credential(&NewCredential {
            public_id: public_id.as_str(),
            realm_id: caller.realm_id,
            kind: CredentialKind::UserApiKey,
            owner_id: Some(user.id),
            name: &body.name,
            description: &body.description,
            audience: body.audience.as_deref(),
            secret_prefix: &secret.display_prefix(),
            digest: state.pepper.digest(secret.expose()),
            created_at: now,
            created_by: &caller.actor(),
            expires_at: Some(expires_at),
        })
        .await?;
    let event = audit_event(
        caller,
        "api_key.create",
        format!("api_key:{public_id}"),
        format!("user:{} {}", user.public_id, body.name),
    );
    commit(state, mutation, event).await?;
    let row = state.store.credential_by_id(id).await?;
    Ok(CreatedApiKey { key: api_key_dto(row), secret: secret.expose().to_string() })
}

/// The user's active personal keys, never their secrets.
pub(crate) async fn keys_of(state: &AppState, user: &UserRow) -> ApiResult<Vec<ApiKey>> {
    let rows = state
        .store
        .list_credentials(CredentialQuery {
            realm_id: user.realm_id,
            kind: CredentialKind::UserApiKey,
            owner_id: Some(user.id),
            include_revoked: false,
        })
        .await?;
    Ok(rows.into_iter().map(api_key_dto).collect())
}

#[utoipa::path(get, path = "/api/v1/users/me/api-keys", tag = "api-keys", responses((status = 200, body = Vec<ApiKey>)))]
pub async fn list_my_keys(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<ApiKey>>> {
    let user = caller_user(&state, &caller).await?;
    Ok(Json(keys_of(&state, &user).await?))
}

#[utoipa::path(get, path = "/api/v1/users/{id}/api-keys", tag = "api-keys", params(("id" = String, Path)),
    responses((status = 200, body = Vec<ApiKey>), (status = 404, body = proto::Problem)))]
pub async fn list_user_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<ApiKey>>> {
    require_admin(&caller)?;
    let user = load_user(&state, &caller, &id).await?;
    Ok(Json(keys_of(&state, &user).await?))
}

/// Revokes `key_id` if it is a personal key of `owner`; any other id is 404.
pub(crate) async fn revoke(state: &AppState, caller: &Caller, owner: &UserRow, key_id: &str) -> ApiResult<StatusCode> {
    let row = owned_active_credential(state, caller, owner.id, CredentialKind::UserApiKey, key_id, "API key").await?;
    let mut mutation = state.store.begin().await?;
    mutation.revoke_credential(row.id, OffsetDateTime::now_utc()).await?;
    let event = audit_event(caller, "api_key.revoke", format!("api_key:{}", row.public_id), row.name.clone());
    commit(state, mutation, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/users/me/api-keys/{keyId}", tag = "api-keys", params(("keyId" = String, Path)),
    responses((status = 204), (status = 404, body = proto::Problem)))]
pub async fn revoke_my_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(key_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let user = caller_user(&state, &caller).await?;
    revoke(&state, &caller, &user, &key_id).await
}

#[utoipa::path(delete, path = "/api/v1/users/{id}/api-keys/{keyId}", tag = "api-keys",
    params(("id" = String, Path), ("keyId" = String, Path)), responses((status = 204), (status = 404, body = proto::Problem)))]
pub async fn revoke_user_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, key_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    require_admin(&caller)?;
    let user = load_user(&state, &caller, &id).await?;
    revoke(&state, &caller, &user, &key_id).await
}
