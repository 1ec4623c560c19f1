//! `GET|POST /api/v1/auth/check`: for nginx `auth_request` and Envoy `ext_authz`. 200 with
//! the caller's identity in headers (and a small JSON body), 401 for no or a refused
//! credential, 403 for a credential bound to another audience.

use crate::authn::Caller;
use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use proto::AuthCheckAnswer;

/// The identity headers an upstream may trust (once the proxy strips them from clients).
pub const SUBJECT_HEADER: &str = "x-keyward-subject";
pub const USERNAME_HEADER: &str = "x-keyward-username";
pub const REALM_HEADER: &str = "x-keyward-realm";
pub const KIND_HEADER: &str = "x-keyward-credential-kind";
pub const ROLES_HEADER: &str = "x-keyward-roles";

/// The identity of a caller as headers.
pub fn identity_headers(caller: &Caller) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    if let Some(principal) = &caller.principal {
        put(SUBJECT_HEADER, &principal.public_id);
        put(USERNAME_HEADER, &principal.username);
    }
    put(REALM_HEADER, &caller.realm_name);
    put(KIND_HEADER, caller.kind.as_str());
    let roles: Vec<&str> = caller.roles().iter().map(|role| role.as_str()).collect();
    put(ROLES_HEADER, &roles.join(","));
    headers
}

#[utoipa::path(get, path = "/api/v1/auth/check", tag = "auth",
    responses((status = 200, body = AuthCheckAnswer), (status = 401, body = proto::Problem), (status = 403, body = proto::Problem)))]
pub async fn check(caller: Caller) -> (HeaderMap, Json<AuthCheckAnswer>) {
    let answer = AuthCheckAnswer {
        subject: caller.principal.as_ref().map(|principal| principal.public_id.clone()),
        username: caller.principal.as_ref().map(|principal| principal.username.clone()),
        realm: caller.realm_name.clone(),
        credential_kind: caller.kind.as_str().to_string(),
        roles: caller.roles().iter().map(|role| role.as_str().to_string()).collect(),
    };
    (identity_headers(&caller), Json(answer))
}
