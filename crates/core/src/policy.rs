//! Realm policies that decide whether and for how long a credential may be issued.

use time::{Duration, OffsetDateTime};

/// A realm's rules for personal API keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserKeyPolicy {
    /// When false, only service accounts may hold long-lived credentials.
    pub allowed: bool,
    /// The longest lifetime a personal key may have; also the default.
    pub max_lifetime: Duration,
}

impl Default for UserKeyPolicy {
    fn default() -> Self {
        UserKeyPolicy { allowed: true, max_lifetime: Duration::days(90) }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("personal API keys are disabled in this realm: only service accounts may hold long-lived credentials")]
    UserKeysDisabled,
    #[error("expiresAt must be in the future")]
    ExpiryInPast,
    #[error("expiresAt is beyond this realm's maximum lifetime of {max_days} days for this kind of credential")]
    ExpiryTooFar { max_days: i64 },
}

impl UserKeyPolicy {
    /// Decides the expiry of a new personal key: the requested one if it is in the
    /// future and within the maximum, else the maximum when none was requested.
    pub fn expiry_for_new_key(
        &self,
        requested: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime, PolicyError> {
        if !self.allowed {
            return Err(PolicyError::UserKeysDisabled);
        }
        let latest = now + self.max_lifetime;
        match requested {
            None => Ok(latest),
            Some(at) if at <= now => Err(PolicyError::ExpiryInPast),
            Some(at) if at > latest => Err(PolicyError::ExpiryTooFar { max_days: self.max_lifetime.whole_days() }),
            Some(at) => Ok(at),
        }
    }
}

/// A realm's rules for service-account tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceTokenPolicy {
    /// The longest lifetime a token may be given.
    pub max_lifetime: Duration,
}

impl ServiceTokenPolicy {
    /// A token's lifetime when none is asked for: four months.
    pub const DEFAULT_LIFETIME: Duration = Duration::days(120);

    /// Decides the expiry of a new service-account token: the requested one if it is in
    /// the future and within the maximum, else 120 days (or the maximum, if shorter).
    pub fn expiry_for_new_token(
        &self,
        requested: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime, PolicyError> {
        let latest = now + self.max_lifetime;
        match requested {
            None => Ok(now + Self::DEFAULT_LIFETIME.min(self.max_lifetime)),
            Some(at) if at <= now => Err(PolicyError::ExpiryInPast),
            Some(at) if at > latest => Err(PolicyError::ExpiryTooFar { max_days: self.max_lifetime.whole_days() }),
            Some(at) => Ok(at),
        }
    }
}

impl Default for ServiceTokenPolicy {
    fn default() -> Self {
        ServiceTokenPolicy { max_lifetime: Duration::days(365) }
    }
}

/// API tokens: admins choose the expiry; without one a token lasts 90 days, and none
/// lasts more than a year from when it is set (an admin can push it out again later).
pub struct ApiTokenPolicy;

impl ApiTokenPolicy {
    pub const DEFAULT_LIFETIME: Duration = Duration::days(90);
    pub const MAX_LIFETIME: Duration = Duration::days(366);

    /// The expiry of a token created or edited at `now`.
    pub fn expiry(requested: Option<OffsetDateTime>, now: OffsetDateTime) -> Result<OffsetDateTime, PolicyError> {
        match requested {
            None => Ok(now + Self::DEFAULT_LIFETIME),
            Some(at) if at <= now => Err(PolicyError::ExpiryInPast),
            Some(at) if at > now + Self::MAX_LIFETIME => {
                Err(PolicyError::ExpiryTooFar { max_days: Self::MAX_LIFETIME.whole_days() })
            }
            Some(at) => Ok(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn expiry_follows_the_realm_policy() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let policy = UserKeyPolicy::default();
        let cases = [
            (None, Ok(datetime!(2026-04-01 00:00 UTC))),
            (Some(datetime!(2026-02-01 00:00 UTC)), Ok(datetime!(2026-02-01 00:00 UTC))),
            (Some(now), Err(PolicyError::ExpiryInPast)),
            (Some(datetime!(2027-01-01 00:00 UTC)), Err(PolicyError::ExpiryTooFar { max_days: 90 })),
        ];
        for (requested, expected) in cases {
            assert_eq!(policy.expiry_for_new_key(requested, now), expected, "{requested:?}");
        }
    }

    #[test]
    fn disallowed_user_keys_name_service_accounts_as_the_alternative() {
        let policy = UserKeyPolicy { allowed: false, ..UserKeyPolicy::default() };
        let error = policy.expiry_for_new_key(None, datetime!(2026-01-01 00:00 UTC));
        assert_eq!(error, Err(PolicyError::UserKeysDisabled));
        assert!(PolicyError::UserKeysDisabled.to_string().contains("only service accounts"));
    }

    #[test]
    fn service_tokens_last_four_months_unless_asked_within_the_maximum() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let policy = ServiceTokenPolicy::default();
        let cases = [
            (None, Ok(datetime!(2026-05-01 00:00 UTC))),
            (Some(datetime!(2026-12-31 00:00 UTC)), Ok(datetime!(2026-12-31 00:00 UTC))),
            (Some(now), Err(PolicyError::ExpiryInPast)),
            (Some(datetime!(2027-01-02 00:00 UTC)), Err(PolicyError::ExpiryTooFar { max_days: 365 })),
        ];
        for (requested, expected) in cases {
            assert_eq!(policy.expiry_for_new_token(requested, now), expected, "{requested:?}");
        }
        let short = ServiceTokenPolicy { max_lifetime: Duration::days(30) };
        assert_eq!(short.expiry_for_new_token(None, now), Ok(datetime!(2026-01-31 00:00 UTC)));
    }

    #[test]
    fn api_tokens_last_90_days_unless_asked_within_a_year() {
        let now = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(ApiTokenPolicy::expiry(None, now), Ok(datetime!(2026-04-01 00:00 UTC)));
        assert_eq!(
            ApiTokenPolicy::expiry(Some(datetime!(2027-01-02 00:00 UTC)), now),
            Ok(datetime!(2027-01-02 00:00 UTC))
        );
        assert_eq!(ApiTokenPolicy::expiry(Some(now), now), Err(PolicyError::ExpiryInPast));
        assert_eq!(
            ApiTokenPolicy::expiry(Some(datetime!(2027-01-03 00:00 UTC)), now),
            Err(PolicyError::ExpiryTooFar { max_days: 366 })
        );
    }
}
