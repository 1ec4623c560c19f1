//! keyward's HTTP server: the routers for each area, the one `authenticate()`, the
//! in-memory credential index and the change feed that keeps it current.
//!
//! Only this crate turns errors into HTTP status codes. It depends on `proto` (wire
//! types), `keyward_core` (decisions) and `store` (persistence); nothing depends on it but
//! the binary and the benchmarks.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::await_holding_lock))]

pub mod admin_keys;
pub mod api;
pub mod api_tokens;
pub mod authn;
pub mod compat;
pub mod config;
pub mod deployer;
pub mod error;
pub mod extract;
pub mod feed;
pub mod gateway;
pub mod index;
pub mod login;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub mod ops;
pub mod portal;
pub mod published;
pub mod remote_jwks;
pub mod state;
pub mod throttle;
pub mod verified_cache;

pub use authn::Caller;
pub use config::{AliasHeader, ServerConfig};
pub use state::AppState;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post, put};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route keyward serves, with its middleware. Tests call this without a socket.
pub fn app(state: AppState) -> Router {
    use api::{
        api_keys, api_services, api_tokens, audit, auth_check, authz, clients, deployment_keys as gateway_keys,
        deployments, groups, infrastructures, passwords, projects, realm, realms, service_accounts as accounts,
        signing_keys, users, workloads,
    };
    // Install the recorder before anything counts.
    let _ = metrics::handle();
    let routes = Router::new()
        .route("/api/v1/users", post(users::create_user).get(users::list_users))
        .route("/api/v1/users/me", get(users::me))
        .route("/api/v1/users/me/password", put(passwords::change_my_password))
        .route("/api/v1/users/me/api-keys", post(api_keys::create_my_key).get(api_keys::list_my_keys))
        .route("/api/v1/users/me/api-keys/{key_id}", axum::routing::delete(api_keys::revoke_my_key))
        .route("/api/v1/users/{id}", get(users::get_user).patch(users::update_user).delete(users::delete_user))
        .route("/api/v1/users/{id}/disable", post(users::disable_user))
        .route("/api/v1/users/{id}/enable", post(users::enable_user))
        .route("/api/v1/users/{id}/password", put(passwords::set_password))
        .route("/api/v1/users/{id}/roles/{role}", put(users::grant_role).delete(users::revoke_role))
        .route("/api/v1/users/{id}/api-keys", get(api_keys::list_user_keys).post(api_keys::create_user_key))
        .route("/api/v1/users/{id}/api-keys/{key_id}", axum::routing::delete(api_keys::revoke_user_key))
        .route("/api/v1/api-tokens", post(api_tokens::create).get(api_tokens::list))
        .route("/api/v1/api-tokens/{id}", get(api_tokens::get_one).patch(api_tokens::update).delete(api_tokens::delete))
        .route("/api/v1/api-tokens/{id}/unlock", post(api_tokens::unlock))
        .route("/api/v1/api-tokens/{id}/expire", post(api_tokens::expire))
        .route("/api/v1/workloads", post(workloads::create).get(workloads::list))
        .route("/api/v1/workloads/{id}", get(workloads::get_one).delete(workloads::end))
        .route("/api/v1/infrastructures", post(infrastructures::create).get(infrastructures::list))
        .route(
            "/api/v1/infrastructures/{id}",
            get(infrastructures::get_one).patch(infrastructures::update).delete(infrastructures::delete),
        )
        .route("/api/v1/infrastructures/{id}/permissions", get(infrastructures::list_permissions))
        .route(
            "/api/v1/infrastructures/{id}/permissions/{group_id}",
            put(infrastructures::set_permission).delete(infrastructures::remove_permission),
        )
        .route("/api/v1/api-services", post(api_services::create).get(api_services::list))
        .route(
            "/api/v1/api-services/{id}",
            get(api_services::get_one).patch(api_services::update).delete(api_services::delete),
        )
        .route("/api/v1/api-services/{id}/permissions", get(api_services::list_permissions))
        .route(
            "/api/v1/api-services/{id}/permissions/{group_id}",
            put(api_services::set_permission).delete(api_services::remove_permission),
        )
        .route(
            "/api/v1/api-services/{id}/versions",
            post(api_services::create_version).get(api_services::list_versions),
        )
        .route("/api/v1/api-services/{id}/versions/{version_id}", axum::routing::delete(api_services::delete_version))
        .route(
            "/api/v1/api-services/{id}/keys",
            post(gateway_keys::create_service_key).get(gateway_keys::list_service_keys),
        )
        .route("/api/v1/api-services/{id}/keys/{key_id}", axum::routing::delete(gateway_keys::delete_service_key))
        .route("/api/v1/api-services/{id}/keys/{key_id}/reveal", post(gateway_keys::reveal_service_key))
        .route("/api/v1/deployments", post(deployments::create).get(deployments::list))
        .route(
            "/api/v1/deployments/{id}",
            get(deployments::get_one).patch(deployments::update).delete(deployments::delete),
        )
        .route("/api/v1/deployments/{id}/enable", post(deployments::enable))
        .route("/api/v1/deployments/{id}/sample", get(gateway_keys::deployment_sample))
        .route("/api/v1/deployments/{id}/disable", post(deployments::disable))
        .route(
            "/api/v1/deployments/{id}/keys",
            post(gateway_keys::create_deployment_key).get(gateway_keys::list_deployment_keys),
        )
        .route("/api/v1/deployments/{id}/keys/{key_id}", axum::routing::delete(gateway_keys::delete_deployment_key))
        .route("/api/v1/deployments/{id}/keys/{key_id}/reveal", post(gateway_keys::reveal_deployment_key))
        .route("/public/{*path}", axum::routing::any(published::serve))
        .route("/realms/{realm}/public/{*path}", axum::routing::any(published::serve))
        .route("/api/v1/groups", post(groups::create_group).get(groups::list_groups))
        .route("/api/v1/groups/{id}", get(groups::get_group).delete(groups::delete_group))
        .route("/api/v1/groups/{id}/members/{user_id}", put(groups::add_member).delete(groups::remove_member))
        .route("/api/v1/groups/{id}/roles/{role}", put(groups::grant_group_role).delete(groups::revoke_group_role))
        .route("/api/v1/projects", post(projects::create_project).get(projects::list_projects))
        .route("/api/v1/projects/{id}", get(projects::get_project).delete(projects::delete_project))
        .route("/api/v1/projects/{id}/collaborators", get(projects::list_collaborators))
        .route(
            "/api/v1/projects/{id}/collaborators/{user_id}",
            put(projects::set_collaborator).delete(projects::remove_collaborator),
        )
        .route("/api/v1/authz/check", post(authz::check))
        .route("/api/v1/auth/check", get(auth_check::check).post(auth_check::check))
        .route("/api/v1/realms/{name}/keys", get(signing_keys::list_keys))
        .route("/api/v1/realms/{name}/clients", post(clients::create_client).get(clients::list_clients))
        .route(
            "/api/v1/realms/{name}/clients/{client_id}",
            get(clients::get_client).patch(clients::update_client).delete(clients::delete_client),
        )
        .route("/api/v1/realms/{name}/clients/{client_id}/secret", post(clients::renew_secret))
        .route("/api/v1/realms/{name}/claim-mappers", get(clients::get_realm_mappers).put(clients::put_realm_mappers))
        .route("/api/v1/realms/{name}/keys/rotate", post(signing_keys::rotate_keys))
        .route("/api/v1/realm/policy", get(realm::get_policy).put(realm::put_policy))
        .route("/api/v1/realms", post(realms::create_realm).get(realms::list_realms))
        .route("/api/v1/realms/{name}", get(realms::get_realm).patch(realms::update_realm))
        .route("/api/v1/realms/{name}/disable", post(realms::disable_realm))
        .route("/api/v1/realms/{name}/enable", post(realms::enable_realm))
        .route("/api/v1/audit", get(audit::list_audit))
        .route("/api/v1/service-accounts", post(accounts::create).get(accounts::list))
        .route("/api/v1/service-accounts/tokens", get(accounts::expiring_tokens))
        .route("/api/v1/service-accounts/{id}", get(accounts::get_one))
        .route("/api/v1/service-accounts/{id}/deactivate", post(accounts::deactivate))
        .route("/api/v1/service-accounts/{id}/activate", post(accounts::activate))
        .route("/api/v1/service-accounts/{id}/tokens", post(accounts::create_token).get(accounts::list_tokens))
        .route("/api/v1/service-accounts/{id}/tokens/{token_id}", axum::routing::delete(accounts::invalidate_token))
        .route("/v4/serviceAccounts", post(compat::v4_create_service_account).get(compat::v4_list_service_accounts))
        .route("/v4/serviceAccounts/{idp_id}/tokens", post(compat::v4_create_token).get(compat::v4_list_tokens))
        .route("/v4/serviceAccounts/{idp_id}/tokens/{name}/invalidate", post(compat::v4_invalidate_token))
        .route("/v4/serviceAccounts/{idp_id}/deactivate", post(compat::v4_deactivate))
        .route("/v4/serviceAccounts/{idp_id}/activate", post(compat::v4_activate))
        .route("/v4/users/self", get(compat::users_self))
        .route("/api/user/me", get(compat::api_user_me))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics_text))
        .merge(oidc::routes())
        .merge(portal::routes())
        .route_layer(middleware::from_fn(metrics::track_latency));
    let mut routes = routes;
    for route in &state.config.routes {
        let route = std::sync::Arc::new(route.clone());
        let exact = route.clone();
        let slash = route.clone();
        routes = routes
            .route(
                &route.prefix,
                axum::routing::any(move |state, request| gateway::forward(state, exact.clone(), request)),
            )
            // `{*rest}` matches one character or more; the bare trailing slash is its own route.
            .route(
                &format!("{}/", route.prefix),
                axum::routing::any(move |state, request| gateway::forward(state, slash.clone(), request)),
            )
            .route(
                &format!("{}/{{*rest}}", route.prefix),
                axum::routing::any({
                    let route = route.clone();
                    move |state, request| gateway::forward(state, route.clone(), request)
                }),
            );
    }
    let body_limit = state.config.body_limit_bytes;
    let prefixes: Vec<String> = state.config.routes.iter().map(|route| route.prefix.clone()).collect();
    Router::new()
        .merge(routes)
        .merge(SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", openapi::ApiDoc::openapi()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(move |request: axum::extract::Request, next| {
            // Upstream routes stream bodies of any size to their upstream.
            let path = request.uri().path();
            let forwarded = prefixes.iter().any(|prefix| gateway::is_under(prefix, path)) || is_published_path(path);
            let limit = if forwarded { usize::MAX } else { body_limit };
            refuse_declared_oversize(limit, request, next)
        }))
        // Responses may carry secrets: never let a cache keep them.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            // The path only: query strings and headers can carry secrets and are never logged.
            let request_id = request.headers().get(REQUEST_ID).and_then(|value| value.to_str().ok()).unwrap_or("");
            let path = redact_path(request.uri().path());
            tracing::info_span!("request", method = %request.method(), path = %path, request_id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Whether `path` is served by the API gateway (`crate::published`).
fn is_published_path(path: &str) -> bool {
    path.starts_with("/public/")
        || path
            .strip_prefix("/realms/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(_, rest)| rest.starts_with("public/"))
}

/// The request path as logged: a segment that looks like a keyward secret (someone
/// pasted a key into a URL) is replaced, so it never reaches the logs. Paths without one,
/// nearly all, are logged as they are, without a copy.
fn redact_path(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.split('/').any(secret_like) {
        return std::borrow::Cow::Borrowed(path);
    }
    let segments: Vec<&str> =
        path.split('/').map(|segment| if secret_like(segment) { "[redacted]" } else { segment }).collect();
    std::borrow::Cow::Owned(segments.join("/"))
}

/// Whether a path segment holds something like a keyward secret: a `kw?_` prefix
/// anywhere in it, or a JWT's start, in any case.
fn secret_like(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    bytes.len() >= 3 && bytes[..3].eq_ignore_ascii_case(b"eyj")
        || bytes.windows(4).any(|window| {
            window[..2].eq_ignore_ascii_case(b"kw")
                && window[3] == b'_'
                && matches!(window[2].to_ascii_lowercase(), b'a' | b'u' | b's' | b'd' | b'r' | b'c')
        })
}

/// Answers 413 from the `Content-Length` header alone, before reading any of the body.
/// Bodies without a length are cut off at the same limit by `DefaultBodyLimit`.
async fn refuse_declared_oversize(limit: usize, request: axum::extract::Request, next: middleware::Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return axum::response::IntoResponse::into_response(error::ApiError::PayloadTooLarge);
    }
    next.run(request).await
}

async fn not_found() -> Response {
    error::problem_response(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "No such route; the API is described at /api/v1/openapi.json.".to_string(),
        None,
    )
}

async fn method_not_allowed() -> Response {
    error::problem_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "This route does not take that method; see /api/v1/openapi.json.".to_string(),
        None,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_like_path_segments_are_redacted() {
        assert_eq!(super::redact_path("/api/v1/users/abc"), "/api/v1/users/abc");
        assert_eq!(super::redact_path("/v4/users/kwu_AbC123/x"), "/v4/users/[redacted]/x");
        assert_eq!(super::redact_path("/x/eyJhbGciOi.e30.sig"), "/x/[redacted]");
        assert_eq!(super::redact_path("/x/EYJhbG"), "/x/[redacted]");
        assert_eq!(super::redact_path("/a/prefix-KWS_abc/b/kwc_x"), "/a/[redacted]/b/[redacted]");
        assert_eq!(super::redact_path("/a/kwx_abc/kw_/eyz"), "/a/kwx_abc/kw_/eyz");
    }
}
