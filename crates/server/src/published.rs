//! The gateway for published API services: `/public/{infrastructure}/{service}/{path…}`
//! (default realm) and `/realms/{realm}/public/{infrastructure}/{service}/{path…}` forward
//! to the enabled deployment's upstream through the same engine as the upstream routes
//! (`proxy::forward`), after the deployment's auth: one of its `kwd_` keys, a JWT as a
//! resource server checks it, or nothing when it is explicitly public.
//!
//! Every process keeps the routing table in memory, rebuilt when the change feed names
//! the gateway, so a call never waits on the database. The caller's credential headers
//! and any identity headers they sent are stripped; keyward's identity headers are added.

use crate::api::auth_check::{
    CREDENTIAL_KIND_HEADER, EMAIL_HEADER, KIND_HEADER, REALM_HEADER, SUBJECT_HEADER, USERNAME_HEADER, identity_headers,
};
use crate::authn::{AuthFailure, Caller};
use crate::deployer::{GatewayCheck, JwtCheck, JwtSource};
use crate::error::{ApiError, problem_response};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use keyward_core::CredentialKind;
use keyward_core::auth::AuthRefusal;
use proxy::forward::Upstream;
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use store::StoreResult;
use time::OffsetDateTime;

/// One deployment as the gateway serves it.
#[derive(Debug)]
pub struct PublishedRoute {
    pub deployment_public_id: String,
    pub enabled: bool,
    pub upstream: Upstream,
    /// `None`: the settings name something that no longer exists (a deleted realm); every
    /// call is refused rather than let through.
    pub check: Option<GatewayCheck>,
}

/// Routes by realm, infrastructure name and service name.
#[derive(Default)]
pub struct PublishedTable {
    routes: RwLock<HashMap<(i64, String, String), Arc<PublishedRoute>>>,
}

impl PublishedTable {
    fn find(&self, realm_id: i64, infrastructure: &str, service: &str) -> Option<Arc<PublishedRoute>> {
        let routes = self.routes.read().ok()?;
        routes.get(&(realm_id, infrastructure.to_string(), service.to_string())).cloned()
    }
}

/// Rebuilds the whole table from the store. Deployments are few (hundreds at most), so
/// one read of all of them is simpler and safer than patching entries.
pub async fn reload(state: &AppState) -> StoreResult<()> {
    let mut routes = HashMap::new();
    for row in state.store.list_deployments(None).await? {
        // Checked when deployed and when the list changes; checked again here so that no
        // path around those checks (a race, a row written by hand) gets a call through.
        if !crate::api::infrastructures::allows_upstream(&row.allowed_upstreams, &row.upstream) {
            tracing::warn!(deployment = %row.public_id, "upstream outside its infrastructure's allowed list; not served");
            continue;
        }
        let upstream = match Upstream::parse(&row.upstream) {
            Ok(upstream) => upstream,
            Err(error) => {
                tracing::warn!(deployment = %row.public_id, %error, "deployment has an unusable upstream; not served");
                continue;
            }
        };
        let check = crate::deployer::resolve(
            state,
            row.realm_id,
            row.auth.as_deref(),
            &row.service_auth,
            &row.service_public_id,
            &row.public_id,
        );
        let route = PublishedRoute { deployment_public_id: row.public_id, enabled: row.enabled, upstream, check };
        routes.insert((row.realm_id, row.infrastructure_name, row.service_name), Arc::new(route));
    }
    let in_use: std::collections::HashSet<&str> = routes
        .values()
        .filter_map(|route| match &route.check {
            Some(GatewayCheck::Jwt(jwt)) => match &jwt.source {
                JwtSource::Remote { jwks_url, .. } => Some(jwks_url.as_str()),
                JwtSource::Realm { .. } => None,
            },
            _ => None,
        })
        .collect();
    state.remote_jwks.retain_urls(&in_use);
    if let Ok(mut table) = state.published.routes.write() {
        *table = routes;
    }
    Ok(())
}

/// Answer headers a published service may not send: they would apply to keyward's whole
/// origin, beside its API and portal, not to the one answer (its cookies; clearing the
/// browser's data for the origin, which logs people out of the portal; reporting every
/// later request of the origin elsewhere; HTTPS and alternative-service policy; a
/// service worker's scope; a timed redirect; client hints, agent clustering and login
/// status, which browsers keep per origin). Lower case, as `HeaderName`s are.
const ORIGIN_WIDE_HEADERS: [&str; 13] = [
    "set-cookie",
    "clear-site-data",
    "nel",
    "report-to",
    "reporting-endpoints",
    "strict-transport-security",
    "alt-svc",
    "service-worker-allowed",
    "refresh",
    "accept-ch",
    "critical-ch",
    "origin-agent-cluster",
    "set-login",
];

/// The parts of a gateway path: realm (None: the default), infrastructure, service and
/// the rest of the path (with its leading slash, or empty).
fn split_path(path: &str) -> Option<(Option<&str>, &str, &str, &str)> {
    let (realm, rest) = match path.strip_prefix("/realms/") {
        Some(rest) => {
            let (realm, rest) = rest.split_once('/')?;
            (Some(realm), rest.strip_prefix("public/")?)
        }
        None => (None, path.strip_prefix("/public/")?),
    };
    let (infrastructure, rest) = rest.split_once('/')?;
    let (service, tail) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    if infrastructure.is_empty() || service.is_empty() {
        return None;
    }
    Some((realm, infrastructure, service, tail))
}

fn not_deployed() -> Response {
    problem_response(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "No enabled deployment of that API service on that infrastructure.".to_string(),
        None,
    )
}

fn unauthenticated(failure: AuthFailure) -> Response {
    match failure {
        AuthFailure::Refused(AuthRefusal::IssuerUnavailable) => issuer_unavailable(),
        AuthFailure::Refused(_) => ApiError::Unauthenticated.into_response(),
        AuthFailure::Throttled { retry_after_secs } => ApiError::Throttled { retry_after_secs }.into_response(),
        AuthFailure::Unavailable => ApiError::Unavailable.into_response(),
    }
}

fn issuer_unavailable() -> Response {
    let mut response = problem_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "issuer-unavailable",
        "Issuer unavailable",
        "The token issuer's keys could not be fetched; try again shortly.".to_string(),
        None,
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// Serves a gateway path.
pub async fn serve(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let Some((realm_name, infrastructure, service, tail)) = split_path(&path) else {
        return not_deployed();
    };
    let realm = match realm_name {
        Some(name) => state.realm_by_name(name),
        None => state.realm_by_name(&state.config.default_realm),
    };
    let Some(realm) = realm.filter(|realm| realm.enabled) else { return not_deployed() };
    let Some(route) = state.published.find(realm.id, infrastructure, service).filter(|route| route.enabled) else {
        return not_deployed();
    };
    if let Err(detail) = keyward_core::deployer::check_forwarded_path(tail) {
        return ApiError::BadRequest(format!("Not forwarded: {detail}.")).into_response();
    }
    let client_ip = crate::extract::client_ip(&parts, &state);
    let identity = match &route.check {
        Some(GatewayCheck::Public) => Ok(Arc::default()),
        Some(GatewayCheck::ApiKeys { audience }) => {
            state.authenticate_gateway_key(&parts.headers, client_ip, audience).map(|caller| {
                if caller.principal.is_none() && caller.realm_id == realm.id {
                    realm.deployment_key_identity.get_or_init(|| identity_headers(&caller)).clone()
                } else {
                    identity_headers(&caller)
                }
            })
        }
        Some(GatewayCheck::Jwt(check)) => authenticate_jwt(&state, check, &parts.headers, client_ip, &realm.name).await,
        None => Err(AuthFailure::Refused(AuthRefusal::BadToken)),
    };
    let identity = match identity {
        Ok(identity) => identity,
        Err(failure) => return unauthenticated(failure),
    };
    let mut forwarded = tail.to_string();
    if forwarded.is_empty() {
        forwarded.push('/');
    }
    if let Some(query) = parts.uri.query() {
        forwarded.push('?');
        forwarded.push_str(query);
    }
    parts.uri = match forwarded.parse::<Uri>() {
        Ok(uri) => uri,
        Err(_) => return ApiError::BadRequest("The request path is not a valid URI.".to_string()).into_response(),
    };
    crate::gateway::clean_forwarded_headers(&state, &mut parts.headers, client_ip);
    // No cookie at all: a published service cannot set one (its `Set-Cookie` is dropped
    // below), so every cookie a browser sends here is another application's of this origin.
    parts.headers.remove(header::COOKIE);
    match state.forwarder.forward(&route.upstream, parts, proxy::forward::boxed(body), &identity).await {
        Ok(response) => {
            // Published services are answered from keyward's own origin, beside its API
            // and portal: their content never runs script there nor sets its cookies.
            let mut response = response.map(Body::new);
            let headers = response.headers_mut();
            proxy::forward::remove_where(headers, |name| ORIGIN_WIDE_HEADERS.contains(&name.as_str()));
            headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
            response
        }
        Err(error) if error.is::<proxy::forward::AnswerTimeout>() => {
            tracing::warn!(deployment = %route.deployment_public_id, %error, "deployment upstream answer timed out");
            // The upstream has the request and may still act on it: no invitation to retry.
            problem_response(
                StatusCode::GATEWAY_TIMEOUT,
                "gateway-timeout",
                "Gateway timeout",
                format!(
                    "The upstream of {service} on {infrastructure} took the request but did not begin answering in \
                     time."
                ),
                None,
            )
        }
        Err(error) => {
            tracing::warn!(deployment = %route.deployment_public_id, %error, "deployment upstream unreachable");
            let mut response = problem_response(
                StatusCode::BAD_GATEWAY,
                "bad-gateway",
                "Bad gateway",
                format!("The upstream of {service} on {infrastructure} did not answer; try again shortly."),
                None,
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

/// Checks a JWT against a deployment's settings and answers the identity headers to
/// forward. Refusals are throttled and audited like every other.
async fn authenticate_jwt(
    state: &AppState,
    check: &JwtCheck,
    headers: &HeaderMap,
    client_ip: IpAddr,
    realm_name: &str,
) -> Result<Arc<HeaderMap>, AuthFailure> {
    let now = OffsetDateTime::now_utc();
    let now_secs = now.unix_timestamp();
    if let Some(retry_after_secs) = state.throttle.retry_after(client_ip, now_secs) {
        crate::metrics::authentication("unknown", "throttled");
        return Err(AuthFailure::Throttled { retry_after_secs });
    }
    let token = match crate::authn::bearer_token(headers) {
        Ok(Some(token)) => token,
        Ok(None) => {
            state.note_refusal(AuthRefusal::Missing, None, None, None, client_ip, now);
            return Err(AuthFailure::Refused(AuthRefusal::Missing));
        }
        Err(refusal) => {
            state.note_refusal(refusal, None, Some(realm_name.to_string()), None, client_ip, now);
            return Err(AuthFailure::Refused(refusal));
        }
    };
    let verified = match &check.source {
        JwtSource::Realm { realm_id } => {
            if state.feed.is_stale(state.config.max_index_staleness) {
                return Err(AuthFailure::Unavailable);
            }
            verify_realm_jwt(state, check, *realm_id, token, client_ip, now_secs)
        }
        JwtSource::Remote { issuer, jwks_url } => {
            verify_remote_jwt(state, check, issuer, jwks_url, token, now_secs).await
        }
    };
    match verified {
        Ok(identity) => {
            crate::metrics::authenticated(CredentialKind::AccessToken);
            Ok(identity)
        }
        // The issuer being down is not the caller's failure: no throttling, no audit
        // event per call (each failed fetch is logged).
        Err(AuthRefusal::IssuerUnavailable) => {
            crate::metrics::authentication(CredentialKind::AccessToken.as_str(), "unavailable");
            Err(AuthFailure::Refused(AuthRefusal::IssuerUnavailable))
        }
        Err(refusal) => {
            let kind = Some(CredentialKind::AccessToken);
            state.note_refusal(refusal, kind, Some(realm_name.to_string()), None, client_ip, now);
            Err(AuthFailure::Refused(refusal))
        }
    }
}

/// One claim of a keyward token, as JSON, for a deployment's required claims: the value
/// is borrowed where the token holds it as JSON already (claim mappers' claims, in
/// `extra`), so a call does not copy or serialise the token.
fn keyward_claim<'a>(claims: &'a proto::oidc::AccessTokenClaims, name: &str) -> Option<Cow<'a, serde_json::Value>> {
    use serde_json::Value;
    let text = |value: &str| Some(Cow::Owned(Value::String(value.to_string())));
    match name {
        "iss" => text(&claims.iss),
        "sub" => text(&claims.sub),
        "azp" => text(&claims.azp),
        "client_id" => text(&claims.client_id),
        "preferred_username" => text(&claims.preferred_username),
        "email" => claims.email.as_deref().and_then(text),
        "name" => claims.name.as_deref().and_then(text),
        "scope" => claims.scope.as_deref().and_then(text),
        "sid" => claims.sid.as_deref().and_then(text),
        "groups" => Some(Cow::Owned(Value::from(claims.groups.clone()))),
        "aud" => serde_json::to_value(&claims.aud).ok().map(Cow::Owned),
        other => claims.extra.get(other).map(Cow::Borrowed),
    }
}

/// A keyward realm's access token: the one verifier (signature, kid, times, revocation,
/// subject enabled), then this deployment's audience, algorithms and required claims.
fn verify_realm_jwt(
    state: &AppState,
    check: &JwtCheck,
    realm_id: i64,
    token: &str,
    client_ip: IpAddr,
    now: i64,
) -> Result<Arc<HeaderMap>, AuthRefusal> {
    if !crate::oidc::tokens::looks_like_jwt(token) {
        return Err(AuthRefusal::Malformed);
    }
    let signed = crate::oidc::tokens::signed_token(state, token, now).map_err(|refused| refused.refusal)?;
    // Another realm's token is another issuer's.
    if signed.realm_id != realm_id {
        return Err(AuthRefusal::BadToken);
    }
    if !crate::deployer::accepts(check, signed.alg) {
        return Err(AuthRefusal::BadToken);
    }
    let accepted = crate::oidc::tokens::accept_access_token(state, signed, Some(&check.audience), now)
        .map_err(|refused| refused.refusal)?;
    let claims = &accepted.token.claims;
    keyward_core::resource_server::required_claims_hold_by(|name| keyward_claim(claims, name), &check.required_claims)?;
    let caller = Caller {
        realm_id: accepted.realm.id,
        realm_name: accepted.realm.name.clone(),
        credential_id: 0,
        kind: CredentialKind::AccessToken,
        credential_expires_at: Some(accepted.token.claims.exp),
        audience: None,
        principal: Some(accepted.principal),
        client_ip,
        access_token: Some(accepted.token),
        credential_head: None,
        api_token: None,
        ceiling: accepted.ceiling,
    };
    Ok(identity_headers(&caller))
}

/// An outside issuer's token: signature with its JWKS (fetched, cached and refreshed by
/// `remote_jwks`, never waiting past its timeout), then issuer, audience, times and the
/// required claims.
async fn verify_remote_jwt(
    state: &AppState,
    check: &JwtCheck,
    issuer: &str,
    jwks_url: &str,
    token: &str,
    now: i64,
) -> Result<Arc<HeaderMap>, AuthRefusal> {
    let rule = keyward_core::resource_server::ClaimRule {
        issuer,
        audience: &check.audience,
        required_claims: &check.required_claims,
    };
    let required: Vec<&str> = check.required_claims.iter().map(|(name, _)| name.as_str()).collect();
    let claims = state
        .remote_jwks
        .verify_checked(jwks_url, &check.remote_algorithms, token, now, &required, |claims| {
            keyward_core::resource_server::check_claims(claims, &rule, now)
        })
        .await?;
    Ok(Arc::new(remote_identity(&claims)))
}

/// Identity headers for an outside issuer's token: its subject and, when present and
/// usable as header values, its username and email.
fn remote_identity(claims: &serde_json::Map<String, serde_json::Value>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: Option<&str>| {
        if let Some(value) = value.and_then(|value| HeaderValue::from_str(value).ok()) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
    put(SUBJECT_HEADER, text("sub"));
    put(USERNAME_HEADER, text("preferred_username"));
    put(EMAIL_HEADER, text("email"));
    put(KIND_HEADER, Some("external"));
    put(REALM_HEADER, text("iss"));
    put(CREDENTIAL_KIND_HEADER, Some(CredentialKind::AccessToken.as_str()));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_paths_name_realm_infrastructure_service_and_the_rest() {
        assert_eq!(split_path("/public/dev/orders"), Some((None, "dev", "orders", "")));
        assert_eq!(split_path("/public/dev/orders/"), Some((None, "dev", "orders", "/")));
        assert_eq!(split_path("/public/dev/orders/v1/predict"), Some((None, "dev", "orders", "/v1/predict")));
        assert_eq!(split_path("/realms/acme/public/prod/orders/x"), Some((Some("acme"), "prod", "orders", "/x")));
        for bad in ["/public/dev", "/public/dev/", "/public//orders", "/realms/acme/dev/orders", "/publicx/a/b"] {
            assert_eq!(split_path(bad), None, "{bad}");
        }
    }

    /// Required claims are read from the token's fields without serialising it whole; the
    /// answer must be what the serialised token would say.
    #[test]
    fn required_claim_values_match_the_serialised_token() {
        let claims: proto::oidc::AccessTokenClaims = serde_json::from_value(serde_json::json!({
            "iss": "https://kw/auth/realms/default", "sub": "u1", "aud": ["fraud", "keyward"], "exp": 2, "iat": 1,
            "jti": "j", "client_id": "c", "azp": "c", "preferred_username": "scorer", "email": "s@acme.example",
            "groups": ["ds", "ops"], "organization": "acme", "tier": 3
        }))
        .unwrap();
        let whole = serde_json::to_value(&claims).unwrap();
        let names = [
            "iss",
            "sub",
            "aud",
            "azp",
            "client_id",
            "preferred_username",
            "email",
            "groups",
            "organization",
            "tier",
            "absent",
        ];
        for name in names {
            assert_eq!(keyward_claim(&claims, name).as_deref(), whole.get(name), "{name}");
        }
    }
}
