//! `GET|POST /api/v1/auth/check`: for nginx `auth_request` and Envoy `ext_authz`. 200 with
//! the caller's identity in headers (and a small JSON body), 401 for no or a refused
//! credential, 403 for a credential bound to another audience.

use crate::authn::Caller;
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use keyward_core::CredentialKind;
use proto::AuthCheckAnswer;
use std::sync::{Arc, OnceLock};
use tower_http::request_id::RequestId;

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

/// A caller's identity as keyward sends it: the identity headers (on the auth check's
/// answer and on forwarded requests) and the auth check's whole answer. It depends only
/// on the principal, its realm and the credential kind, so it is made once per principal
/// and kind and kept with the principal ([`IdentityCache`]).
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The identity headers, shared: a forwarded request reads them without a copy.
    headers: Arc<HeaderMap>,
    /// The auth check's answer headers: the identity headers and the rest of
    /// [`answer_of`]'s.
    answer_headers: HeaderMap,
    /// The auth check's JSON answer.
    answer_body: Bytes,
}

/// One [`Rendered`] per credential kind, made on first use. Kept in a `PrincipalInfo`,
/// which is replaced, never changed, when the principal changes; a clone starts empty.
#[derive(Debug, Default)]
pub struct IdentityCache(OnceLock<Box<[OnceLock<Rendered>; CredentialKind::COUNT]>>);

impl Clone for IdentityCache {
    fn clone(&self) -> Self {
        IdentityCache::default()
    }
}

impl Rendered {
    fn of(caller: &Caller) -> Rendered {
        let headers = headers_of(caller);
        let (answer_headers, answer_body) = answer_of(caller, &headers);
        Rendered { headers: Arc::new(headers), answer_headers, answer_body }
    }
}

/// The principal whose identity the caller carries: none for an admin key, whose roles
/// do not come from one.
fn principal_of(caller: &Caller) -> Option<&Arc<crate::index::PrincipalInfo>> {
    caller.principal.as_ref().filter(|_| caller.kind != CredentialKind::AdminKey)
}

/// The principal's cached identity for this kind of credential. Admin and deployment keys
/// have no principal to keep it with; a credential with a ceiling may hold fewer roles and
/// groups than another of the same kind and principal, so its identity is made each time.
fn cached(caller: &Caller) -> Option<&Rendered> {
    if caller.ceiling.is_bounded() {
        return None;
    }
    let principal = principal_of(caller)?;
    let kinds = principal.identity.0.get_or_init(|| Box::new(std::array::from_fn(|_| OnceLock::new())));
    Some(kinds[caller.kind.index()].get_or_init(|| Rendered::of(caller)))
}

fn headers_of(caller: &Caller) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(IDENTITY_HEADERS.len());
    match principal_of(caller) {
        Some(principal) => {
            put(&mut headers, USER_ID_HEADER, &principal.public_id);
            put(&mut headers, SUBJECT_HEADER, &principal.public_id);
            put(&mut headers, USERNAME_HEADER, &principal.username);
            put(&mut headers, EMAIL_HEADER, &principal.email);
            put(&mut headers, GROUPS_HEADER, &caller.groups().join(","));
            put(&mut headers, KIND_HEADER, &principal.kind);
        }
        // An admin key's roles do not come from a principal; it has none.
        None => {
            let kind = match caller.kind {
                CredentialKind::DeploymentKey => "deployment-key",
                _ => "admin-key",
            };
            headers.insert(HeaderName::from_static(KIND_HEADER), HeaderValue::from_static(kind));
        }
    }
    let roles: Vec<&str> = caller.roles().iter().map(|role| role.as_str()).collect();
    put(&mut headers, ROLES_HEADER, &roles.join(","));
    put(&mut headers, REALM_HEADER, &caller.realm_name);
    headers.insert(HeaderName::from_static(CREDENTIAL_KIND_HEADER), HeaderValue::from_static(caller.kind.as_str()));
    headers
}

/// The auth check's answer: the identity headers, the JSON content type and length, the
/// server's cache and sniffing policy and a slot for the request id (all set here, so the
/// middleware finds them and the copy each answer starts from never grows), and the
/// JSON body.
fn answer_of(caller: &Caller, identity: &HeaderMap) -> (HeaderMap, Bytes) {
    let principal = principal_of(caller);
    let answer = AuthCheckAnswer {
        subject: principal.map(|principal| principal.public_id.clone()),
        username: principal.map(|principal| principal.username.clone()),
        realm: caller.realm_name.clone(),
        credential_kind: caller.kind.as_str().to_string(),
        roles: caller.roles().iter().map(|role| role.as_str().to_string()).collect(),
    };
    let mut headers = HeaderMap::with_capacity(IDENTITY_HEADERS.len() + 4);
    headers.extend(identity.clone());
    headers.insert(crate::REQUEST_ID, HeaderValue::from_static(""));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    let body = serde_json::to_vec(&answer).map(Bytes::from).unwrap_or_default();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    (headers, body)
}

/// The identity of a caller as headers. A value that cannot be a header value (not
/// visible ASCII, e.g. an internationalised email address) is left out rather than mangled.
pub fn identity_headers(caller: &Caller) -> Arc<HeaderMap> {
    match cached(caller) {
        Some(rendered) => rendered.headers.clone(),
        None => Arc::new(headers_of(caller)),
    }
}

#[utoipa::path(get, path = "/api/v1/auth/check", tag = "auth",
    responses((status = 200, body = AuthCheckAnswer), (status = 401, body = proto::Problem), (status = 403, body = proto::Problem)))]
pub async fn check(caller: Caller, request_id: Option<Extension<RequestId>>) -> Response {
    // A user's or service account's answer is made once: a check then copies no string
    // and serialises nothing.
    let (headers, body) = match cached(&caller) {
        Some(rendered) => (rendered.answer_headers.clone(), rendered.answer_body.clone()),
        None => answer_of(&caller, &headers_of(&caller)),
    };
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = headers;
    match request_id {
        Some(Extension(id)) => response.headers_mut().insert(crate::REQUEST_ID, id.into_header_value()),
        None => response.headers_mut().remove(crate::REQUEST_ID),
    };
    response
}
