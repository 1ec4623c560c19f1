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
