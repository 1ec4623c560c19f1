//! `GET|POST /api/v1/auth/check`: for nginx `auth_request` and Envoy `ext_authz`. 200 with
//! the caller's identity in headers (and a small JSON body), 401 for no or a refused
//! credential, 403 for a credential bound to another audience.

use crate::authn::Caller;
use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use proto::AuthCheckAnswer;

/// The identity headers an upstream may trust (once whatever sits in front of it strips
/// them from clients: keyward's upstream routes do).
pub const USER_ID_HEADER: &str = "x-keyward-user-id";
pub const USERNAME_HEADER: &str = "x-keyward-username";
pub const EMAIL_HEADER: &str = "x-keyward-email";
/// Group names, comma-separated.
pub const GROUPS_HEADER: &str = "x-keyward-groups";
/// `user`, `service` (a service account), `admin-key` or `deployment-key` (at the gateway).
pub const KIND_HEADER: &str = "x-keyward-kind";
/// The same user id, under its OIDC name.
pub const SUBJECT_HEADER: &str = "x-keyward-subject";
pub const REALM_HEADER: &str = "x-keyward-realm";
/// How the caller authenticated: `user_api_key`, `access_token`, `api_token`, …
pub const CREDENTIAL_KIND_HEADER: &str = "x-keyward-credential-kind";
/// Roles, comma-separated.
pub const ROLES_HEADER: &str = "x-keyward-roles";
/// Every identity header, so a forwarder can drop those a client sent.
pub const IDENTITY_HEADERS: [&str; 9] = [
    USER_ID_HEADER,
    USERNAME_HEADER,
    EMAIL_HEADER,
    GROUPS_HEADER,
    KIND_HEADER,
    SUBJECT_HEADER,
    REALM_HEADER,
    CREDENTIAL_KIND_HEADER,
    ROLES_HEADER,
];

fn put(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// The headers that depend on the principal alone, made once per principal: everything
/// a caller with a principal sends but its realm and credential kind. The roles are the
/// principal's as a caller holds them (`Caller::roles`: a service account never holds
/// admin).
fn principal_headers(caller: &Caller, principal: &crate::index::PrincipalInfo) -> HeaderMap {
    principal
        .identity
        .get_or_init(|| {
            let mut headers = HeaderMap::new();
            put(&mut headers, USER_ID_HEADER, &principal.public_id);
            put(&mut headers, SUBJECT_HEADER, &principal.public_id);
            put(&mut headers, USERNAME_HEADER, &principal.username);
            put(&mut headers, EMAIL_HEADER, &principal.email);
            put(&mut headers, GROUPS_HEADER, &principal.groups.join(","));
            put(&mut headers, KIND_HEADER, &principal.kind);
            let roles: Vec<&str> = caller.roles().iter().map(|role| role.as_str()).collect();
            put(&mut headers, ROLES_HEADER, &roles.join(","));
            headers
        })
        .clone()
}

/// The identity of a caller as headers. A value that cannot be a header value (not
/// visible ASCII, e.g. an internationalised email address) is left out rather than mangled.
pub fn identity_headers(caller: &Caller) -> HeaderMap {
    let mut headers = match &caller.principal {
        // An admin key's roles do not come from a principal; it has none.
        Some(principal) if caller.kind != keyward_core::CredentialKind::AdminKey => {
            principal_headers(caller, principal)
        }
        _ => {
            let mut headers = HeaderMap::new();
            let kind = match caller.kind {
                keyward_core::CredentialKind::DeploymentKey => "deployment-key",
                _ => "admin-key",
            };
            headers.insert(HeaderName::from_static(KIND_HEADER), HeaderValue::from_static(kind));
            let roles: Vec<&str> = caller.roles().iter().map(|role| role.as_str()).collect();
            put(&mut headers, ROLES_HEADER, &roles.join(","));
            headers
        }
    };
    put(&mut headers, REALM_HEADER, &caller.realm_name);
    headers.insert(HeaderName::from_static(CREDENTIAL_KIND_HEADER), HeaderValue::from_static(caller.kind.as_str()));
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
