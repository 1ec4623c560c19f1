//! `authenticate()`: the one way in. Every header that can carry a credential ends
//! here, and no route verifies on its own.

use crate::index::PrincipalInfo;
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderName, header};
use keyward_core::auth::{AuthRefusal, CredentialState, PrincipalState, decide};
use keyward_core::secret::check_format;
use keyward_core::{CredentialKind, Role, RoleSet};
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
    pub principal: Option<Arc<PrincipalInfo>>,
    pub client_ip: IpAddr,
}

impl Caller {
    /// Admin keys hold every role; a user holds their roles as they are now.
    pub fn roles(&self) -> RoleSet {
        match (&self.principal, self.kind) {
            (_, CredentialKind::AdminKey) => RoleSet::all(),
            (Some(principal), _) => principal.roles,
            (None, _) => RoleSet::EMPTY,
        }
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles().contains(role)
    }

    /// How audit events name this caller.
    pub fn actor(&self) -> String {
        match &self.principal {
            Some(principal) => format!("user:{}", principal.username),
            None => format!("{}:{}", self.kind.as_str(), self.credential_id),
        }
    }
}

/// Why authentication failed, as far as the caller is told: throttled or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Refused(AuthRefusal),
    Throttled { retry_after_secs: u64 },
}

/// A credential as presented, and the audience its header is bound to.
struct Presented<'a> {
    text: &'a str,
    header_audience: Option<&'a str>,
}

/// Finds the credential in the request: `Authorization: Bearer`, then `X-Api-Key`,
/// then the configured aliases. A header sent twice is malformed, not a choice.
fn presented<'a>(state: &'a AppState, headers: &'a HeaderMap) -> Result<Presented<'a>, AuthRefusal> {
    if let Some(value) = single(headers, &header::AUTHORIZATION)? {
        let (scheme, token) = value.split_once(' ').ok_or(AuthRefusal::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthRefusal::Malformed);
        }
        return Ok(Presented { text: token.trim(), header_audience: None });
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

fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, AuthRefusal> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(AuthRefusal::Malformed);
    }
    first.to_str().map(Some).map_err(|_| AuthRefusal::Malformed)
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
        match self.verify(headers, client_ip, now_secs) {
            Ok(caller) => {
                self.record_use(caller.credential_id, store::to_ms(now));
                crate::metrics::authentication(caller.kind.as_str(), "ok");
                Ok(caller)
            }
            Err((refusal, kind)) => {
                crate::metrics::authentication(kind.map_or("unknown", CredentialKind::as_str), refusal.as_str());
                if refusal != AuthRefusal::Missing {
                    self.throttle.record_failure(client_ip, now_secs);
                    tracing::info!(reason = refusal.as_str(), client_ip = %client_ip, "authentication refused");
                    self.queue_audit(NewAuditEvent {
                        realm: self.config.default_realm.clone(),
                        at: now,
                        actor: "anonymous".to_string(),
                        action: "auth.authenticate".to_string(),
                        target: kind.map_or("credential", CredentialKind::as_str).to_string(),
                        client_ip: client_ip.to_string(),
                        result: "denied".to_string(),
                        detail: refusal.as_str().to_string(),
                    });
                }
                Err(AuthFailure::Refused(refusal))
            }
        }
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        client_ip: IpAddr,
        now_secs: i64,
    ) -> Result<Caller, (AuthRefusal, Option<CredentialKind>)> {
        let presented = presented(self, headers).map_err(|refusal| (refusal, None))?;
        let checked = check_format(presented.text).map_err(|_| (AuthRefusal::Malformed, None))?;
        let kind = Some(checked.kind);
        let digest = self.pepper.digest(checked.as_str());
        let found = self.index.find(&digest).ok_or((AuthRefusal::Unknown, kind))?;
        let realm = self.realm(found.realm_id).ok_or((AuthRefusal::Unknown, kind))?;
        if !realm.enabled {
            return Err((AuthRefusal::OwnerDisabled, kind));
        }
        let principal = found.owner_id.map(|owner_id| self.index.principal(owner_id));
        let owner_state = principal
            .as_ref()
            .map(|principal| principal.as_ref().map(|principal| PrincipalState { enabled: principal.enabled }));
        let credential_audience = self.index.audience_name(found.audience);
        decide(
            CredentialState { kind: found.kind, expires_at: found.expires_at },
            owner_state,
            credential_audience.as_deref(),
            presented.header_audience,
            now_secs,
        )
        .map_err(|refusal| (refusal, kind))?;
        Ok(Caller {
            realm_id: realm.id,
            realm_name: realm.name.clone(),
            credential_id: found.id,
            kind: found.kind,
            principal: principal.flatten(),
            client_ip,
        })
    }
}
