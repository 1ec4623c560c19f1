//! `GET|POST /api/v1/auth/check`: for nginx `auth_request` and Envoy `ext_authz`. 200 with
//! the caller's identity in headers (and a small JSON body), 401 for no or a refused
//! credential, 403 for a credential bound to another audience.

use crate::authn::Caller;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use keyward_core::CredentialKind;
use proto::AuthCheckAnswer;
use std::borrow::Cow;
use std::sync::OnceLock;

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
    /// The identity headers.
    pub headers: HeaderMap,
    /// The auth check's answer headers: the identity headers and the JSON content type.
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
        let mut headers = HeaderMap::with_capacity(IDENTITY_HEADERS.len() + 1);
        let principal = caller.principal.as_ref().filter(|_| caller.kind != CredentialKind::AdminKey);
        match principal {
            Some(principal) => {
                put(&mut headers, USER_ID_HEADER, &principal.public_id);
                put(&mut headers, SUBJECT_HEADER, &principal.public_id);
                put(&mut headers, USERNAME_HEADER, &principal.username);
                put(&mut headers, EMAIL_HEADER, &principal.email);
                put(&mut headers, GROUPS_HEADER, &principal.groups.join(","));
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
        let answer = AuthCheckAnswer {
            subject: principal.map(|principal| principal.public_id.clone()),
            username: principal.map(|principal| principal.username.clone()),
            realm: caller.realm_name.clone(),
            credential_kind: caller.kind.as_str().to_string(),
            roles: roles.iter().map(|role| role.to_string()).collect(),
        };
        // Room for the headers the middleware adds (request id, cache and sniffing
        // policy) without growing the copy each answer starts from.
        let mut answer_headers = HeaderMap::with_capacity(16);
        answer_headers.extend(headers.clone());
        answer_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let answer_body = serde_json::to_vec(&answer).map(Bytes::from).unwrap_or_default();
        Rendered { headers, answer_headers, answer_body }
    }
}

/// The caller's identity, from its principal's cache when it has one. Admin and
/// deployment keys have no principal to keep it with; theirs is made each time.
fn rendered(caller: &Caller) -> Cow<'_, Rendered> {
    match &caller.principal {
        Some(principal) if caller.kind != CredentialKind::AdminKey => {
            let kinds = principal.identity.0.get_or_init(|| Box::new(std::array::from_fn(|_| OnceLock::new())));
            Cow::Borrowed(kinds[caller.kind.index()].get_or_init(|| Rendered::of(caller)))
        }
        _ => Cow::Owned(Rendered::of(caller)),
    }
}

/// The identity of a caller as headers. A value that cannot be a header value (not
/// visible ASCII, e.g. an internationalised email address) is left out rather than mangled.
pub fn identity_headers(caller: &Caller) -> HeaderMap {
    match rendered(caller) {
        Cow::Borrowed(rendered) => rendered.headers.clone(),
        Cow::Owned(rendered) => rendered.headers,
    }
}

#[utoipa::path(get, path = "/api/v1/auth/check", tag = "auth",
    responses((status = 200, body = AuthCheckAnswer), (status = 401, body = proto::Problem), (status = 403, body = proto::Problem)))]
pub async fn check(caller: Caller) -> Response {
    // The answer's headers and body are the principal's, made once: a check copies no
    // string and serialises nothing.
    let rendered = rendered(&caller);
    let mut response = Response::new(Body::from(rendered.answer_body.clone()));
    *response.headers_mut() = rendered.answer_headers.clone();
    response
}
