//! `POST /auth/realms/{realm}/protocol/openid-connect/token`: the grants.
//!
//! - `client_credentials`: the client secret is a service-account token (`kws_`); the
//!   client id, when given, is the account's username or id.
//! - RFC 8693 token exchange: any valid keyward credential of the realm that belongs to a
//!   user or service account is the subject token; `audience` and `scope` can only narrow
//!   what the subject holds, and the new token never outlives the subject.
//! - `password`: a person's username and password (the CLI login). Service accounts are
//!   refused with 403: they have no password.

use crate::authn::Caller;
use crate::extract::ClientIp;
use crate::index::PrincipalInfo;
use crate::login::LoginRefusal;
use crate::oidc::clients::ClientInfo;
use crate::oidc::endpoints::{
    GRANT_CLIENT_CREDENTIALS, GRANT_PASSWORD, GRANT_TOKEN_EXCHANGE, Profile, decode_basic, path_realm, profile,
};
use crate::oidc::errors::{OAuthFailure, from_auth_failure};
use crate::oidc::tokens::{API_AUDIENCE, issuer, sign_claims};
use crate::state::{AppState, RealmInfo};
use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use keyward_core::CredentialKind;
use proto::oidc::{AccessTokenClaims, Audience, TokenRequest, TokenResponse};
use std::net::IpAddr;
use std::sync::Arc;
use store::NewAuditEvent;
use time::OffsetDateTime;

const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

pub async fn token(
    State(state): State<AppState>,
    Path(realm): Path<String>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Result<Json<TokenResponse>, OAuthFailure> {
    let realm = path_realm(&state, &realm)?;
    let Form(form) = form.map_err(|rejection| {
        OAuthFailure::invalid_request(format!(
            "Send the parameters as application/x-www-form-urlencoded: {}",
            rejection.body_text()
        ))
    })?;
    let client = client_credentials(&headers, &form)?;
    let ctx = GrantContext { state: &state, realm: &realm, client_ip };
    let issued = match form.grant_type.as_deref() {
        None | Some("") => return Err(OAuthFailure::invalid_request("grant_type is required")),
        Some(GRANT_CLIENT_CREDENTIALS) => ctx.client_credentials(client, &form).await?,
        Some(GRANT_TOKEN_EXCHANGE) => ctx.token_exchange(client, &form).await?,
        Some(GRANT_PASSWORD) => ctx.password(&form).await?,
        Some(other) => {
            return Err(OAuthFailure::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                    "grant_type {other:?} is not supported; use {GRANT_CLIENT_CREDENTIALS}, {GRANT_TOKEN_EXCHANGE} \
                     or {GRANT_PASSWORD}"
                ),
            ));
        }
    };
    Ok(Json(issued))
}

/// The client's id and secret, from HTTP Basic or the form (not both).
struct ClientCredentials {
    id: Option<String>,
    secret: String,
}

fn client_credentials(headers: &HeaderMap, form: &TokenRequest) -> Result<Option<ClientCredentials>, OAuthFailure> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"));
    match (basic, &form.client_secret) {
        (Some(_), Some(_)) => Err(OAuthFailure::invalid_request(
            "Authenticate the client one way: HTTP Basic or client_secret, not both.",
        )),
        (Some((_, encoded)), None) => {
            let (id, secret) = decode_basic(encoded.trim()).ok_or_else(OAuthFailure::invalid_client)?;
            Ok(Some(ClientCredentials { id: (!id.is_empty()).then_some(id), secret }))
        }
        (None, Some(secret)) => Ok(Some(ClientCredentials { id: form.client_id.clone(), secret: secret.clone() })),
        (None, None) => Ok(None),
    }
}

/// Splits a space-separated parameter; an empty one is absent.
fn words(text: Option<&str>) -> Option<Vec<&str>> {
    let words: Vec<&str> = text?.split(' ').filter(|word| !word.is_empty()).collect();
    (!words.is_empty()).then_some(words)
}

fn valid_audience(audience: &str) -> bool {
    (1..=128).contains(&audience.len()) && audience.bytes().all(|byte| byte.is_ascii_graphic())
}

fn valid_scope(scope: &str) -> bool {
    (1..=64).contains(&scope.len())
        && scope.bytes().all(|byte| byte.is_ascii_graphic() && byte != b'"' && byte != b'\\')
}

/// What a new access token is for.
struct Issue<'a> {
    grant: &'static str,
    principal: &'a PrincipalInfo,
    audience: Vec<String>,
    scope: Vec<String>,
    azp: String,
    sid: Option<String>,
    /// The source credential's reference (`cid`), for tokens minted from a credential.
    cid: Option<String>,
    /// The token never outlives this (unix seconds), e.g. its subject credential.
    not_after: Option<i64>,
    actor: String,
    /// The registered client the token is issued to, if any: its lifetime, audiences
    /// and claim mappers apply.
    client: Option<Arc<ClientInfo>>,
    /// The audience is what the subject token holds or what was asked for in an exchange:
    /// never replaced by the client's default audience (that would widen the subject).
    audience_fixed: bool,
    /// The groups (ids) the subject credential acts through at most (a run's, see
    /// [`crate::index::Ceiling`]): the token names no other group.
    group_ceiling: Option<Arc<[i64]>>,
}

struct GrantContext<'a> {
    state: &'a AppState,
    realm: &'a RealmInfo,
    client_ip: IpAddr,
}

impl GrantContext<'_> {
    /// The registered client named by the client id, after checking its secret; `None`
    /// when the id names no registered client (a service account's token may then be
    /// the secret). A wrong secret counts as a failed authentication.
    fn registered_client(&self, client: &ClientCredentials) -> Result<Option<Arc<ClientInfo>>, OAuthFailure> {
        let Some(registered) = client.id.as_deref().and_then(|id| self.state.clients.client(self.realm.id, id)) else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if let Some(retry_after_secs) = self.state.throttle.retry_after(self.client_ip, now) {
            return Err(OAuthFailure::throttled(retry_after_secs));
        }
        let presented = self.state.pepper.digest(&client.secret);
        if !registered.enabled || !presented.constant_time_eq(&registered.secret_digest) {
            self.state.throttle.record_failure(self.client_ip, now);
            return Err(OAuthFailure::invalid_client());
        }
        Ok(Some(registered))
    }

    fn require_grant(client: &ClientInfo, grant: &str) -> Result<(), OAuthFailure> {
        if client.grants.iter().any(|allowed| allowed == grant) {
            return Ok(());
        }
        Err(OAuthFailure::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            format!("client {:?} may not use {grant}; its grants are {:?}", client.client_id, client.grants),
        ))
    }

    /// client_credentials for a registered client: a token for its service account.
    async fn registered_client_credentials(
        &self,
        client: Arc<ClientInfo>,
        form: &TokenRequest,
    ) -> Result<TokenResponse, OAuthFailure> {
        GrantContext::require_grant(&client, GRANT_CLIENT_CREDENTIALS)?;
        let principal = client
            .service_account_id
            .and_then(|id| self.state.index.principal(id))
            .filter(|principal| principal.enabled && principal.realm_id == self.realm.id)
            .ok_or_else(|| {
                OAuthFailure::new(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    format!(
                        "client {:?} has no enabled service account to issue client_credentials tokens for",
                        client.client_id
                    ),
                )
            })?;
        let audience = self.requested_audience(form)?;
        let scope = self.requested_scope(form)?.unwrap_or_default();
        self.issue(Issue {
            grant: GRANT_CLIENT_CREDENTIALS,
            principal: &principal,
            audience: audience.into_iter().collect(),
            scope: scope.into_iter().map(str::to_string).collect(),
            azp: client.client_id.clone(),
            sid: None,
            cid: None,
            not_after: None,
            actor: format!("client:{}", client.client_id),
            client: Some(client),
            audience_fixed: false,
            group_ceiling: None,
        })
        .await
    }

    /// Authenticates a credential of this realm; any refusal is `refused`.
    fn credential(&self, secret: &str, refused: impl Fn() -> OAuthFailure) -> Result<Caller, OAuthFailure> {
        let caller = self
            .state
            .authenticate_credential(secret, self.client_ip)
            .map_err(|failure| from_auth_failure(failure, refused()))?;
        if caller.realm_id != self.realm.id {
            return Err(refused());
        }
        Ok(caller)
    }

    /// A workload's run credential binds the tokens made from it to the workload: their
    /// `sid` is the workload's id, which ending the workload revokes.
    async fn workload_session(&self, subject: &Caller) -> Result<Option<String>, OAuthFailure> {
        if subject.kind != CredentialKind::WorkloadCredential {
            return Ok(None);
        }
        match self.state.store.running_workload_of_credential(subject.credential_id).await {
            Ok(Some(workload)) => Ok(Some(workload.public_id)),
            Ok(None) => Err(OAuthFailure::invalid_grant("the workload this credential was issued to has ended")),
            Err(error) => Err(OAuthFailure::internal(error)),
        }
    }

    fn requested_audience(&self, form: &TokenRequest) -> Result<Option<String>, OAuthFailure> {
        match form.audience.as_deref().map(str::trim).filter(|audience| !audience.is_empty()) {
            None => Ok(None),
            Some(audience) if valid_audience(audience) => Ok(Some(audience.to_string())),
            Some(_) => Err(OAuthFailure::new(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                "audience must be 1–128 visible ASCII characters without spaces",
            )),
        }
    }

    fn requested_scope<'f>(&self, form: &'f TokenRequest) -> Result<Option<Vec<&'f str>>, OAuthFailure> {
        let scopes = words(form.scope.as_deref());
        if let Some(bad) = scopes.iter().flatten().find(|scope| !valid_scope(scope)) {
            return Err(OAuthFailure::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                format!("scope {bad:?} is not a valid scope token (1–64 visible ASCII characters)"),
            ));
        }
        Ok(scopes)
    }

    async fn client_credentials(
        &self,
        client: Option<ClientCredentials>,
        form: &TokenRequest,
    ) -> Result<TokenResponse, OAuthFailure> {
        let client = client.ok_or_else(OAuthFailure::invalid_client)?;
        if let Some(registered) = self.registered_client(&client)? {
            return self.registered_client_credentials(registered, form).await;
        }
        let caller = self.credential(&client.secret, OAuthFailure::invalid_client)?;
        if caller.kind != CredentialKind::ServiceAccountToken {
            return Err(OAuthFailure::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "client_credentials takes a service-account token (kws_…) as the client secret; exchange other \
                 credentials with grant_type=urn:ietf:params:oauth:grant-type:token-exchange",
            ));
        }
        let principal = caller.principal.clone().ok_or_else(OAuthFailure::invalid_client)?;
        if client.id.as_ref().is_some_and(|id| *id != principal.username && *id != principal.public_id) {
            return Err(OAuthFailure::invalid_client());
        }
        let audience = self.requested_audience(form)?.unwrap_or_else(|| API_AUDIENCE.to_string());
        let scope = self.requested_scope(form)?.unwrap_or_default();
        self.issue(Issue {
            grant: GRANT_CLIENT_CREDENTIALS,
            principal: &principal,
            audience: vec![audience],
            scope: scope.into_iter().map(str::to_string).collect(),
            azp: principal.username.clone(),
            sid: None,
            cid: caller.credential_head.map(hex::encode),
            not_after: caller.credential_expires_at,
            actor: caller.actor(),
            client: None,
            audience_fixed: false,
            group_ceiling: caller.ceiling.groups.clone(),
        })
        .await
    }

    async fn token_exchange(
        &self,
        client: Option<ClientCredentials>,
        form: &TokenRequest,
    ) -> Result<TokenResponse, OAuthFailure> {
        let subject_token = form
            .subject_token
            .as_deref()
            .filter(|token| !token.is_empty())
            .ok_or_else(|| OAuthFailure::invalid_request("subject_token is required"))?;
        match form.subject_token_type.as_deref() {
            Some(TOKEN_TYPE_ACCESS | TOKEN_TYPE_JWT) => {}
            _ => {
                return Err(OAuthFailure::invalid_request(format!(
                    "subject_token_type must be {TOKEN_TYPE_ACCESS} (any keyward credential) or {TOKEN_TYPE_JWT}"
                )));
            }
        }
        if form.requested_token_type.as_deref().is_some_and(|kind| kind != TOKEN_TYPE_ACCESS && kind != TOKEN_TYPE_JWT)
        {
            return Err(OAuthFailure::invalid_request(format!("requested_token_type must be {TOKEN_TYPE_ACCESS}")));
        }
        let (client, registered) = match client {
            Some(client) => match self.registered_client(&client)? {
                Some(registered) => {
                    GrantContext::require_grant(&registered, GRANT_TOKEN_EXCHANGE)?;
                    (None, Some(registered))
                }
                None => (Some(self.credential(&client.secret, OAuthFailure::invalid_client)?), None),
            },
            None => (None, None),
        };
        let subject = self.credential(subject_token, || {
            OAuthFailure::invalid_grant("subject_token is not a valid, current keyward credential of this realm")
        })?;
        // An API token's record (enabled switch, IP filter, expiry) must hold on every
        // request; an access token made from it would escape all three.
        if subject.kind == CredentialKind::ApiToken {
            return Err(OAuthFailure::invalid_grant(
                "API tokens are not exchanged: call keyward's API with the API token itself, so that its IP filter \
                 and record apply to every request",
            ));
        }
        let principal = subject.principal.clone().ok_or_else(|| {
            OAuthFailure::invalid_grant(
                "an admin key is not a user or service account; exchange a personal key, a service-account token \
                 or an access token",
            )
        })?;
        // What the subject may be narrowed from: its audiences and scopes.
        let (held_audiences, held_scopes, sid, cid) = match &subject.access_token {
            Some(token) => (
                Some(token.claims.aud.to_vec()),
                token.claims.scope.as_deref().map(|scope| scope.split(' ').map(str::to_string).collect::<Vec<_>>()),
                token.claims.sid.as_deref().map(str::to_string),
                token.claims.cid.as_deref().map(str::to_string),
            ),
            None => (
                subject.audience.clone().map(|audience| vec![audience]),
                None,
                self.workload_session(&subject).await?,
                subject.credential_head.map(hex::encode),
            ),
        };
        let asked_audience = self.requested_audience(form)?;
        let audience_fixed = asked_audience.is_some() || held_audiences.is_some();
        let audience = match (asked_audience, held_audiences) {
            (Some(asked), Some(held)) if !held.contains(&asked) => {
                return Err(OAuthFailure::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_target",
                    format!("the subject token is not valid for audience {asked:?}; an exchange can only narrow"),
                ));
            }
            (Some(asked), _) => vec![asked],
            (None, Some(held)) => held,
            (None, None) => vec![API_AUDIENCE.to_string()],
        };
        let held: Option<Vec<&str>> = held_scopes.as_ref().map(|scopes| scopes.iter().map(String::as_str).collect());
        let asked = self.requested_scope(form)?;
        let scope = keyward_core::jwt::narrow_scopes(held.as_deref(), asked.as_deref()).map_err(|extra| {
            OAuthFailure::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                format!("the subject token does not hold scope {extra:?}; an exchange can only narrow"),
            )
        })?;
        let azp = match (&registered, &client) {
            (Some(registered), _) => registered.client_id.clone(),
            (None, Some(client)) => {
                client.principal.as_ref().map_or_else(|| principal.username.clone(), |p| p.username.clone())
            }
            (None, None) => principal.username.clone(),
        };
        self.issue(Issue {
            grant: GRANT_TOKEN_EXCHANGE,
            principal: &principal,
            audience,
            scope: scope.into_iter().map(str::to_string).collect(),
            azp,
            sid,
            cid,
            not_after: subject.credential_expires_at,
            actor: subject.actor(),
            client: registered,
            audience_fixed,
            group_ceiling: subject.ceiling.groups.clone(),
        })
        .await
        .map(|mut response| {
            response.issued_token_type = Some(TOKEN_TYPE_ACCESS.to_string());
            response
        })
    }

    /// The resource-owner password grant: how a CLI logs a person in (as Keycloak's
    /// kcadm does). Service accounts are refused with 403 before any password is
    /// checked; every other refusal is `invalid_grant` with one message.
    async fn password(&self, form: &TokenRequest) -> Result<TokenResponse, OAuthFailure> {
        let (Some(username), Some(password)) = (form.username.as_deref(), form.password.as_deref()) else {
            return Err(OAuthFailure::invalid_request("the password grant needs username and password"));
        };
        let principal = crate::login::password_login(self.state, self.realm.id, username, password, self.client_ip)
            .await
            .map_err(|refusal| match refusal {
                LoginRefusal::ServiceAccount => {
                    OAuthFailure::new(StatusCode::FORBIDDEN, "unauthorized_client", refusal.message())
                }
                LoginRefusal::Throttled { retry_after_secs } => OAuthFailure::throttled(retry_after_secs),
                LoginRefusal::Unavailable => OAuthFailure::unavailable(),
                LoginRefusal::InvalidCredentials | LoginRefusal::Disabled => {
                    OAuthFailure::invalid_grant(refusal.message())
                }
            })?;
        let scope = self.requested_scope(form)?.unwrap_or_default();
        let audience = self.requested_audience(form)?.unwrap_or_else(|| API_AUDIENCE.to_string());
        self.issue(Issue {
            grant: GRANT_PASSWORD,
            principal: &principal,
            audience: vec![audience],
            scope: scope.into_iter().map(str::to_string).collect(),
            // Never the form's client_id: nothing authenticated it, and a verifier trusting
            // azp must not be told the token came from a registered client.
            azp: "keyward-cli".to_string(),
            sid: None,
            cid: None,
            not_after: None,
            actor: format!("user:{} ({})", principal.public_id, principal.username),
            client: None,
            audience_fixed: false,
            group_ceiling: None,
        })
        .await
    }

    async fn issue(&self, mut issue: Issue<'_>) -> Result<TokenResponse, OAuthFailure> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let client_lifetime = issue.client.as_ref().and_then(|client| client.access_token_lifetime);
        let lifetime = client_lifetime.unwrap_or(self.realm.token_settings.access_token_lifetime).whole_seconds();
        if let Some(client) = issue.client.as_ref().filter(|client| !client.audiences.is_empty()) {
            if issue.audience.is_empty()
                || !issue.audience_fixed
                    && issue.audience == [API_AUDIENCE]
                    && !client.audiences.iter().any(|a| a == API_AUDIENCE)
            {
                issue.audience = vec![client.audiences[0].clone()];
            }
            if let Some(outside) = issue.audience.iter().find(|audience| !client.audiences.contains(audience)) {
                return Err(OAuthFailure::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_target",
                    format!(
                        "client {:?} may not ask for audience {outside:?}; its audiences are {:?}",
                        client.client_id, client.audiences
                    ),
                ));
            }
        }
        if issue.audience.is_empty() {
            issue.audience = vec![API_AUDIENCE.to_string()];
        }
        let exp = issue.not_after.map_or(now + lifetime, |not_after| not_after.min(now + lifetime));
        if exp <= now {
            return Err(OAuthFailure::invalid_grant("the credential expires now; no token can be issued from it"));
        }
        let Profile { name, email, groups, attributes } =
            profile(self.state, issue.principal.id, issue.group_ceiling.as_deref()).await?;
        let realm_clients = self.state.clients.realm(self.realm.id);
        let mappers: Vec<&keyward_core::claims::ClaimMapper> =
            realm_clients.mappers.iter().chain(issue.client.iter().flat_map(|client| client.mappers.iter())).collect();
        let extra = keyward_core::claims::apply(&mappers, &attributes, &groups)
            .into_iter()
            .map(|(claim, value)| {
                let value = match value {
                    keyward_core::claims::ClaimValue::Text(text) => serde_json::Value::String(text),
                    keyward_core::claims::ClaimValue::List(list) => serde_json::json!(list),
                };
                (claim, value)
            })
            .collect();
        let jti = crate::api::new_public_id().to_string();
        let scope = (!issue.scope.is_empty()).then(|| issue.scope.join(" "));
        let audience = match issue.audience.as_slice() {
            [one] => Audience::One(one.into()),
            _ => Audience::Many(issue.audience.clone()),
        };
        let claims = AccessTokenClaims {
            iss: issuer(self.state, &self.realm.name).into(),
            sub: issue.principal.public_id.as_str().into(),
            aud: audience,
            exp,
            iat: now,
            nbf: Some(now),
            jti: jti.as_str().into(),
            client_id: issue.azp.as_str().into(),
            azp: issue.azp.into(),
            sid: issue.sid.map(Into::into),
            scope: scope.as_deref().map(Into::into),
            cid: issue.cid.map(Into::into),
            api_token_id: None,
            api_token_gen: None,
            name: name.map(Into::into),
            preferred_username: issue.principal.username.as_str().into(),
            email: email.map(Into::into),
            groups,
            extra,
        };
        let access_token = sign_claims(self.state, self.realm, &claims).await.map_err(OAuthFailure::internal)?;
        self.state.queue_audit(NewAuditEvent {
            realm: self.realm.name.clone(),
            at: OffsetDateTime::now_utc(),
            actor: issue.actor,
            action: "access_token.issue".to_string(),
            target: format!("access_token:{jti}"),
            client_ip: self.client_ip.to_string(),
            result: "ok".to_string(),
            detail: format!("grant={} aud={} exp={exp}", issue.grant, issue.audience.join(",")),
        });
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer".to_string(),
            expires_in: exp - now,
            scope,
            issued_token_type: None,
        })
    }
}
