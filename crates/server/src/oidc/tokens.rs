//! Access tokens: signing them and the one verifier for keyward's own JWTs.
//!
//! Verification order: size, shape, the JOSE header (only `alg`, `typ` and `kid` may
//! appear: `jwk`, `jku`, `x5u`, `x5c` and `crit` are refused, never followed), the issuer
//! (it names the realm), the kid among the realm's published keys and of the header's
//! algorithm, the signature, then the claims: audience, times with a 30 s leeway,
//! revocation by `jti` and `sid`, and the subject's state now. Tokens that passed the
//! costly part are remembered, so a repeated token costs a hash lookup plus the checks
//! that can change (times, revocation, key and subject state).

use crate::index::PrincipalInfo;
use crate::state::{AppState, RealmInfo};
use crate::verified_cache::VerifiedCache;
use keyward_core::auth::AuthRefusal;
use keyward_core::jwt::{HeaderFacts, MAX_TOKEN_BYTES, TimeClaims, TokenTyp, check_header, check_times};
use proto::oidc::AccessTokenClaims;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The audience of tokens meant for keyward's own API; the default of every grant.
pub const API_AUDIENCE: &str = "keyward";
/// The audience of API tokens: not [`API_AUDIENCE`], so that a verifier that checks only
/// the audience of access tokens refuses them too.
pub const API_TOKEN_AUDIENCE: &str = "urn:keyward:api-token";

/// The only header parameters keyward issues; any other one refuses the token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: &'a str,
    #[serde(borrow, default)]
    typ: Option<&'a str>,
    #[serde(borrow, default)]
    kid: Option<&'a str>,
}

/// A token whose signature, issuer and shape were verified.
#[derive(Debug)]
pub struct VerifiedToken {
    pub realm_id: i64,
    /// Inline, like the claims' text (see `AccessTokenClaims`).
    pub kid: proto::oidc::Text,
    /// The algorithm of the key that verified it.
    pub alg: keyward_core::jwt::SigningAlg,
    pub claims: AccessTokenClaims,
    /// `cid` decoded: the head of the digest of the credential the token was minted from.
    pub credential_head: Option<[u8; 16]>,
}

/// A verified token, checked against what can change, with its subject.
#[derive(Clone, Debug)]
pub struct AcceptedToken {
    pub token: Arc<VerifiedToken>,
    pub realm: Arc<RealmInfo>,
    pub principal: Arc<PrincipalInfo>,
    /// The ceiling of the credential the token was minted from (`cid`).
    pub ceiling: crate::index::Ceiling,
}

/// A refusal and, once known, the realm it happened in (for the audit log).
#[derive(Clone, Debug)]
pub struct TokenRefusal {
    pub refusal: AuthRefusal,
    pub realm: Option<String>,
}

impl From<AuthRefusal> for TokenRefusal {
    fn from(refusal: AuthRefusal) -> Self {
        TokenRefusal { refusal, realm: None }
    }
}

/// Verified tokens by their string (see [`VerifiedCache`]).
pub type TokenCache = VerifiedCache<VerifiedToken>;

/// Revoked token ids and session ids, each with the time it no longer matters.
#[derive(Default)]
pub struct Revocations {
    /// value → (realm id, expires at unix seconds), for `jti` and `sid` separately.
    jti: RwLock<HashMap<String, (i64, i64)>>,
    sid: RwLock<HashMap<String, (i64, i64)>>,
}

impl Revocations {
    pub fn add(&self, row: &store::RevokedTokenRow) {
        let map = if row.kind == "sid" { &self.sid } else { &self.jti };
        if let Ok(mut map) = map.write() {
            map.insert(row.value.clone(), (row.realm_id, row.expires_at.unix_timestamp()));
        }
    }

    fn holds(map: &RwLock<HashMap<String, (i64, i64)>>, realm_id: i64, value: &str) -> bool {
        map.read().ok().and_then(|map| map.get(value).copied()).is_some_and(|(realm, _)| realm == realm_id)
    }

    pub fn is_revoked(&self, realm_id: i64, jti: &str, sid: Option<&str>) -> bool {
        Revocations::holds(&self.jti, realm_id, jti)
            || sid.is_some_and(|sid| Revocations::holds(&self.sid, realm_id, sid))
    }

    /// Forgets revocations of tokens that have expired anyway.
    pub fn prune(&self, now: i64) {
        for map in [&self.jti, &self.sid] {
            if let Ok(mut map) = map.write() {
                map.retain(|_, (_, expires_at)| *expires_at + keyward_core::jwt::LEEWAY_SECS > now);
            }
        }
    }
}

/// The issuer URL of a realm: `{public_url}/auth/realms/{realm}`.
pub fn issuer(state: &AppState, realm_name: &str) -> String {
    format!("{}/auth/realms/{realm_name}", state.config.public_url)
}

/// Is this presented string shaped like a JWT (rather than an opaque keyward key)?
pub fn looks_like_jwt(text: &str) -> bool {
    // It runs over every presented token (~600 bytes), once or twice per request, so the
    // dots are found with memchr's vector search. A sum over the bytes, left to the
    // compiler to vectorise, was not where `authenticate` inlined it: 13 instructions a
    // byte, 16,000 per Bearer request.
    let bytes = text.as_bytes();
    bytes.starts_with(b"eyJ") && memchr::memchr_iter(b'.', bytes).take(3).count() == 2
}

/// A JWT segment's bytes, base64url-decoded; `None` when it is not canonical base64url.
/// Every verifier of JWTs (keyward's, `remote_jwks`) decodes through this and
/// [`decode_signature`]: base64-simd (vector instructions; 7 instructions a character
/// with the `base64` crate), which refuses what `base64`'s `URL_SAFE_NO_PAD` refuses:
/// padding, other alphabets, whitespace, non-zero trailing bits.
pub fn decode_segment(segment: &str) -> Option<Vec<u8>> {
    base64_simd::URL_SAFE_NO_PAD.decode_to_vec(segment).ok()
}

/// How much longer than the longest signature a [`decode_signature`] buffer must be: the
/// length check uses the decoder's rounded-up estimate (513 for a 683-character RSA-4096
/// signature, which decodes to 512).
pub const SIGNATURE_SLACK: usize = 2;

/// A signature segment decoded into `buffer` (on the stack: no allocation per token);
/// `None` when it is not canonical base64url or would not fit. The length is checked
/// first because base64-simd's `decode` panics on a buffer too small.
pub fn decode_signature<'b>(segment: &str, buffer: &'b mut [u8]) -> Option<&'b [u8]> {
    let decoder = base64_simd::URL_SAFE_NO_PAD;
    if decoder.estimated_decoded_length(segment.len()) > buffer.len() {
        return None;
    }
    decoder.decode(segment.as_bytes(), base64_simd::Out::from_slice(buffer)).ok().map(|decoded| &*decoded)
}

/// A segment's JSON text. Checking the UTF-8 of the whole segment at once lets
/// serde_json skip checking each string it reads, which it does when given bytes.
fn decode_json_segment(segment: &str) -> Result<String, AuthRefusal> {
    let bytes = decode_segment(segment).ok_or(AuthRefusal::Malformed)?;
    String::from_utf8(bytes).map_err(|_| AuthRefusal::BadToken)
}

/// Verifies what does not change for a given token string: shape, header, issuer, key
/// and signature.
fn verify_signed(state: &AppState, token: &str, now: i64) -> Result<VerifiedToken, TokenRefusal> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthRefusal::Malformed.into());
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthRefusal::Malformed.into());
    };
    let header_text = decode_json_segment(header)?;
    let header_json: JoseHeader = serde_json::from_str(&header_text).map_err(|_| AuthRefusal::BadToken)?;
    let (alg, kid, typ) =
        check_header(&HeaderFacts { alg: header_json.alg, typ: header_json.typ, kid: header_json.kid })?;
    let claims: AccessTokenClaims =
        serde_json::from_str(&decode_json_segment(payload)?).map_err(|_| AuthRefusal::BadToken)?;
    // The type and the claims must agree: an API token is typed as one and names its
    // record; an access token does neither.
    if (typ == TokenTyp::Api) != claims.api_token_id.is_some() {
        return Err(AuthRefusal::BadToken.into());
    }
    let realm_name = claims
        .iss
        .strip_prefix(&state.config.public_url)
        .and_then(|rest| rest.strip_prefix("/auth/realms/"))
        .ok_or(AuthRefusal::BadToken)?;
    let realm = state.realm_by_name(realm_name).ok_or(AuthRefusal::BadToken)?;
    let refuse = |refusal| TokenRefusal { refusal, realm: Some(realm.name.clone()) };
    // An API token's record decides whether it still works, so its key may have left
    // JWKS after a rotation; every other token needs a published key.
    let key = match claims.api_token_id {
        Some(_) => state.keys.find_retained(realm.id, kid),
        None => state.keys.find(realm.id, kid, now),
    }
    .ok_or_else(|| refuse(AuthRefusal::UnknownKey))?;
    if key.alg != alg {
        return Err(refuse(AuthRefusal::BadToken));
    }
    let signed_len = header.len() + 1 + payload.len();
    if !key.verify(&token.as_bytes()[..signed_len], signature) {
        return Err(refuse(AuthRefusal::BadSignature));
    }
    // Decoded once here rather than on every use; keyward never signs a malformed one.
    let credential_head = match &claims.cid {
        Some(cid) => {
            let mut head = [0u8; 16];
            hex::decode_to_slice(cid, &mut head).map_err(|_| refuse(AuthRefusal::BadToken))?;
            Some(head)
        }
        None => None,
    };
    Ok(VerifiedToken { realm_id: realm.id, kid: kid.into(), alg, claims, credential_head })
}

/// The token's signature, issuer and key, from the cache or verified now. Nothing that
/// can change is checked here: callers go on to `verify_access_token`'s checks or, for
/// API tokens, to their record's.
pub fn signed_token(state: &AppState, token: &str, now: i64) -> Result<Arc<VerifiedToken>, TokenRefusal> {
    if let Some(verified) = state.token_cache.get(token) {
        return Ok(verified);
    }
    let verified = Arc::new(verify_signed(state, token, now)?);
    state.token_cache.insert(token, verified.clone());
    Ok(verified)
}

/// Whether `token` is an API token keyward signed (its record is not consulted).
pub fn is_api_token(state: &AppState, token: &str, now: i64) -> bool {
    looks_like_jwt(token) && signed_token(state, token, now).is_ok_and(|signed| signed.claims.api_token_id.is_some())
}

/// A token that can be revoked: keyward signed it with a key still published and it
/// has not expired. Whether its subject is enabled now does not matter: revoking the
/// token of a disabled user must hold after the user is enabled again.
pub fn verify_for_revocation(state: &AppState, token: &str, now: i64) -> Result<Arc<VerifiedToken>, TokenRefusal> {
    let verified = signed_token(state, token, now)?;
    if state.keys.find(verified.realm_id, &verified.kid, now).is_none()
        || now > verified.claims.exp.saturating_add(keyward_core::jwt::LEEWAY_SECS)
    {
        return Err(AuthRefusal::Expired.into());
    }
    Ok(verified)
}

/// Verifies a keyward access token at `now` (unix seconds). With `audience`, the
/// token's `aud` must contain it.
pub fn verify_access_token(
    state: &AppState,
    token: &str,
    audience: Option<&str>,
    now: i64,
) -> Result<AcceptedToken, TokenRefusal> {
    accept_access_token(state, signed_token(state, token, now)?, audience, now)
}

/// The checks of [`verify_access_token`] that can change, on a token whose signature
/// [`signed_token`] has verified.
pub fn accept_access_token(
    state: &AppState,
    verified: Arc<VerifiedToken>,
    audience: Option<&str>,
    now: i64,
) -> Result<AcceptedToken, TokenRefusal> {
    let realm = state.realm(verified.realm_id).ok_or(AuthRefusal::BadToken)?;
    let refuse = |refusal| TokenRefusal { refusal, realm: Some(realm.name.clone()) };
    let claims = &verified.claims;
    // API tokens are checked against their records (`crate::api_tokens`), never as
    // access tokens: their `exp` is not the last word, and they carry an IP filter.
    if claims.api_token_id.is_some() {
        return Err(refuse(AuthRefusal::BadToken));
    }
    // The key may have left JWKS since the token was first seen.
    if state.keys.find(realm.id, &verified.kid, now).is_none() {
        return Err(refuse(AuthRefusal::UnknownKey));
    }
    if audience.is_some_and(|audience| !claims.aud.contains(audience)) {
        return Err(refuse(AuthRefusal::WrongAudience));
    }
    check_times(
        TimeClaims { exp: claims.exp, iat: claims.iat, nbf: claims.nbf },
        now,
        realm.token_settings.tokens_not_before,
    )
    .map_err(refuse)?;
    if state.revocations.is_revoked(realm.id, &claims.jti, claims.sid.as_deref()) {
        return Err(refuse(AuthRefusal::Revoked));
    }
    if !realm.enabled {
        return Err(refuse(AuthRefusal::OwnerDisabled));
    }
    let principal =
        state.index.principal_by_public_id(&claims.sub).ok_or_else(|| refuse(AuthRefusal::OwnerDisabled))?;
    if principal.realm_id != realm.id || !principal.enabled {
        return Err(refuse(AuthRefusal::OwnerDisabled));
    }
    // A token minted from a credential lives only as long as that credential does, and
    // acts within the same roles and groups.
    let ceiling = match &verified.credential_head {
        Some(head) => {
            let (kind, ceiling) =
                state.index.holds_head(head, principal.id, now).ok_or_else(|| refuse(AuthRefusal::Revoked))?;
            // Personal keys turned off in the realm stop the tokens exchanged from them too.
            if kind == keyward_core::CredentialKind::UserApiKey && !realm.user_key_policy.allowed {
                return Err(refuse(AuthRefusal::OwnerDisabled));
            }
            ceiling
        }
        None => Default::default(),
    };
    Ok(AcceptedToken { token: verified.clone(), realm, principal, ceiling })
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Key(#[from] crate::oidc::keys::KeyError),
    #[error(transparent)]
    Rotation(#[from] crate::oidc::keys::RotationError),
    #[error("the realm has no signing key")]
    NoKey,
    #[error("claims do not serialize: {0}")]
    Claims(String),
}

/// Signs `claims` with the realm's current key, creating the realm's first key if it
/// has none yet.
pub async fn sign_claims(state: &AppState, realm: &RealmInfo, claims: &AccessTokenClaims) -> Result<String, SignError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if state.keys.signing_key(realm.id, now).is_none() {
        crate::oidc::keys::ensure_realm_key(state, realm.id, &realm.name).await?;
    }
    sign_with_current_key(state, realm, claims)
}

/// Signs `claims` with the realm's current key, never making one: for callers inside a
/// mutation, since making a key is a mutation of its own, which would wait for the lock
/// the caller holds. `NoKey` when the realm has none.
pub fn sign_with_current_key(
    state: &AppState,
    realm: &RealmInfo,
    claims: &AccessTokenClaims,
) -> Result<String, SignError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let key = state.keys.signing_key(realm.id, now).ok_or(SignError::NoKey)?;
    let json = serde_json::to_vec(claims).map_err(|error| SignError::Claims(error.to_string()))?;
    let typ = if claims.api_token_id.is_some() { TokenTyp::Api } else { TokenTyp::Access };
    Ok(key.sign_typed(&json, typ)?)
}

#[cfg(test)]
mod tests {
    use super::looks_like_jwt;

    #[test]
    fn a_jwt_is_eyj_then_exactly_two_dots() {
        let long = format!("eyJ{}.{}.{}", "a".repeat(300), "b".repeat(700), "c".repeat(90));
        for jwt in ["eyJhbGciOiJFUzI1NiJ9.e30.c2ln", "eyJ..", long.as_str()] {
            assert!(looks_like_jwt(jwt), "{jwt:.40}");
        }
        let three_dots = format!("{long}.d");
        for not in ["", "eyJ", "eyJa.b", "eyJa.b.c.d", "kwu_abc.def.ghi", "EYJa.b.c", three_dots.as_str()] {
            assert!(!looks_like_jwt(not), "{not:.40}");
        }
    }
}
