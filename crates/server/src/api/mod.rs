//! The native admin and self-service API under `/api/v1`.

pub mod api_keys;
pub mod api_services;
pub mod api_tokens;
pub mod audit;
pub mod auth_check;
pub mod authz;
pub mod clients;
pub mod deployment_keys;
pub mod deployments;
pub mod grants;
pub mod groups;
pub mod infrastructures;
pub mod passwords;
pub mod projects;
pub mod realm;
pub mod realms;
pub mod service_accounts;
pub mod signing_keys;
pub mod users;
pub mod workloads;

use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use keyward_core::{PublicId, Role};
use store::{Mutation, NewAuditEvent};
use time::OffsetDateTime;

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

/// Refuses callers without the admin role (admin keys hold every role).
pub fn require_admin(caller: &Caller) -> ApiResult<()> {
    if caller.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "This needs the admin role; ask an administrator to grant it or use an admin key.".to_string(),
        ))
    }
}

/// Checks a free-text description (at most 1,000 characters, no control characters).
pub fn check_description(description: &str) -> ApiResult<()> {
    keyward_core::validate::free_text(description, keyward_core::validate::MAX_DESCRIPTION_CHARS)
        .map_err(|detail| ApiError::invalid("description", detail))
}

/// Parses an id from a path. A malformed id names nothing, so it answers 404 like an
/// unknown one.
pub fn parse_id(text: &str, what: &'static str) -> ApiResult<PublicId> {
    PublicId::parse(text).ok_or(ApiError::NotFound(what))
}

/// Page size from the query, within 1 to 200.
pub fn page_limit(limit: Option<u32>) -> ApiResult<i64> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        0 => Err(ApiError::invalid("limit", "must be between 1 and 200")),
        limit if limit > MAX_PAGE => Err(ApiError::invalid("limit", "must be between 1 and 200")),
        limit => Ok(i64::from(limit)),
    }
}

/// Cursors are opaque to clients: a prefixed hex row position.
pub fn encode_cursor(last_row: i64) -> String {
    format!("c{last_row:x}")
}

pub fn decode_cursor(cursor: Option<&str>) -> ApiResult<i64> {
    let Some(cursor) = cursor else { return Ok(0) };
    cursor
        .strip_prefix('c')
        .and_then(|hex| i64::from_str_radix(hex, 16).ok())
        .filter(|position| *position >= 0)
        .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this server returned; omit it to start over"))
}

/// The next page's cursor when this page is full.
pub fn next_cursor(count: usize, limit: i64, last_row: Option<i64>) -> Option<String> {
    (count as i64 == limit).then_some(last_row).flatten().map(encode_cursor)
}

/// An audit event for a successful action by `caller`.
pub fn audit_event(caller: &Caller, action: &str, target: String, detail: String) -> NewAuditEvent {
    NewAuditEvent {
        realm: caller.realm_name.clone(),
        at: OffsetDateTime::now_utc(),
        actor: caller.actor(),
        action: action.to_string(),
        target,
        client_ip: caller.client_ip.to_string(),
        result: "ok".to_string(),
        detail,
    }
}

/// Appends the audit event, commits, and brings this node's index up to date before
/// the handler answers, so the caller's next request sees the change. Once the commit
/// succeeded the change is made and the answer says so: if catching up fails, the change
/// feed's poll applies it within a poll interval, and a secret made by the mutation is
/// never lost to an error answer.
pub async fn commit(state: &AppState, mut mutation: Mutation, event: NewAuditEvent) -> ApiResult<()> {
    mutation.audit(event).await?;
    mutation.commit().await?;
    if let Err(error) = crate::feed::catch_up(state).await {
        tracing::warn!(%error, "committed, but this node could not apply the change yet; the feed's poll will");
    }
    Ok(())
}

/// A fresh public id from the OS CSPRNG.
pub fn new_public_id() -> PublicId {
    PublicId::generate(&mut rand_core::UnwrapErr(rand_core::OsRng))
}

/// The active credential `id` of `kind` that `owner_id` holds, in the caller's realm.
/// Anything else (malformed, unknown, someone else's, another kind, revoked) is the same 404.
pub async fn owned_active_credential(
    state: &AppState,
    caller: &Caller,
    owner_id: i64,
    kind: keyward_core::CredentialKind,
    id: &str,
    what: &'static str,
) -> ApiResult<store::CredentialRow> {
    let id = parse_id(id, what)?;
    match state.store.credential_by_public_id(caller.realm_id, id.as_str()).await {
        Ok(row) if row.owner_id == Some(owner_id) && row.kind == kind && row.revoked_at.is_none() => Ok(row),
        Ok(_) | Err(store::StoreError::NotFound) => Err(ApiError::NotFound(what)),
        Err(other) => Err(other.into()),
    }
}

/// Long-lived credentials are never minted with a short-lived access token, nor with an
/// API token, nor with a run's workload credential: a token handed to a third party must
/// not turn into a key that outlives it, an API token's IP filter and enabled switch must
/// not be escaped that way, and ending a run must end every credential it had.
pub fn refuse_access_token_minting(caller: &Caller) -> ApiResult<()> {
    match caller.kind {
        keyward_core::CredentialKind::WorkloadCredential => Err(ApiError::Forbidden(
            "A run's workload credential cannot create credentials (API keys, service-account tokens, API tokens, \
             workloads or passwords): they would outlive the run. Use your own API key or an admin key."
                .to_string(),
        )),
        keyward_core::CredentialKind::AccessToken => Err(ApiError::Forbidden(
            "An access token cannot create API keys or service-account tokens; use an API key or an admin key."
                .to_string(),
        )),
        keyward_core::CredentialKind::ApiToken => Err(ApiError::Forbidden(
            "An API token cannot create credentials (API keys, service-account tokens, API tokens or passwords); \
             use an admin key or your own API key."
                .to_string(),
        )),
        _ => Ok(()),
    }
}
