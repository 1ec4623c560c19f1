//! The token service under `/auth/realms/{realm}` (Keycloak's paths): the realm
//! document, OIDC discovery, JWKS, the token endpoint, userinfo, introspection (RFC 7662)
//! and revocation (RFC 7009); and the native signing-key API.

pub mod clients;
pub mod endpoints;
pub mod errors;
pub mod grants;
pub mod keys;
pub mod tokens;

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

/// The token service's routes.
pub fn routes() -> Router<AppState> {
    const BASE: &str = "/auth/realms/{realm}";
    let path = |suffix: &str| format!("{BASE}{suffix}");
    Router::new()
        .route(BASE, get(endpoints::realm_document))
        .route(&path("/.well-known/openid-configuration"), get(endpoints::discovery))
        .route(&path("/protocol/openid-connect/certs"), get(endpoints::jwks))
        .route(&path("/protocol/openid-connect/auth"), get(endpoints::authorize))
        .route(&path("/protocol/openid-connect/token"), post(grants::token))
        .route(&path("/protocol/openid-connect/userinfo"), get(endpoints::userinfo).post(endpoints::userinfo))
        .route(&path("/protocol/openid-connect/token/introspect"), post(endpoints::introspect))
        .route(&path("/protocol/openid-connect/revoke"), post(endpoints::revoke))
}
