//! Health, readiness and metrics.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use proto::Health;

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".to_string() })
}

/// Ready when the database answers and the index is current (the change feed polled
/// successfully within the last two seconds).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = Health), (status = 500, body = proto::Problem), (status = 503, body = proto::Problem)))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    state.store.ping().await.map_err(|error| ApiError::Internal(format!("database not reachable: {error}")))?;
    if state.feed.age() > std::time::Duration::from_secs(2).max(state.config.change_poll_interval * 5) {
        return Err(ApiError::Unavailable);
    }
    Ok(Json(Health { status: "ready".to_string() }))
}

pub async fn metrics_text(State(state): State<AppState>) -> Response {
    metrics::gauge!("keyward_indexed_credentials").set(state.index.credential_count() as f64);
    // Service-account tokens that stop working within a week, per realm: alert on these.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let week = crate::state::NEAR_EXPIRY.whole_seconds();
    let expiring = state.index.count_expiring(keyward_core::CredentialKind::ServiceAccountToken, now, now + week);
    for realm in state.realm_list() {
        let count = expiring.get(&realm.id).copied().unwrap_or(0);
        metrics::gauge!("keyward_service_account_tokens_expiring", "realm" => realm.name.clone(), "within" => "7d")
            .set(count as f64);
    }
    let body = crate::metrics::handle().map(|handle| handle.render()).unwrap_or_default();
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}
