//! The realm document, discovery, JWKS, userinfo, introspection and revocation.

use crate::authn::Caller;
use crate::extract::ClientIp;
use crate::oidc::errors::{OAuthFailure, from_auth_failure};
use crate::oidc::keys::{JWKS_MAX_AGE_SECS, ensure_realm_key};
use crate::oidc::tokens::{
    AcceptedToken, is_api_token, issuer, looks_like_jwt, verify_access_token, verify_for_revocation,
};
use crate::state::{AppState, RealmInfo};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward_core::Role;
use proto::oidc::{Discovery, Introspection, Jwks, RealmDocument, TokenForm, UserInfo};
use std::net::IpAddr;
use std::sync::Arc;
use store::{NewAuditEvent, RevokedTokenRow};
use time::OffsetDateTime;

pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const GRANT_PASSWORD: &str = "password";

/// The realm named in the path, if it exists and is enabled; anything else is 404.
pub fn path_realm(state: &AppState, name: &str) -> Result<Arc<RealmInfo>, OAuthFailure> {
    state
        .realm_by_name(name)
        .filter(|realm| realm.enabled)
        .ok_or_else(|| OAuthFailure::new(StatusCode::NOT_FOUND, "not_found", format!("No realm named {name:?}.")))
}

async fn realm_with_key(state: &AppState, name: &str) -> Result<Arc<RealmInfo>, OAuthFailure> {
    let realm = path_realm(state, name)?;
    ensure_realm_key(state, realm.id, &realm.name).await.map_err(OAuthFailure::internal)?;
    Ok(realm)
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `GET /auth/realms/{realm}`: Keycloak's realm document.
pub async fn realm_document(
    State(state): State<AppState>,
    Path(realm): Path<String>,
) -> Result<Response, OAuthFailure> {
    let realm = realm_with_key(&state, &realm).await?;
    let issuer = issuer(&state, &realm.name);
    let key = state.keys.signing_key(realm.id, now_secs());
    let document = RealmDocument {
        realm: realm.name.clone(),
        public_key: key.map(|key| key.public_key_base64()).unwrap_or_default(),
        token_service: format!("{issuer}/protocol/openid-connect"),
        account_service: format!("{issuer}/account"),
        tokens_not_before: realm.token_settings.tokens_not_before,
    };
    Ok(Json(document).into_response())
}

/// `GET /auth/realms/{realm}/.well-known/openid-configuration`.
pub async fn discovery(State(state): State<AppState>, Path(realm): Path<String>) -> Result<Response, OAuthFailure> {
    let realm = path_realm(&state, &realm)?;
    let issuer = issuer(&state, &realm.name);
    let endpoint = |path: &str| format!("{issuer}/protocol/openid-connect/{path}");
    let strings = |items: &[&str]| items.iter().map(|item| item.to_string()).collect::<Vec<_>>();
    let auth_methods = strings(&["client_secret_basic", "client_secret_post"]);
    let document = Discovery {
        authorization_endpoint: endpoint("auth"),
        token_endpoint: endpoint("token"),
        userinfo_endpoint: endpoint("userinfo"),
        jwks_uri: endpoint("certs"),
        introspection_endpoint: endpoint("token/introspect"),
        revocation_endpoint: endpoint("revoke"),
        issuer,
        grant_types_supported: strings(&[GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE, GRANT_PASSWORD]),
        response_types_supported: strings(&["token"]),
        subject_types_supported: strings(&["public"]),
        id_token_signing_alg_values_supported: keyward_core::jwt::SigningAlg::ALL
            .iter()
            .map(|alg| alg.as_str().to_string())
            .collect(),
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        introspection_endpoint_auth_methods_supported: strings(&["client_secret_basic", "bearer"]),
        revocation_endpoint_auth_methods_supported: auth_methods,
        scopes_supported: strings(&["openid", "profile", "email"]),
        claims_supported: strings(&[
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "client_id",
            "azp",
            "sid",
            "scope",
            "name",
            "preferred_username",
            "email",
            "groups",
        ]),
    };
    Ok(Json(document).into_response())
}

/// `GET /auth/realms/{realm}/protocol/openid-connect/certs`: the published keys.
pub async fn jwks(State(state): State<AppState>, Path(realm): Path<String>) -> Result<Response, OAuthFailure> {
    let realm = realm_with_key(&state, &realm).await?;
    let keys = state.keys.published(realm.id, now_secs()).iter().map(|key| key.jwk.clone()).collect();
    let mut response = Json(Jwks { keys }).into_response();
    let cache = format!("public, max-age={JWKS_MAX_AGE_SECS}");
    if let Ok(value) = HeaderValue::from_str(&cache) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    Ok(response)
}

/// `GET …/protocol/openid-connect/auth`: keyward issues tokens through the token
/// endpoint only; browser flows come with the portal.
pub async fn authorize(Path(realm): Path<String>) -> OAuthFailure {
    OAuthFailure::new(
        StatusCode::BAD_REQUEST,
        "unsupported_response_type",
        format!(
            "Realm {realm:?} issues tokens through its token endpoint only (client_credentials, token exchange, \
             password); there is no browser authorization flow yet."
        ),
    )
}

/// The bearer access token of a userinfo call, verified for the path's realm.
fn bearer_token(state: &AppState, headers: &HeaderMap, realm: &RealmInfo) -> Result<AcceptedToken, OAuthFailure> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(OAuthFailure::invalid_token)?;
    let accepted = verify_access_token(state, token, None, now_secs()).map_err(|_| OAuthFailure::invalid_token())?;
    if accepted.realm.id != realm.id {
        return Err(OAuthFailure::invalid_token());
    }
    Ok(accepted)
}

/// What tokens and userinfo say about a principal besides its ids.
pub struct Profile {
    pub name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// The user's attributes, for claim mappers.
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// The profile of a principal: display name, email, group names (only those among
/// `group_ceiling`'s ids, when the credential has one) and attributes.
pub async fn profile(
    state: &AppState,
    principal_id: i64,
    group_ceiling: Option<&[i64]>,
) -> store::StoreResult<Profile> {
    let user = state.store.user_by_id(principal_id).await?;
    let groups = state.store.groups_of_user(principal_id).await?;
    let admitted = |group: &store::GroupRow| group_ceiling.is_none_or(|ids| ids.contains(&group.id));
    let groups = groups.into_iter().filter(admitted).map(|group| group.name).collect();
    let name = crate::api::users::full_name(&user.first_name, &user.last_name);
    Ok(Profile {
        name: (!name.is_empty()).then_some(name),
        email: (!user.email.is_empty()).then_some(user.email),
        groups,
        attributes: user.attributes,
    })
}

/// `GET|POST …/protocol/openid-connect/userinfo`.
pub async fn userinfo(
    State(state): State<AppState>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> Result<Json<UserInfo>, OAuthFailure> {
    let realm = path_realm(&state, &realm)?;
    let accepted = bearer_token(&state, &headers, &realm)?;
    let Profile { name, email, groups, .. } =
        profile(&state, accepted.principal.id, accepted.ceiling.groups.as_deref()).await?;
    Ok(Json(UserInfo {
        sub: accepted.principal.public_id.clone(),
        preferred_username: accepted.principal.username.clone(),
        name,
        email,
        groups,
    }))
}

/// The caller of introspection or revocation: a keyward credential of the realm, as a
/// Bearer token or API-key header, or as the secret of HTTP Basic client authentication.
/// Not a key bound to an audience. An access token narrowed by `scope` only identifies its
/// subject: it may ask about access tokens and revoke its subject's own, never act with
/// the subject's admin role (introspect keys, revoke other people's tokens).
fn resource_caller(
    state: &AppState,
    headers: &HeaderMap,
    client_ip: IpAddr,
    realm: &RealmInfo,
) -> Result<Caller, OAuthFailure> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, encoded)| encoded.trim().to_string());
    let caller = match basic {
        Some(encoded) => {
            let (_, secret) = decode_basic(&encoded).ok_or_else(OAuthFailure::invalid_client)?;
            state.authenticate_credential(&secret, client_ip)
        }
        None => state.authenticate(headers, client_ip),
    }
    .map_err(|failure| from_auth_failure(failure, OAuthFailure::invalid_client()))?;
    if caller.realm_id != realm.id || caller.audience.is_some() {
        return Err(OAuthFailure::invalid_client());
    }
    let mut caller = caller;
    if caller.access_token.as_ref().is_some_and(|token| token.claims.scope.is_some()) {
        caller.ceiling.roles = Some(keyward_core::RoleSet::EMPTY);
    }
    Ok(caller)
}

type TokenFormResult = Result<axum::Form<TokenForm>, axum::extract::rejection::FormRejection>;

/// What introspection and revocation start from: the path's realm, the authenticated
/// caller, and the `token` parameter.
fn token_request(
    state: &AppState,
    realm: &str,
    headers: &HeaderMap,
    client_ip: IpAddr,
    form: TokenFormResult,
) -> Result<(Arc<RealmInfo>, Caller, String), OAuthFailure> {
    let realm = path_realm(state, realm)?;
    let caller = resource_caller(state, headers, client_ip, &realm)?;
    let axum::Form(form) = form.map_err(|rejection| OAuthFailure::invalid_request(rejection.body_text()))?;
    let token = form
        .token
        .filter(|token| !token.is_empty())
        .ok_or_else(|| OAuthFailure::invalid_request("token is required"))?;
    Ok((realm, caller, token))
}

/// Decodes HTTP Basic client credentials: base64 of `id:secret`, each form-urlencoded
/// (RFC 6749 §2.3.1).
pub fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let decoded = STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

fn form_decode(text: &str) -> String {
    form_urlencoded::parse(format!("v={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// `POST …/protocol/openid-connect/token/introspect` (RFC 7662). Any keyward credential
/// of the realm may ask about access tokens; only realm admins about opaque credentials.
/// Active ones answer their facts; everything else answers `{"active": false}`.
pub async fn introspect(
    State(state): State<AppState>,
    Path(realm): Path<String>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    form: TokenFormResult,
) -> Result<Json<Introspection>, OAuthFailure> {
    let (realm, caller, token) = token_request(&state, &realm, &headers, client_ip, form)?;
    let now = now_secs();
    // API tokens are credentials with records, answered like opaque ones below.
    if looks_like_jwt(&token) && !is_api_token(&state, &token, now) {
        let Ok(accepted) = verify_access_token(&state, &token, None, now) else {
            return Ok(Json(Introspection::default()));
        };
        if accepted.realm.id != realm.id {
            return Ok(Json(Introspection::default()));
        }
        let claims = &accepted.token.claims;
        return Ok(Json(Introspection {
            active: true,
            scope: claims.scope.as_deref().map(str::to_string),
            client_id: Some(claims.azp.to_string()),
            username: Some(accepted.principal.username.clone()),
            token_type: Some("Bearer".to_string()),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            nbf: claims.nbf,
            sub: Some(claims.sub.to_string()),
            aud: Some(claims.aud.clone()),
            iss: Some(claims.iss.to_string()),
            jti: Some(claims.jti.to_string()),
            sid: claims.sid.as_deref().map(str::to_string),
        }));
    }
    // Opaque credentials are secrets, not signed statements: only realm admins may ask
    // about them, or introspection would be an unthrottled oracle for leaked keys. An API
    // token is answered as it would be if the asking client presented it (its IP filter
    // is checked against the asking client's address).
    if !caller.has_role(Role::Admin) {
        return Ok(Json(Introspection::default()));
    }
    match state.check_credential(&token, client_ip) {
        Ok(subject) if subject.realm_id == realm.id => Ok(Json(Introspection {
            active: true,
            username: subject.principal.as_ref().map(|principal| principal.username.clone()),
            sub: subject.principal.as_ref().map(|principal| principal.public_id.clone()),
            token_type: Some(subject.kind.as_str().to_string()),
            exp: subject.credential_expires_at,
            iss: Some(issuer(&state, &realm.name)),
            aud: subject.audience.as_deref().map(|audience| proto::oidc::Audience::One(audience.into())),
            ..Introspection::default()
        })),
        _ => Ok(Json(Introspection::default())),
    }
}

/// `POST …/protocol/openid-connect/revoke` (RFC 7009). Revokes an access token by its
/// `jti` on every node; the caller must be the token's subject or a realm admin. An
/// invalid, expired or unknown token answers 200, as the RFC asks.
pub async fn revoke(
    State(state): State<AppState>,
    Path(realm): Path<String>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    form: TokenFormResult,
) -> Result<StatusCode, OAuthFailure> {
    let (realm, caller, token) = token_request(&state, &realm, &headers, client_ip, form)?;
    if is_api_token(&state, &token, now_secs()) {
        return Err(OAuthFailure::new(
            StatusCode::BAD_REQUEST,
            "unsupported_token_type",
            "This is an API token. Expire it with POST /api/v1/api-tokens/{id}/expire, disable it, or delete it.",
        ));
    }
    if !looks_like_jwt(&token) {
        if keyward_core::secret::check_format(&token).is_ok() {
            return Err(OAuthFailure::new(
                StatusCode::BAD_REQUEST,
                "unsupported_token_type",
                "This endpoint revokes access tokens. Revoke API keys and service-account tokens through \
                 /api/v1/users/me/api-keys/{id} and /api/v1/service-accounts/{id}/tokens/{tokenId}.",
            ));
        }
        return Ok(StatusCode::OK);
    }
    let Ok(verified) = verify_for_revocation(&state, &token, now_secs()) else {
        return Ok(StatusCode::OK);
    };
    if verified.realm_id != realm.id {
        return Ok(StatusCode::OK);
    }
    let own = caller.principal.as_ref().is_some_and(|principal| principal.public_id == verified.claims.sub);
    if !own && !caller.has_role(Role::Admin) {
        return Err(OAuthFailure::new(
            StatusCode::FORBIDDEN,
            "unauthorized_client",
            "Only the token's subject or a realm admin may revoke it.",
        ));
    }
    let claims = &verified.claims;
    let revoked = RevokedTokenRow {
        realm_id: realm.id,
        kind: "jti".to_string(),
        value: claims.jti.to_string(),
        expires_at: store::from_ms(claims.exp.saturating_add(keyward_core::jwt::LEEWAY_SECS).saturating_mul(1000)),
    };
    let now = OffsetDateTime::now_utc();
    let mut mutation = state.store.begin().await?;
    mutation.revoke_token(&revoked, now).await?;
    mutation
        .audit(NewAuditEvent {
            realm: realm.name.clone(),
            at: now,
            actor: caller.actor(),
            action: "access_token.revoke".to_string(),
            target: format!("access_token:{}", claims.jti),
            client_ip: client_ip.to_string(),
            result: "ok".to_string(),
            detail: format!("subject {}", claims.sub),
        })
        .await?;
    mutation.commit().await?;
    // Apply it here before answering; other nodes follow within a poll.
    if let Err(error) = crate::feed::catch_up(&state).await {
        tracing::warn!(%error, "change feed catch-up after revocation failed");
        state.revocations.add(&revoked);
    }
    Ok(StatusCode::OK)
}
