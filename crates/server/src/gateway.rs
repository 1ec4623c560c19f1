//! Upstream routes: `keyward serve` in front of platform services. A request under a
//! route's prefix is authenticated like any other (every credential kind), loses the
//! caller's credential and any identity headers the client sent, gains the auth check's
//! identity headers and, when the route asks for one, a short-lived access token the
//! upstream can verify with the realm's JWKS; then it is forwarded through the same
//! engine as `keyward proxy` (`proxy::forward`). Unauthenticated calls never reach the
//! upstream.

use crate::api::auth_check::identity_headers;
use crate::authn::{AuthFailure, Caller};
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::oidc::{AccessTokenClaims, Audience};
use proxy::forward::Upstream;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One `[[routes]]` entry.
#[derive(Clone, Debug)]
pub struct UpstreamRoute {
    /// `/api/jobs`: the route serves this path and everything under it.
    pub prefix: String,
    pub upstream: Upstream,
    /// When set, each forwarded call carries `Authorization: Bearer` with an access token
    /// for the caller, of this audience.
    pub access_token_audience: Option<String>,
}

/// Paths keyward serves itself; no route may take them.
const RESERVED_PREFIXES: [&str; 10] =
    ["/api/v1", "/api/docs", "/api/user", "/auth", "/v4", "/healthz", "/readyz", "/metrics", "/public", "/realms"];

/// Checks a route prefix: absolute, no trailing slash, no `..` or wildcards, and clear of
/// keyward's own paths.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let well_formed = prefix.starts_with('/')
        && prefix.len() > 1
        && !prefix.ends_with('/')
        && prefix.split('/').skip(1).all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
        });
    if !well_formed {
        return Err(format!(
            "route prefix {prefix:?} must look like /api/jobs: segments of letters, digits and -._~, no trailing slash"
        ));
    }
    let taken = RESERVED_PREFIXES.iter().find(|reserved| {
        prefix == **reserved
            || prefix.starts_with(&format!("{reserved}/"))
            || reserved.starts_with(&format!("{prefix}/"))
    });
    match taken {
        Some(reserved) => Err(format!("route prefix {prefix:?} overlaps keyward's own {reserved}")),
        None => Ok(()),
    }
}

/// Whether `path` is served by a route with `prefix`.
pub fn is_under(prefix: &str, path: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// (principal id, credential id, audience and the presented access token's jti): whose
/// token, made from what, for whom. A token made from one access token carries its
/// `sid` and `cid`, so it is never handed to a caller presenting another.
type RouteTokenKey = (i64, i64, String);
/// The token and the unix second after which it is minted again.
type RouteToken = (Arc<str>, i64);

/// Access tokens minted for routes, reused until 80 % of their lifetime.
#[derive(Default)]
pub struct RouteTokens {
    cached: Mutex<HashMap<RouteTokenKey, RouteToken>>,
}

const ROUTE_TOKEN_CACHE: usize = 10_000;

fn unauthenticated(failure: AuthFailure) -> Response {
    match failure {
        AuthFailure::Refused(_) => ApiError::Unauthenticated,
        AuthFailure::Throttled { retry_after_secs } => ApiError::Throttled { retry_after_secs },
        AuthFailure::Unavailable => ApiError::Unavailable,
    }
    .into_response()
}

/// Headers a client may send that an upstream would take for keyward's word (forwarding
/// headers are rewritten from the address keyward determined), or that steer the upstream
/// elsewhere (the rewritten-URL headers some servers route on) or unlock a cloud metadata
/// service (`Metadata-Flavor`, `Metadata`).
const CLIENT_FORWARDING_HEADERS: [&str; 15] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-original-forwarded-for",
    "metadata-flavor",
    "metadata",
    // CGI hands it to the application as `HTTP_PROXY`, which HTTP clients there take for
    // their outgoing proxy ("httpoxy").
    "proxy",
];

/// Whether a header name a client sent must not reach the upstream: keyward's own
/// `X-Keyward-*` names (every one, not only the identity headers keyward sets) and the
/// headers above, however their separators are written: CGI-style servers turn every byte
/// that is not a letter or digit into `_` (`X_Keyward_User_Id` and `X.Keyward.User.Id` both
/// become `HTTP_X_KEYWARD_USER_ID`, as `X-Keyward-User-Id` does). Names arrive in lower case.
fn is_spoofable(name: &str) -> bool {
    starts_as(name, "x-keyward")
        || CLIENT_FORWARDING_HEADERS.iter().any(|reserved| name.len() == reserved.len() && starts_as(name, reserved))
}

/// Whether `name` begins with `reserved`, any byte that is not a letter or digit standing
/// for any other such byte (a separator).
fn starts_as(name: &str, reserved: &str) -> bool {
    let separator = |byte: u8| !byte.is_ascii_alphanumeric();
    name.len() >= reserved.len()
        && name
            .bytes()
            .zip(reserved.bytes())
            .all(|(sent, wanted)| sent == wanted || separator(sent) && separator(wanted))
}

/// Makes a request's headers fit to forward: no credential of the caller's (its key or
/// token, and keyward's portal session cookie, which a browser sends along to every path
/// of keyward's origin), no identity or forwarding header the client made up, and
/// `X-Forwarded-For` naming the client address keyward determined (the socket peer, or
/// the trusted proxies' client).
pub fn clean_forwarded_headers(state: &AppState, headers: &mut HeaderMap, client_ip: std::net::IpAddr) {
    // First, so that a `Connection` header naming X-Forwarded-For cannot drop the one
    // set below (the forwarder strips what `Connection` names).
    proxy::forward::strip_hop_by_hop(headers);
    proxy::forward::remove_where(headers, |name| {
        crate::authn::is_credential_header(state, name) || is_spoofable(name.as_str())
    });
    crate::portal::session::remove_keyward_cookies(headers);
    if let Ok(value) = HeaderValue::from_str(&client_ip.to_string()) {
        headers.insert("x-forwarded-for", value);
    }
}

/// An access token for the caller's principal and `audience`, minted or reused. It is
/// bound to the caller's credential (`cid`) or session (`sid`) like an exchanged token,
/// so it dies with them.
async fn route_token(state: &AppState, caller: &Caller, audience: &str) -> Result<Arc<str>, ApiError> {
    let principal = caller.principal.as_ref().ok_or_else(|| {
        ApiError::Forbidden("An admin key is not a user: this route needs a user's credential.".into())
    })?;
    if caller.api_token.is_some() {
        // An API token's record (enabled switch, IP filter, expiry) holds on each request
        // it makes; an access token made from it would escape all three.
        return Err(ApiError::Forbidden(
            "This route passes its upstream an access token for the caller, and API tokens are not exchanged for \
             access tokens; call it with an API key or an access token."
                .into(),
        ));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let presented = caller.access_token.as_ref().map_or("", |token| token.claims.jti.as_str());
    // The credential's digest head too, which names it exactly: a token cached for one
    // credential is never handed to another that shares its row id (an API token's record
    // keeps its id across re-issues; those are refused above, but the key does not rely on it).
    let head = caller.credential_head.map(hex::encode).unwrap_or_default();
    let key = (principal.id, caller.credential_id, format!("{audience}|{presented}|{head}"));
    if let Some((token, refresh_at)) =
        state.route_tokens.cached.lock().ok().and_then(|cached| cached.get(&key).cloned())
    {
        if now < refresh_at {
            return Ok(token);
        }
    }
    let realm = state.realm(caller.realm_id).ok_or(ApiError::NotFound("realm"))?;
    let lifetime = realm.token_settings.access_token_lifetime.whole_seconds();
    let mut exp = now + lifetime;
    if let Some(credential_expiry) = caller.credential_expires_at {
        exp = exp.min(credential_expiry);
    }
    let (sid, cid) = match &caller.access_token {
        Some(token) => (token.claims.sid.clone(), token.claims.cid.clone()),
        None => (None, caller.credential_head.map(|head| hex::encode(head).into())),
    };
    let claims = AccessTokenClaims {
        iss: crate::oidc::tokens::issuer(state, &realm.name).into(),
        sub: principal.public_id.as_str().into(),
        aud: Audience::One(audience.into()),
        exp,
        iat: now,
        nbf: Some(now),
        jti: crate::api::new_public_id().into_string().into(),
        client_id: "keyward-gateway".into(),
        azp: "keyward-gateway".into(),
        sid,
        scope: None,
        cid,
        api_token_id: None,
        api_token_gen: None,
        name: None,
        preferred_username: principal.username.as_str().into(),
        email: Some(principal.email.as_str().into()),
        groups: caller.groups().into_owned(),
        extra: serde_json::Map::new(),
    };
    let token: Arc<str> = crate::oidc::tokens::sign_claims(state, &realm, &claims)
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))?
        .into();
    if let Ok(mut cached) = state.route_tokens.cached.lock() {
        if cached.len() >= ROUTE_TOKEN_CACHE {
            cached.clear();
        }
        cached.insert(key, (token.clone(), now + (exp - now) * 4 / 5));
    }
    Ok(token)
}

/// Serves a request under `route`.
pub async fn forward(State(state): State<AppState>, route: Arc<UpstreamRoute>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    if let Err(detail) = keyward_core::deployer::check_forwarded_path(parts.uri.path()) {
        return ApiError::BadRequest(format!("Not forwarded: {detail}.")).into_response();
    }
    let client_ip = crate::extract::client_ip(&parts, &state);
    let caller = match state.authenticate(&parts.headers, client_ip) {
        Ok(caller) => caller,
        Err(failure) => return unauthenticated(failure),
    };
    // The upstream is told who the caller is, with all its roles and groups: a credential
    // that may only identify its user does not go through, as on keyward's own API.
    if let Err(refused) = crate::extract::require_general_purpose(&caller) {
        return refused.into_response();
    }
    clean_forwarded_headers(&state, &mut parts.headers, client_ip);
    let mut extra = identity_headers(&caller);
    if let Some(audience) = &route.access_token_audience {
        match route_token(&state, &caller, audience).await {
            Ok(token) => match HeaderValue::from_str(&format!("Bearer {token}")) {
                Ok(value) => {
                    Arc::make_mut(&mut extra).insert(header::AUTHORIZATION, value);
                }
                Err(_) => return ApiError::Internal("unusable route token".into()).into_response(),
            },
            Err(error) => return error.into_response(),
        }
    }
    let body = proxy::forward::boxed(body);
    match state.forwarder.forward(&route.upstream, parts, body, &extra).await {
        Ok(response) => response.map(Body::new),
        Err(error) if error.is::<proxy::forward::AnswerTimeout>() => {
            tracing::warn!(route = %route.prefix, %error, "upstream answer timed out");
            // The upstream has the request and may still act on it: no invitation to retry.
            let detail =
                format!("The upstream of {} took the request but did not begin answering in time.", route.prefix);
            (StatusCode::GATEWAY_TIMEOUT, detail).into_response()
        }
        Err(error) => {
            tracing::warn!(route = %route.prefix, %error, "upstream unreachable");
            let detail = format!("The upstream of {} did not answer; try again shortly.", route.prefix);
            let mut response = (StatusCode::BAD_GATEWAY, detail).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_plain_paths_clear_of_keywards_own() {
        for good in ["/api/jobs", "/models", "/api/v2", "/a/b-c.d_e~f"] {
            assert_eq!(check_prefix(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/",
            "api/jobs",
            "/api/jobs/",
            "/api/../v1",
            "/api/v1",
            "/api/v1/users",
            "/auth",
            "/api",
            "/a b",
            "/a/*",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
        assert!(is_under("/api/jobs", "/api/jobs"));
        assert!(is_under("/api/jobs", "/api/jobs/v1"));
        assert!(!is_under("/api/jobs", "/api/jobsx"));
    }

    #[test]
    fn identity_and_forwarding_headers_are_dropped_however_they_are_spelled() {
        for spoofed in [
            "x-keyward-user-id",
            "x_keyward_user_id",
            "x-keyward_roles",
            "x-keyward-anything",
            "x-forwarded-for",
            "x_forwarded_host",
            "x_real_ip",
            "x.keyward.roles",
            "x~keyward-email",
            "x-forwarded.for",
            "proxy",
            "x-original-url",
            "metadata-flavor",
            "metadata",
        ] {
            assert!(is_spoofable(spoofed), "{spoofed}");
        }
        for kept in
            ["content-type", "x-request-id", "x-forwarded", "x-keywar", "metadata-flavour", "x-real-ips", "proxy-x"]
        {
            assert!(!is_spoofable(kept), "{kept}");
        }
    }
}
