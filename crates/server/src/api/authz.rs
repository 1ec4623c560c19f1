//! `POST /api/v1/authz/check`: a protected upstream asks whether the caller may act on a
//! project. The answer is the same decision keyward's own project routes apply.

use crate::api::projects::load_project;
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use keyward_core::ProjectAction;
use proto::{AuthzCheck, AuthzDecision};

/// A project the caller cannot see answers 404 here too, so the check cannot be used to
/// learn which project ids exist.
#[utoipa::path(post, path = "/api/v1/authz/check", tag = "authz", request_body = AuthzCheck,
    responses((status = 200, body = AuthzDecision), (status = 404, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn check(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<AuthzCheck>,
) -> ApiResult<Json<AuthzDecision>> {
    let action = ProjectAction::parse(&body.action)
        .ok_or_else(|| ApiError::invalid("action", "must be one of read, write, admin"))?;
    let (project, access) = load_project(&state, &caller, &body.project_id).await?;
    Ok(Json(AuthzDecision {
        allowed: access.allows(action),
        role: access.role.map(|role| role.as_str().to_string()),
        project_id: project.public_id,
    }))
}
