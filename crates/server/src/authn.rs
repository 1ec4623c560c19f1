//! `authenticate()`: the one way in. Every header that can carry a credential ends
//! here, and no route verifies on its own.

use crate::index::{Ceiling, PrincipalInfo};
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderName, header};
use keyward_core::auth::{AuthRefusal, CredentialState, PrincipalState, decide};
use keyward_core::secret::check_format;
use keyward_core::{CredentialKind, Role, RoleSet};
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use store::NewAuditEvent;
use time::OffsetDateTime;

/// Who is calling: the realm, the credential and, unless it is an admin key, the
/// principal behind it.
#[derive(Clone, Debug)]
pub struct Caller {
    pub realm_id: i64,
    pub realm_name: String,
    pub credential_id: i64,
    pub kind: CredentialKind,
    /// Unix seconds; `None` for credentials that do not expire.
    pub credential_expires_at: Option<i64>,
    /// The audience the credential is bound to. Such a credential only identifies its
    /// user; the `Caller` extractor refuses it everywhere else.
    pub audience: Option<String>,
    pub principal: Option<Arc<PrincipalInfo>>,
    pub client_ip: IpAddr,
    /// The access token, when the caller presented one.
    pub access_token: Option<Arc<crate::oidc::tokens::VerifiedToken>>,
    /// The first half of the credential's digest (opaque credentials only): access tokens
    /// minted from the credential carry it, hex-encoded, as `cid`, and stop working when
    /// the credential leaves the index.
    pub credential_head: Option<[u8; 16]>,
    /// The API token's record, when the caller presented an API token.
    pub api_token: Option<Arc<crate::api_tokens::ApiTokenInfo>>,
    /// The most the credential acts with, whatever its principal holds now: a run's
    /// credential started by a launcher that is not an admin, and the access tokens
    /// exchanged from it, hold at most the roles, and act through at most the groups, the
    /// user had when the run started.
    pub ceiling: Ceiling,
}

impl Caller {
    /// Admin keys hold every role; a user holds their roles as they are now. A service
    /// account never holds `admin`, even through a group: with it, it could mint keys for
    /// people and so manage service accounts after all. A credential with a role ceiling
    /// holds no role above it ([`Caller::ceiling`]).
    pub fn roles(&self) -> RoleSet {
        let roles = self.principal_roles();
        self.ceiling.roles.map_or(roles, |ceiling| roles.intersection(ceiling))
    }

    /// The names of the groups the caller acts through: its principal's, sorted, within
    /// the credential's ceiling; none for admin keys.
    pub fn groups(&self) -> Cow<'_, [String]> {
        let Some(principal) = &self.principal else { return Cow::Borrowed(&[]) };
        if self.ceiling.groups.is_none() {
            return Cow::Borrowed(&principal.groups);
        }
        let admitted = principal.groups.iter().zip(&principal.group_ids);
        Cow::Owned(admitted.filter(|(_, id)| self.ceiling.admits_group(**id)).map(|(name, _)| name.clone()).collect())
    }

    fn principal_roles(&self) -> RoleSet {
        match (&self.principal, self.kind) {
            (_, CredentialKind::AdminKey) => RoleSet::all(),
            (Some(principal), _) if principal.kind == crate::api::service_accounts::SERVICE_KIND => {
                let mut roles = principal.roles;
                roles.remove(Role::Admin);
                roles
            }
            (Some(principal), _) => principal.roles,
            (None, _) => RoleSet::EMPTY,
        }
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles().contains(role)
    }

    /// How audit events name this caller: the principal's public id and name, or the
    /// credential kind and its internal number for admin keys.
    pub fn actor(&self) -> String {
        match &self.principal {
            Some(principal) => format!("user:{} ({})", principal.public_id, principal.username),
            None => format!("{}:{}", self.kind.as_str(), self.credential_id),
        }
    }
}

/// Why authentication failed, as far as the caller is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Refused(AuthRefusal),
    Throttled {
        retry_after_secs: u64,
    },
    /// This node has not heard from the database for too long to vouch that a
    /// credential was not revoked meanwhile.
    Unavailable,
}

/// A credential as presented, and the audience its header is bound to.
struct Presented<'a> {
    text: &'a str,
    header_audience: Option<&'a str>,
}

/// Finds the credential in the request: `Authorization: Bearer`, then `X-Api-Key`,
/// then the configured aliases. A header sent twice is malformed, not a choice.
fn presented<'a>(state: &'a AppState, headers: &'a HeaderMap) -> Result<Presented<'a>, AuthRefusal> {
    if let Some(token) = bearer_token(headers)? {
        return Ok(Presented { text: token, header_audience: None });
    }
    if let Some(value) = single(headers, &HeaderName::from_static("x-api-key"))? {
        return Ok(Presented { text: value.trim(), header_audience: None });
    }
    for alias in &state.config.alias_headers {
        let Ok(name) = HeaderName::from_bytes(alias.name.as_bytes()) else { continue };
        if let Some(value) = single(headers, &name)? {
            return Ok(Presented { text: value.trim(), header_audience: alias.audience.as_deref() });
        }
    }
    Err(AuthRefusal::Missing)
}

/// The token of an `Authorization: Bearer` header, if there is one. A header sent twice,
/// another scheme or an empty token is malformed. Read as bytes: the header carries a
/// ~600-byte token on every call, and only the token itself needs to be text.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthRefusal> {
    let Some(value) = single_value(headers, &header::AUTHORIZATION)? else { return Ok(None) };
    let bytes = value.as_bytes();
    let (scheme, token) = match bytes.iter().position(|byte| *byte == b' ') {
        Some(space) => (&bytes[..space], bytes[space + 1..].trim_ascii()),
        None => return Err(AuthRefusal::Malformed),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") || token.is_empty() || !token.is_ascii() {
        return Err(AuthRefusal::Malformed);
    }
    std::str::from_utf8(token).map(Some).map_err(|_| AuthRefusal::Malformed)
}

/// Whether `presented` may read a credential from a header called `name`: what a
/// forwarded request must not carry of the caller's.
pub fn is_credential_header(state: &AppState, name: &HeaderName) -> bool {
    *name == header::AUTHORIZATION
        || name == "x-api-key"
        || state.config.alias_headers.iter().any(|alias| name.as_str().eq_ignore_ascii_case(&alias.name))
}

fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, AuthRefusal> {
    let Some(value) = single_value(headers, name)? else { return Ok(None) };
    value.to_str().map(Some).map_err(|_| AuthRefusal::Malformed)
}

/// The header's one value, if it has one; sent twice, it is malformed.
fn single_value<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a axum::http::HeaderValue>, AuthRefusal> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(AuthRefusal::Malformed);
    }
    Ok(Some(first))
}

/// Headers that present `text` as an API key.
fn api_key_headers(text: &str) -> Result<HeaderMap, AuthRefusal> {
    let value = axum::http::HeaderValue::from_str(text).map_err(|_| AuthRefusal::Malformed)?;
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("x-api-key"), value);
    Ok(headers)
}

/// A refusal with what is known of the credential, for the audit log.
struct Refused {
    refusal: AuthRefusal,
    kind: Option<CredentialKind>,
    realm: Option<String>,
    /// The credential's audit name when it is known (an API token's record).
    target: Option<String>,
}

impl Refused {
    fn early(refusal: AuthRefusal) -> Refused {
        Refused { refusal, kind: None, realm: None, target: None }
    }
}

impl AppState {
    /// Authenticates a request from its headers and client address. Never touches the
    /// database: the answer comes from the in-memory index.
    pub fn authenticate(&self, headers: &HeaderMap, client_ip: IpAddr) -> Result<Caller, AuthFailure> {
        let now = OffsetDateTime::now_utc();
        let now_secs = now.unix_timestamp();
        if let Some(retry_after_secs) = self.throttle.retry_after(client_ip, now_secs) {
            crate::metrics::authentication("unknown", "throttled");
            return Err(AuthFailure::Throttled { retry_after_secs });
        }
        if self.feed.is_stale(self.config.max_index_staleness) {
            crate::metrics::authentication("unknown", "unavailable");
            return Err(AuthFailure::Unavailable);
        }
        self.conclude(self.verify(headers, client_ip, now_secs, None), client_ip, now)
    }

    /// Authenticates a call to a gateway deployment protected by API keys: only a `kwd_`
    /// key bound to `audience` (its service's or its deployment's) is accepted, through
    /// any credential header. Everything else, keyward's own keys and tokens included,
    /// is refused as bound to another audience. Throttling, metrics and audit as always.
    pub fn authenticate_gateway_key(
        &self,
        headers: &HeaderMap,
        client_ip: IpAddr,
        audience: &str,
    ) -> Result<Caller, AuthFailure> {
        let now = OffsetDateTime::now_utc();
        let now_secs = now.unix_timestamp();
        if let Some(retry_after_secs) = self.throttle.retry_after(client_ip, now_secs) {
            crate::metrics::authentication("unknown", "throttled");
            return Err(AuthFailure::Throttled { retry_after_secs });
        }
        if self.feed.is_stale(self.config.max_index_staleness) {
            crate::metrics::authentication("unknown", "unavailable");
            return Err(AuthFailure::Unavailable);
        }
        self.conclude(self.verify(headers, client_ip, now_secs, Some(audience)), client_ip, now)
    }

    /// Counts, logs and audits the outcome of a verification.
    fn conclude(
        &self,
        verified: Result<Caller, Refused>,
        client_ip: IpAddr,
        now: OffsetDateTime,
    ) -> Result<Caller, AuthFailure> {
        let now_secs = now.unix_timestamp();
        match verified {
            Ok(caller) => {
                if caller.kind != CredentialKind::AccessToken {
                    self.record_use(caller.credential_id, store::to_ms(now));
                }
                self.note_near_expiry(&caller, now_secs);
                crate::metrics::authenticated(caller.kind);
                Ok(caller)
            }
            Err(refused) => {
                self.note_refusal(refused.refusal, refused.kind, refused.realm, refused.target, client_ip, now);
                Err(AuthFailure::Refused(refused.refusal))
            }
        }
    }

    /// Records a refused credential: the metric, the client's failure count, the log
    /// line and the audit event (the reason goes there, never to the caller).
    pub fn note_refusal(
        &self,
        refusal: AuthRefusal,
        kind: Option<CredentialKind>,
        realm: Option<String>,
        target: Option<String>,
        client_ip: IpAddr,
        now: OffsetDateTime,
    ) {
        let kind_name = kind.map_or("unknown", CredentialKind::as_str);
        if refusal == AuthRefusal::Missing {
            crate::metrics::authentication(kind_name, "missing");
            return;
        }
        // One label for every refusal: the reasons are for the audit log, not for
        // anyone who can read /metrics.
        crate::metrics::authentication(kind_name, "refused");
        self.throttle.record_failure(client_ip, now.unix_timestamp());
        tracing::info!(reason = refusal.as_str(), client_ip = %client_ip, "authentication refused");
        self.queue_audit(NewAuditEvent {
            realm: realm.unwrap_or_else(|| self.config.default_realm.clone()),
            at: now,
            actor: "anonymous".to_string(),
            action: "auth.authenticate".to_string(),
            target: target.unwrap_or_else(|| kind.map_or("credential", CredentialKind::as_str).to_string()),
            client_ip: client_ip.to_string(),
            result: "denied".to_string(),
            detail: refusal.as_str().to_string(),
        });
    }

    /// Authenticates one presented credential (a client secret, a subject token) exactly
    /// as a header would be: the same checks, throttling and audit.
    pub fn authenticate_credential(&self, text: &str, client_ip: IpAddr) -> Result<Caller, AuthFailure> {
        let headers = api_key_headers(text).map_err(AuthFailure::Refused)?;
        self.authenticate(&headers, client_ip)
    }

    /// Checks a credential without counting a failure or auditing it: for introspection,
    /// where the caller asks about a token rather than presenting it.
    pub fn check_credential(&self, text: &str, client_ip: IpAddr) -> Result<Caller, AuthRefusal> {
        let headers = api_key_headers(text)?;
        let now_secs = OffsetDateTime::now_utc().unix_timestamp();
        self.verify(&headers, client_ip, now_secs, None).map_err(|refused| refused.refusal)
    }

    /// Verifies the presented credential. With `gateway_audience`, the call is to a
    /// gateway deployment whose keys are bound to it, whatever header carried the key.
    fn verify(
        &self,
        headers: &HeaderMap,
        client_ip: IpAddr,
        now_secs: i64,
        gateway_audience: Option<&str>,
    ) -> Result<Caller, Refused> {
        let mut presented = presented(self, headers).map_err(Refused::early)?;
        if let Some(audience) = gateway_audience {
            if crate::oidc::tokens::looks_like_jwt(presented.text) {
                return Err(Refused::early(AuthRefusal::WrongAudience));
            }
            presented.header_audience = Some(audience);
        }
        if crate::oidc::tokens::looks_like_jwt(presented.text) {
            return self.verify_access_token(&presented, client_ip, now_secs);
        }
        let checked = check_format(presented.text).map_err(|_| Refused::early(AuthRefusal::Malformed))?;
        let kind = Some(checked.kind);
        let refuse = |refusal, realm: Option<String>| Refused { refusal, kind, realm, target: None };
        let digest = self.pepper.digest(checked.as_str());
        let found = self.index.find(&digest).ok_or_else(|| refuse(AuthRefusal::Unknown, None))?;
        let realm = self.realm(found.realm_id).ok_or_else(|| refuse(AuthRefusal::Unknown, None))?;
        let in_realm = |refusal| refuse(refusal, Some(realm.name.clone()));
        // The prefix names the kind; a row of another kind under it is not this credential.
        if found.kind != checked.kind {
            return Err(in_realm(AuthRefusal::Unknown));
        }
        // A gateway deployment takes its deployment keys and nothing else, whatever
        // audience another kind of credential might carry.
        if gateway_audience.is_some() && found.kind != CredentialKind::DeploymentKey {
            return Err(in_realm(AuthRefusal::WrongAudience));
        }
        if !realm.enabled {
            return Err(in_realm(AuthRefusal::OwnerDisabled));
        }
        if found.kind == CredentialKind::UserApiKey && !realm.user_key_policy.allowed {
            return Err(in_realm(AuthRefusal::OwnerDisabled));
        }
        // Only admin keys and deployment keys stand without an owner; a deployment key is
        // bound to its gateway audience, so `decide` refuses it everywhere else.
        let owner_state = match (found.kind, found.owner_id) {
            (CredentialKind::AdminKey | CredentialKind::DeploymentKey, None) => None,
            (CredentialKind::AdminKey | CredentialKind::DeploymentKey, Some(_)) | (_, None) => {
                return Err(in_realm(AuthRefusal::Unknown));
            }
            (_, Some(owner_id)) => Some(self.index.principal(owner_id)),
        };
        // A credential works only in its owner's realm: the answers kept with a principal
        // (`api::auth_check`) name that realm.
        if owner_state.as_ref().and_then(Option::as_ref).is_some_and(|principal| principal.realm_id != realm.id) {
            return Err(in_realm(AuthRefusal::Unknown));
        }
        let principal_state = owner_state
            .as_ref()
            .map(|principal| principal.as_ref().map(|principal| PrincipalState { enabled: principal.enabled }));
        let audience = found.audience.as_deref().map(str::to_string);
        decide(
            CredentialState { kind: found.kind, expires_at: found.expires_at },
            principal_state,
            audience.as_deref(),
            presented.header_audience,
            now_secs,
        )
        .map_err(in_realm)?;
        Ok(Caller {
            realm_id: realm.id,
            realm_name: realm.name.clone(),
            credential_id: found.id,
            kind: found.kind,
            credential_expires_at: found.expires_at,
            audience,
            principal: owner_state.flatten(),
            client_ip,
            access_token: None,
            credential_head: digest.0[..16].try_into().ok(),
            api_token: None,
            ceiling: found.ceiling,
        })
    }

    /// An access token works on keyward's API when its audience includes the API's; it
    /// never comes through a header bound to another audience.
    fn verify_access_token(&self, presented: &Presented, client_ip: IpAddr, now_secs: i64) -> Result<Caller, Refused> {
        let kind = Some(CredentialKind::AccessToken);
        if presented.header_audience.is_some() {
            return Err(Refused { refusal: AuthRefusal::WrongAudience, kind, realm: None, target: None });
        }
        let signed = crate::oidc::tokens::signed_token(self, presented.text, now_secs).map_err(|refused| Refused {
            refusal: refused.refusal,
            kind,
            realm: refused.realm,
            target: None,
        })?;
        if signed.claims.api_token_id.is_some() {
            return self.verify_api_token(&signed, client_ip, now_secs);
        }
        let accepted =
            crate::oidc::tokens::accept_access_token(self, signed, Some(crate::oidc::tokens::API_AUDIENCE), now_secs)
                .map_err(|refused| Refused { refusal: refused.refusal, kind, realm: refused.realm, target: None })?;
        Ok(Caller {
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
        })
    }

    /// An API token: its signature was verified; now its record decides. The record
    /// must be live and enabled, of the JWT's generation and realm, hold this JWT's `jti`
    /// (through the index, like an opaque key's digest), be unexpired by its own expiry
    /// (not the JWT's `exp`: an admin may have moved it), belong to an enabled user who is
    /// the JWT's subject, and let the client's address in.
    fn verify_api_token(
        &self,
        signed: &crate::oidc::tokens::VerifiedToken,
        client_ip: IpAddr,
        now_secs: i64,
    ) -> Result<Caller, Refused> {
        let claims = &signed.claims;
        let record_id = claims.api_token_id.as_deref().unwrap_or_default();
        let realm = self.realm(signed.realm_id);
        let refuse = |refusal| Refused {
            refusal,
            kind: Some(CredentialKind::ApiToken),
            realm: realm.as_ref().map(|realm| realm.name.clone()),
            target: Some(format!("api_token:{record_id}")),
        };
        let realm = realm.clone().ok_or_else(|| refuse(AuthRefusal::BadToken))?;
        if !claims.aud.contains(crate::oidc::tokens::API_TOKEN_AUDIENCE) {
            return Err(refuse(AuthRefusal::WrongAudience));
        }
        // `exp` is left to the record; `nbf`, `iat` and the realm's not-before still hold.
        keyward_core::jwt::check_times(
            keyward_core::jwt::TimeClaims { exp: i64::MAX, iat: claims.iat, nbf: claims.nbf },
            now_secs,
            realm.token_settings.tokens_not_before,
        )
        .map_err(refuse)?;
        if !realm.enabled {
            return Err(refuse(AuthRefusal::OwnerDisabled));
        }
        let record = self.api_tokens.get(record_id).ok_or_else(|| refuse(AuthRefusal::Unknown))?;
        if record.realm_id != realm.id {
            return Err(refuse(AuthRefusal::Unknown));
        }
        if !record.enabled {
            return Err(refuse(AuthRefusal::Disabled));
        }
        if claims.api_token_gen != Some(record.generation) {
            return Err(refuse(AuthRefusal::Superseded));
        }
        let digest = self.pepper.digest(&claims.jti);
        let found = self
            .index
            .find(&digest)
            .filter(|found| found.id == record.id && found.kind == CredentialKind::ApiToken)
            .ok_or_else(|| refuse(AuthRefusal::Superseded))?;
        let principal = found.owner_id.and_then(|owner_id| self.index.principal(owner_id));
        decide(
            CredentialState { kind: found.kind, expires_at: found.expires_at },
            Some(principal.as_ref().map(|principal| PrincipalState { enabled: principal.enabled })),
            None,
            None,
            now_secs,
        )
        .map_err(refuse)?;
        let principal = principal.ok_or_else(|| refuse(AuthRefusal::OwnerDisabled))?;
        if principal.public_id != claims.sub || principal.realm_id != realm.id {
            return Err(refuse(AuthRefusal::Superseded));
        }
        if !keyward_core::ipfilter::allows(&record.filter, client_ip) {
            return Err(refuse(AuthRefusal::IpNotAllowed));
        }
        if let Some(bound) = &record.bound {
            if !bound.as_ref().is_ok_and(|bound| bound.admit(principal.roles, &principal.groups)) {
                return Err(refuse(AuthRefusal::Outgrown));
            }
        }
        Ok(Caller {
            realm_id: realm.id,
            realm_name: realm.name.clone(),
            credential_id: found.id,
            kind: CredentialKind::ApiToken,
            credential_expires_at: found.expires_at,
            audience: None,
            principal: Some(principal),
            client_ip,
            access_token: None,
            credential_head: digest.0[..16].try_into().ok(),
            api_token: Some(record),
            ceiling: Ceiling::default(),
        })
    }
}
