//! Portal sessions: a random 256-bit id in an HttpOnly cookie, its HMAC in the store.
//!
//! Checking a session must not wait on the database on every page (ARCHITECTURE,
//! invariant 5), so each node keeps the sessions it has seen in [`SessionCache`], keyed
//! by digest with the user, realm and expiry: filled at login and, on a miss (another
//! node's login, a restart), from the store. Logout revokes the row in a mutation that
//! names the session in the change feed, so every node drops its entry within a poll
//! (and at once with PostgreSQL's notifications). A cached entry is also re-read from the
//! store after [`RECHECK_AFTER_SECS`], a safety net like the feed's polling. Whether the user and realm are still enabled is
//! read from the in-memory index on every request, so disabling either ends the session
//! at once on every node.

use crate::error::ApiError;
use crate::index::PrincipalInfo;
use crate::state::{AppState, RealmInfo};
use axum::http::{HeaderMap, HeaderValue, header};
use keyward_core::SecretDigest;
use rand_core::TryRngCore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use store::NewPortalSession;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

/// The session cookie's name.
pub const COOKIE: &str = "kw_session";
/// Every cookie keyward sets: the session, and the login form's CSRF token.
pub const KEYWARD_COOKIES: [&str; 2] = [COOKIE, super::login::LOGIN_CSRF_COOKIE];
/// How long a session lasts from login; there is no sliding renewal.
pub const LIFETIME: Duration = Duration::hours(8);
/// How long this node trusts a cached session before asking the store again.
pub const RECHECK_AFTER_SECS: i64 = 60;
/// Past this many cached sessions, expired ones are dropped when a session is added.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Clone, Copy)]
struct Cached {
    realm_id: i64,
    user_id: i64,
    expires_at: i64,
    checked_at: i64,
}

/// Live sessions this node has seen, keyed by the digest of their id.
#[derive(Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<[u8; 32], Cached>>,
}

impl SessionCache {
    fn get(&self, digest: &SecretDigest) -> Option<Cached> {
        self.entries.lock().ok()?.get(&digest.0).copied()
    }

    fn put(&self, digest: &SecretDigest, entry: Cached) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > PRUNE_ABOVE {
                entries.retain(|_, cached| cached.expires_at > entry.checked_at);
            }
            entries.insert(digest.0, entry);
        }
    }

    pub fn remove(&self, digest: &SecretDigest) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&digest.0);
        }
    }
}

/// A logged-in person on this request.
pub struct Session {
    pub principal: Arc<PrincipalInfo>,
    pub realm: Arc<RealmInfo>,
    pub expires_at: OffsetDateTime,
    digest: SecretDigest,
    csrf: Zeroizing<String>,
}

impl Session {
    /// The synchronizer token every form of this session carries.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// Whether `presented` is this session's token, compared in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        let mut given = [0u8; 32];
        let mut expected = [0u8; 32];
        if hex::decode_to_slice(presented, &mut given).is_err()
            || hex::decode_to_slice(self.csrf.as_str(), &mut expected).is_err()
        {
            return false;
        }
        SecretDigest(given).constant_time_eq(&SecretDigest(expected))
    }
}

/// The CSRF token of a session: the HMAC, under the pepper, of the session id with a
/// label of its own, so it never equals the stored digest and reveals nothing of the id.
/// It needs no storage and changes with every login.
fn csrf_token(state: &AppState, session_id: &str) -> Zeroizing<String> {
    Zeroizing::new(hex::encode(state.pepper.digest(&format!("keyward-portal-csrf:{session_id}")).0))
}

/// A fresh random value of 256 bits from the OS CSPRNG, hex-encoded.
pub fn random_token() -> Result<Zeroizing<String>, ApiError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand_core::OsRng
        .try_fill_bytes(bytes.as_mut())
        .map_err(|error| ApiError::Internal(format!("the OS random source failed: {error}")))?;
    Ok(Zeroizing::new(hex::encode(bytes.as_ref())))
}

/// Starts a new session for `principal` (always a new id: a session id set before login
/// is never promoted, which rules out session fixation). Answers the cookie to set.
pub async fn start(
    state: &AppState,
    principal: Arc<PrincipalInfo>,
    now: OffsetDateTime,
) -> Result<(HeaderValue, Session), ApiError> {
    let session_id = random_token()?;
    let digest = state.pepper.digest(&session_id);
    let expires_at = now + LIFETIME;
    let realm = state.realm(principal.realm_id).ok_or(ApiError::NotFound("realm"))?;
    state
        .store
        .insert_portal_session(&NewPortalSession {
            digest,
            realm_id: principal.realm_id,
            user_id: principal.id,
            created_at: now,
            expires_at,
        })
        .await?;
    let cached = Cached {
        realm_id: principal.realm_id,
        user_id: principal.id,
        expires_at: expires_at.unix_timestamp(),
        checked_at: now.unix_timestamp(),
    };
    state.portal_sessions.put(&digest, cached);
    let cookie = cookie(state, &format!("{COOKIE}={}; Max-Age={}", session_id.as_str(), LIFETIME.whole_seconds()))?;
    let session = Session { principal, realm, expires_at, digest, csrf: csrf_token(state, &session_id) };
    Ok((cookie, session))
}

/// The session the request's cookie names, if it is live: not expired, not revoked,
/// its user and realm enabled and the user still in the session's realm.
pub async fn current(state: &AppState, headers: &HeaderMap, now: OffsetDateTime) -> Result<Option<Session>, ApiError> {
    let Some(session_id) = cookie_value(headers, COOKIE) else { return Ok(None) };
    if session_id.len() != 64 || !session_id.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let session_id = Zeroizing::new(session_id.to_ascii_lowercase());
    let digest = state.pepper.digest(&session_id);
    let now_secs = now.unix_timestamp();
    let cached = match state.portal_sessions.get(&digest) {
        Some(cached) if now_secs - cached.checked_at < RECHECK_AFTER_SECS => cached,
        _ => match state.store.live_portal_session(&digest, now).await.map_err(|_| ApiError::Unavailable)? {
            Some(row) => {
                let cached = Cached {
                    realm_id: row.realm_id,
                    user_id: row.user_id,
                    expires_at: row.expires_at.unix_timestamp(),
                    checked_at: now_secs,
                };
                state.portal_sessions.put(&digest, cached);
                cached
            }
            None => {
                state.portal_sessions.remove(&digest);
                return Ok(None);
            }
        },
    };
    if cached.expires_at <= now_secs {
        state.portal_sessions.remove(&digest);
        return Ok(None);
    }
    let Some(principal) = state.index.principal(cached.user_id) else { return Ok(None) };
    let realm = state.realm(cached.realm_id);
    let bound = principal.realm_id == cached.realm_id && principal.kind == "user";
    let (Some(realm), true, true) = (realm.filter(|realm| realm.enabled), principal.enabled, bound) else {
        // A disabled user or realm ends the session for good: enabling them again later
        // must not revive a session nobody is using.
        end_by_digest(state, &digest, now).await;
        return Ok(None);
    };
    let expires_at = OffsetDateTime::from_unix_timestamp(cached.expires_at).unwrap_or(now);
    Ok(Some(Session { principal, realm, expires_at, digest, csrf: csrf_token(state, &session_id) }))
}

/// Ends the session on every node: the row is revoked and the change feed tells every
/// node to forget it; this node forgets it at once. The logout is audited.
pub async fn end(
    state: &AppState,
    session: &Session,
    client_ip: std::net::IpAddr,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    state.portal_sessions.remove(&session.digest);
    let mut mutation = state.store.begin().await?;
    mutation.revoke_portal_session(&session.digest, now).await?;
    mutation
        .audit(store::NewAuditEvent {
            realm: session.realm.name.clone(),
            at: now,
            actor: format!("user:{} ({})", session.principal.public_id, session.principal.username),
            action: "portal.logout".to_string(),
            target: format!("user:{}", session.principal.public_id),
            client_ip: client_ip.to_string(),
            result: "ok".to_string(),
            detail: String::new(),
        })
        .await?;
    mutation.commit().await?;
    Ok(())
}

async fn end_by_digest(state: &AppState, digest: &SecretDigest, now: OffsetDateTime) {
    state.portal_sessions.remove(digest);
    let ended = async {
        let mut mutation = state.store.begin().await?;
        mutation.revoke_portal_session(digest, now).await?;
        mutation.commit().await
    };
    if let Err(error) = ended.await {
        tracing::warn!(%error, "could not revoke the portal session of a disabled user or realm");
    }
}

/// The header that removes the session cookie.
pub fn clear_cookie(state: &AppState) -> Result<HeaderValue, ApiError> {
    cookie(state, &format!("{COOKIE}=; Max-Age=0"))
}

/// A `Set-Cookie` value with the attributes every portal cookie has: HttpOnly (no script
/// reads it), SameSite=Lax (no cross-site POST carries it), Path=/, and Secure when the
/// server is reached over HTTPS.
pub fn cookie(state: &AppState, name_value_and_age: &str) -> Result<HeaderValue, ApiError> {
    let secure = if state.config.public_url.starts_with("https://") { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name_value_and_age}; HttpOnly; SameSite=Lax; Path=/{secure}"))
        .map_err(|_| ApiError::Internal("a cookie value was not a valid header".to_string()))
}

/// Removes keyward's own cookies from a request's `Cookie` headers, keeping the others
/// (in one header): a request forwarded to an upstream from keyward's origin must not
/// carry the portal session of the browser that sent it, which would let the upstream
/// act as that user. Names are compared without regard to case or surrounding spaces, so
/// whatever keyward would read as its cookie goes. A message without one is not touched.
pub fn remove_keyward_cookies(headers: &mut HeaderMap) {
    fn pairs(value: &HeaderValue) -> impl Iterator<Item = &[u8]> {
        value.as_bytes().split(|byte| *byte == b';').map(<[u8]>::trim_ascii)
    }
    fn ours(pair: &[u8]) -> bool {
        let name = pair.split(|byte| *byte == b'=').next().unwrap_or_default().trim_ascii();
        KEYWARD_COOKIES.iter().any(|cookie| name.eq_ignore_ascii_case(cookie.as_bytes()))
    }
    if !headers.get_all(header::COOKIE).iter().any(|value| pairs(value).any(ours)) {
        return;
    }
    let kept = {
        let kept: Vec<&[u8]> = headers
            .get_all(header::COOKIE)
            .iter()
            .flat_map(pairs)
            .filter(|pair| !pair.is_empty() && !ours(pair))
            .collect();
        kept.join(&b"; "[..])
    };
    headers.remove(header::COOKIE);
    // The kept bytes all come from valid header values, so they make one; if not, none go.
    if let (false, Ok(value)) = (kept.is_empty(), HeaderValue::from_bytes(&kept)) {
        headers.insert(header::COOKIE, value);
    }
}

/// The value of cookie `name` in the request's `Cookie` headers; the first wins.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookies(headers: &HeaderMap) -> Vec<&[u8]> {
        headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes).collect()
    }

    #[test]
    fn keywards_own_cookies_are_removed_from_a_forwarded_request_and_the_others_kept() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark; kw_session=0123abcd; lang=en"));
        headers.append(header::COOKIE, HeaderValue::from_static(" KW_Login_CSRF = x ;kw_session2=kept;"));
        remove_keyward_cookies(&mut headers);
        assert_eq!(cookies(&headers), [&b"theme=dark; lang=en; kw_session2=kept"[..]]);
        assert_eq!(cookie_value(&headers, COOKIE), None);

        // Only ours: no Cookie header is left at all.
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("kw_session=0123abcd"));
        remove_keyward_cookies(&mut headers);
        assert!(headers.get(header::COOKIE).is_none());

        // None of ours: the header goes on as it came.
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=b;c=d"));
        remove_keyward_cookies(&mut headers);
        assert_eq!(cookies(&headers), [&b"a=b;c=d"[..]]);

        // A byte that is not text beside ours does not hide it.
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_bytes(b"x=\xff; kw_session=0123abcd").unwrap());
        remove_keyward_cookies(&mut headers);
        assert_eq!(cookies(&headers), [&b"x=\xff"[..]]);
    }
}
