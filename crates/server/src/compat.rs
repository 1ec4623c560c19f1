//! Compatibility routes that answer exactly as the platforms' existing clients expect.

use crate::api::users::{caller_user, full_name};
use crate::error::ApiResult;
use crate::extract::IdentifiedCaller;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use proto::V4UserSelf;

/// `GET /v4/users/self` and `GET /api/user/me`: the calling user.
#[utoipa::path(get, path = "/v4/users/self", tag = "compatibility",
    responses((status = 200, body = V4UserSelf), (status = 401, body = proto::Problem)))]
pub async fn users_self(
    State(state): State<AppState>,
    IdentifiedCaller(caller): IdentifiedCaller,
) -> ApiResult<Json<V4UserSelf>> {
    let user = caller_user(&state, &caller).await?;
    Ok(Json(V4UserSelf {
        full_name: full_name(&user.first_name, &user.last_name),
        first_name: user.first_name,
        last_name: user.last_name,
        user_name: user.username,
        email: user.email,
        avatar_url: user.avatar_url,
        id: user.public_id,
    }))
}

#[utoipa::path(get, path = "/api/user/me", tag = "compatibility",
    responses((status = 200, body = V4UserSelf), (status = 401, body = proto::Problem)))]
pub async fn api_user_me(state: State<AppState>, caller: IdentifiedCaller) -> ApiResult<Json<V4UserSelf>> {
    users_self(state, caller).await
}

// ---- /v4/serviceAccounts: the platform clients' service-account routes ----

use crate::api::service_accounts::{self as accounts, load_account, require_account_manager};
use crate::authn::Caller;
use crate::extract::{ApiJson, ApiPath};
use proto::{CreateServiceAccount, CreateServiceToken, V4ServiceAccount, V4ServiceAccountCreated, V4ServiceToken};
use store::{CredentialRow, UserRow};
use time::OffsetDateTime;

fn v4_account(row: UserRow) -> V4ServiceAccount {
    V4ServiceAccount {
        idp_id: accounts::idp_id(&row),
        email: row.email,
        id: row.public_id,
        user_name: row.username.clone(),
        username: row.username,
    }
}

fn v4_token(token: CredentialRow, account: &UserRow, secret: Option<String>) -> V4ServiceToken {
    let now = OffsetDateTime::now_utc();
    V4ServiceToken {
        is_valid: accounts::token_is_valid(&token, account, now),
        created_at: token.created_at,
        // Every service-account token is issued with an expiry.
        expires_at: token.expires_at.unwrap_or(token.created_at),
        name: token.name,
        service_account_idp_id: accounts::idp_id(account),
        token: secret,
    }
}

#[utoipa::path(post, path = "/v4/serviceAccounts", tag = "compatibility", request_body = CreateServiceAccount,
    responses((status = 200, body = V4ServiceAccountCreated), (status = 403, body = proto::Problem),
        (status = 409, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn v4_create_service_account(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateServiceAccount>,
) -> ApiResult<Json<V4ServiceAccountCreated>> {
    let row = accounts::create_account(&state, &caller, &body).await?;
    Ok(Json(V4ServiceAccountCreated {
        email: row.email.clone(),
        idp_id: accounts::idp_id(&row),
        id: row.public_id,
        user_name: row.username,
    }))
}

/// Every service account of the realm, oldest first.
#[utoipa::path(get, path = "/v4/serviceAccounts", tag = "compatibility",
    responses((status = 200, body = Vec<V4ServiceAccount>), (status = 403, body = proto::Problem)))]
pub async fn v4_list_service_accounts(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<V4ServiceAccount>>> {
    const PAGE: i64 = 500;
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let rows = accounts::list_accounts(&state, &caller, after, PAGE).await?;
        let full = rows.len() as i64 == PAGE;
        after = rows.last().map_or(after, |row| row.id);
        all.extend(rows.into_iter().map(v4_account));
        if !full {
            return Ok(Json(all));
        }
    }
}

#[utoipa::path(post, path = "/v4/serviceAccounts/{idpId}/tokens", tag = "compatibility",
    params(("idpId" = String, Path)), request_body = CreateServiceToken,
    responses((status = 200, body = V4ServiceToken), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn v4_create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(idp_id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateServiceToken>,
) -> ApiResult<Json<V4ServiceToken>> {
    require_account_manager(&caller)?;
    let account = load_account(&state, &caller, &idp_id).await?;
    let (row, secret) = accounts::issue_token(&state, &caller, &account, &body).await?;
    Ok(Json(v4_token(row, &account, Some(secret.expose().to_string()))))
}

#[utoipa::path(get, path = "/v4/serviceAccounts/{idpId}/tokens", tag = "compatibility",
    params(("idpId" = String, Path)),
    responses((status = 200, body = Vec<V4ServiceToken>), (status = 404, body = proto::Problem)))]
pub async fn v4_list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(idp_id): ApiPath<String>,
) -> ApiResult<Json<Vec<V4ServiceToken>>> {
    require_account_manager(&caller)?;
    let account = load_account(&state, &caller, &idp_id).await?;
    let tokens = accounts::tokens_of(&state, &account).await?;
    Ok(Json(tokens.into_iter().map(|token| v4_token(token, &account, None)).collect()))
}

#[utoipa::path(post, path = "/v4/serviceAccounts/{idpId}/tokens/{name}/invalidate", tag = "compatibility",
    params(("idpId" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = V4ServiceToken), (status = 404, body = proto::Problem)))]
pub async fn v4_invalidate_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((idp_id, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<V4ServiceToken>> {
    require_account_manager(&caller)?;
    let account = load_account(&state, &caller, &idp_id).await?;
    let token = state
        .store
        .active_credential_named(account.id, keyward_core::CredentialKind::ServiceAccountToken, &name)
        .await
        .map_err(crate::error::not_found("valid token with that name"))?;
    accounts::invalidate(&state, &caller, &account, &token).await?;
    let token = state.store.credential_by_id(token.id).await?;
    Ok(Json(v4_token(token, &account, None)))
}

async fn v4_activation(
    state: AppState,
    caller: Caller,
    idp_id: String,
    active: bool,
) -> ApiResult<Json<V4ServiceAccount>> {
    require_account_manager(&caller)?;
    let account = load_account(&state, &caller, &idp_id).await?;
    Ok(Json(v4_account(accounts::set_active(&state, &caller, &account, active).await?)))
}

#[utoipa::path(post, path = "/v4/serviceAccounts/{idpId}/deactivate", tag = "compatibility",
    params(("idpId" = String, Path)), responses((status = 200, body = V4ServiceAccount), (status = 404, body = proto::Problem)))]
pub async fn v4_deactivate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(idp_id): ApiPath<String>,
) -> ApiResult<Json<V4ServiceAccount>> {
    v4_activation(state, caller, idp_id, false).await
}

#[utoipa::path(post, path = "/v4/serviceAccounts/{idpId}/activate", tag = "compatibility",
    params(("idpId" = String, Path)), responses((status = 200, body = V4ServiceAccount), (status = 404, body = proto::Problem)))]
pub async fn v4_activate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(idp_id): ApiPath<String>,
) -> ApiResult<Json<V4ServiceAccount>> {
    v4_activation(state, caller, idp_id, true).await
}
