//! The decision at the end of `authenticate()`: given what the index knows about a
//! credential and its owner, is it usable now? The reasons are for the audit log and
//! the server log only; every refusal answers the caller with the same 401.

use crate::secret::CredentialKind;

/// What the in-memory index holds about a credential, enough to decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredentialState {
    pub kind: CredentialKind,
    /// Unix seconds; `None` for credentials that do not expire.
    pub expires_at: Option<i64>,
}

/// What the index holds about a credential's owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrincipalState {
    pub enabled: bool,
}

/// Why a presented credential was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthRefusal {
    /// No credential header at all.
    Missing,
    /// A header value that is not UTF-8, an empty bearer, or a bad prefix/length/checksum.
    Malformed,
    /// Well-formed but not in the index: never issued, revoked or deleted.
    Unknown,
    Expired,
    /// The owner is disabled or gone.
    OwnerDisabled,
    /// The key is bound to an audience that the header it came in does not serve.
    WrongAudience,
    /// Too many failures from this client address.
    Throttled,
    /// An access token whose header, issuer or audience keyward would never issue.
    BadToken,
    /// An access token whose signature does not verify under the key its kid names.
    BadSignature,
    /// An access token signed by a key keyward does not (or no longer) publish.
    UnknownKey,
    /// An access token used before its `nbf`/`iat` (beyond the leeway).
    NotYetValid,
    /// An access token revoked by `jti` or `sid`, or issued before the realm's
    /// tokens-not-before.
    Revoked,
    /// An API token whose record is switched off.
    Disabled,
    /// An API token presented from an address outside its IP filter.
    IpNotAllowed,
    /// An API token replaced by a newer one of the same record (unlock, or a new user).
    Superseded,
    /// An API token a token manager (not an admin) minted, whose user now holds a role or
    /// group they did not hold then: it would act with more than it was given.
    Outgrown,
    /// A JWT without a claim the resource requires, or with another value.
    MissingClaim,
    /// A foreign issuer's keys could not be fetched and none were ever cached: the
    /// token cannot be judged, so the caller answers 503 rather than 401.
    IssuerUnavailable,
}

impl AuthRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthRefusal::Missing => "missing",
            AuthRefusal::Malformed => "malformed",
            AuthRefusal::Unknown => "unknown",
            AuthRefusal::Expired => "expired",
            AuthRefusal::OwnerDisabled => "owner_disabled",
            AuthRefusal::WrongAudience => "wrong_audience",
            AuthRefusal::Throttled => "throttled",
            AuthRefusal::BadToken => "bad_token",
            AuthRefusal::BadSignature => "bad_signature",
            AuthRefusal::UnknownKey => "unknown_key",
            AuthRefusal::NotYetValid => "not_yet_valid",
            AuthRefusal::Revoked => "revoked",
            AuthRefusal::Disabled => "disabled",
            AuthRefusal::IpNotAllowed => "ip_filter",
            AuthRefusal::Superseded => "superseded",
            AuthRefusal::Outgrown => "outgrown",
            AuthRefusal::MissingClaim => "missing_claim",
            AuthRefusal::IssuerUnavailable => "issuer_unavailable",
        }
    }
}

/// Decides whether a credential found in the index may be used at `now` (unix seconds).
/// `owner` is `None` for credentials without an owner (admin keys) and `Some(None)`
/// when the owner should exist but is not known (deleted).
pub fn decide(
    credential: CredentialState,
    owner: Option<Option<PrincipalState>>,
    credential_audience: Option<&str>,
    header_audience: Option<&str>,
    now: i64,
) -> Result<(), AuthRefusal> {
    if credential.expires_at.is_some_and(|expires_at| expires_at <= now) {
        return Err(AuthRefusal::Expired);
    }
    match owner {
        Some(Some(PrincipalState { enabled: true })) | None => {}
        Some(_) => return Err(AuthRefusal::OwnerDisabled),
    }
    // A header bound to an audience takes only keys made for it; a key made for an
    // audience is accepted only where that audience is expected.
    if credential_audience != header_audience {
        return Err(AuthRefusal::WrongAudience);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    /// credential, owner, key audience, header audience, expected decision.
    type Case = (
        CredentialState,
        Option<Option<PrincipalState>>,
        Option<&'static str>,
        Option<&'static str>,
        Result<(), AuthRefusal>,
    );

    fn key(expires_at: Option<i64>) -> CredentialState {
        CredentialState { kind: CredentialKind::UserApiKey, expires_at }
    }

    #[test]
    fn decisions() {
        let enabled = Some(Some(PrincipalState { enabled: true }));
        let disabled = Some(Some(PrincipalState { enabled: false }));
        let cases: [Case; 9] = [
            (key(None), enabled, None, None, Ok(())),
            (key(Some(NOW + 1)), enabled, None, None, Ok(())),
            (key(Some(NOW)), enabled, None, None, Err(AuthRefusal::Expired)),
            (key(None), disabled, None, None, Err(AuthRefusal::OwnerDisabled)),
            (key(None), Some(None), None, None, Err(AuthRefusal::OwnerDisabled)),
            (key(None), None, None, None, Ok(())),
            (key(None), enabled, Some("model-monitor"), Some("model-monitor"), Ok(())),
            (key(None), enabled, None, Some("model-monitor"), Err(AuthRefusal::WrongAudience)),
            (key(None), enabled, Some("model-monitor"), None, Err(AuthRefusal::WrongAudience)),
        ];
        for (index, (credential, owner, key_audience, header_audience, expected)) in cases.into_iter().enumerate() {
            assert_eq!(decide(credential, owner, key_audience, header_audience, NOW), expected, "case {index}");
        }
    }
}
