//! The claim checks of a resource server: what a token from a foreign OIDC issuer must
//! say before the gateway lets it through. The server verifies the signature (with the
//! issuer's JWKS) and hands the claims here, with `now`.

use crate::auth::AuthRefusal;
use crate::jwt::LEEWAY_SECS;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// What a deployment expects of the tokens it accepts.
#[derive(Clone, Copy, Debug)]
pub struct ClaimRule<'a> {
    /// The exact `iss`: no trailing-slash or case folding, as OIDC compares it.
    pub issuer: &'a str,
    /// A value `aud` must hold (alone, or in its list).
    pub audience: &'a str,
    /// Claims that must hold these values, for example `("organization", "acme")`. A claim
    /// that is a list needs only contain the value.
    pub required_claims: &'a [(String, Value)],
}

/// Checks a verified token's claims at `now` (unix seconds): issuer, audience, `exp`
/// (required), `nbf` and `iat` (when present) with [`LEEWAY_SECS`] of skew, then the
/// required claims.
pub fn check_claims(claims: &Map<String, Value>, rule: &ClaimRule, now: i64) -> Result<(), AuthRefusal> {
    if claims.get("iss").and_then(Value::as_str) != Some(rule.issuer) {
        return Err(AuthRefusal::BadToken);
    }
    check_audience(claims.get("aud"), rule.audience)?;
    // A token without an expiry would be good forever: it is not one we accept.
    let expires_at = claims.get("exp").ok_or(AuthRefusal::BadToken).and_then(numeric_date)?;
    if expires_at.saturating_add(LEEWAY_SECS) <= now {
        return Err(AuthRefusal::Expired);
    }
    for name in ["nbf", "iat"] {
        if let Some(value) = claims.get(name) {
            if numeric_date(value)? > now.saturating_add(LEEWAY_SECS) {
                return Err(AuthRefusal::NotYetValid);
            }
        }
    }
    required_claims_hold(claims, rule.required_claims)
}

/// Whether every required claim holds: the claim equals the value or, when it is a
/// list, contains it. Also used on keyward's own tokens, whose other claims the one
/// verifier has checked.
pub fn required_claims_hold(claims: &Map<String, Value>, required: &[(String, Value)]) -> Result<(), AuthRefusal> {
    required_claims_hold_by(|name| claims.get(name).map(Cow::Borrowed), required)
}

/// [`required_claims_hold`] with the claims looked up one by one, for a token whose
/// claims are not a JSON map (keyward's own, parsed into their fields).
pub fn required_claims_hold_by<'a>(
    claim: impl Fn(&str) -> Option<Cow<'a, Value>>,
    required: &[(String, Value)],
) -> Result<(), AuthRefusal> {
    for (name, expected) in required {
        if !claim_holds(claim(name).as_deref(), expected) {
            return Err(AuthRefusal::MissingClaim);
        }
    }
    Ok(())
}

/// `aud` is a string or a list of strings (RFC 7519 §4.1.3); anything else is not a
/// token we understand.
fn check_audience(aud: Option<&Value>, audience: &str) -> Result<(), AuthRefusal> {
    match aud {
        None => Err(AuthRefusal::WrongAudience),
        Some(Value::String(single)) if single == audience => Ok(()),
        Some(Value::String(_)) => Err(AuthRefusal::WrongAudience),
        Some(Value::Array(list)) if list.iter().any(|item| item.as_str() == Some(audience)) => Ok(()),
        Some(Value::Array(_)) => Err(AuthRefusal::WrongAudience),
        Some(_) => Err(AuthRefusal::BadToken),
    }
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, which may have a fraction. The
/// fraction is dropped, and values beyond `i64` saturate.
fn numeric_date(value: &Value) -> Result<i64, AuthRefusal> {
    match value.as_i64() {
        Some(seconds) => Ok(seconds),
        None => match value.as_f64() {
            // `as` saturates at the bounds of i64, which is what a date past them means.
            Some(seconds) if seconds.is_finite() => Ok(seconds.floor() as i64),
            _ => Err(AuthRefusal::BadToken),
        },
    }
}

fn claim_holds(claim: Option<&Value>, expected: &Value) -> bool {
    match claim {
        Some(value) if value == expected => true,
        Some(Value::Array(list)) => list.contains(expected),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;
    const ISSUER: &str = "https://login.example.com/tenant";

    /// Checks `claims` against the rule every case shares: issuer [`ISSUER`], audience
    /// `orders`, `organization = acme` required.
    fn check(claims: Value, expected: Result<(), AuthRefusal>) {
        let required = [("organization".to_string(), json!("acme"))];
        let rule = ClaimRule { issuer: ISSUER, audience: "orders", required_claims: &required };
        let Value::Object(claims) = claims else { panic!("claims must be an object: {claims}") };
        assert_eq!(check_claims(&claims, &rule, NOW), expected, "{}", Value::Object(claims.clone()));
    }

    /// A token that passes, with `changes` applied (a `null` removes the claim).
    fn token(changes: Value) -> Value {
        let mut claims = json!({
            "iss": ISSUER,
            "aud": "orders",
            "exp": NOW + 300,
            "iat": NOW,
            "nbf": NOW,
            "organization": "acme",
        });
        if let (Value::Object(claims), Value::Object(changes)) = (&mut claims, changes) {
            for (name, value) in changes {
                match value {
                    Value::Null => claims.remove(&name),
                    value => claims.insert(name, value),
                };
            }
        }
        claims
    }

    #[test]
    fn claims_are_checked_in_order_and_each_refusal_has_its_reason() {
        use AuthRefusal::*;
        let cases = [
            (json!({}), Ok(())),
            // The issuer, compared exactly.
            (json!({ "iss": null }), Err(BadToken)),
            (json!({ "iss": "https://login.example.com/tenant/" }), Err(BadToken)),
            (json!({ "iss": "https://LOGIN.example.com/tenant" }), Err(BadToken)),
            (json!({ "iss": ["https://login.example.com/tenant"] }), Err(BadToken)),
            // The audience, alone or in a list.
            (json!({ "aud": ["billing", "orders"] }), Ok(())),
            (json!({ "aud": "billing" }), Err(WrongAudience)),
            (json!({ "aud": ["billing"] }), Err(WrongAudience)),
            (json!({ "aud": [] }), Err(WrongAudience)),
            (json!({ "aud": null }), Err(WrongAudience)),
            (json!({ "aud": "Orders" }), Err(WrongAudience)),
            (json!({ "aud": 7 }), Err(BadToken)),
            (json!({ "aud": { "orders": true } }), Err(BadToken)),
            // Expiry: required, numeric, 30 s of leeway and not one more.
            (json!({ "exp": null }), Err(BadToken)),
            (json!({ "exp": "1800000300" }), Err(BadToken)),
            (json!({ "exp": NOW - 29 }), Ok(())),
            (json!({ "exp": NOW - 30 }), Err(Expired)),
            (json!({ "exp": NOW - 3600 }), Err(Expired)),
            (json!({ "exp": (NOW - 29) as f64 + 0.5 }), Ok(())),
            (json!({ "exp": u64::MAX }), Ok(())),
            (json!({ "exp": i64::MIN }), Err(Expired)),
            // Not-before and issued-at: optional, numeric, at most 30 s ahead.
            (json!({ "nbf": null, "iat": null }), Ok(())),
            (json!({ "nbf": NOW + 30, "iat": NOW + 30 }), Ok(())),
            (json!({ "nbf": NOW + 31 }), Err(NotYetValid)),
            (json!({ "iat": NOW + 31 }), Err(NotYetValid)),
            (json!({ "iat": (NOW + 30) as f64 + 0.9 }), Ok(())),
            (json!({ "nbf": "now" }), Err(BadToken)),
            (json!({ "iat": true }), Err(BadToken)),
            // Required claims: the value itself, or a list holding it.
            (json!({ "organization": ["other", "acme"] }), Ok(())),
            (json!({ "organization": null }), Err(MissingClaim)),
            (json!({ "organization": "acme-evil" }), Err(MissingClaim)),
            (json!({ "organization": "ACME" }), Err(MissingClaim)),
            (json!({ "organization": ["other"] }), Err(MissingClaim)),
            (json!({ "organization": { "name": "acme" } }), Err(MissingClaim)),
            // The issuer is checked first, then the audience, then times, then claims.
            (json!({ "iss": "other", "aud": "billing" }), Err(BadToken)),
            (json!({ "aud": "billing", "exp": NOW - 3600 }), Err(WrongAudience)),
            (json!({ "exp": NOW - 3600, "organization": null }), Err(Expired)),
        ];
        for (changes, expected) in cases {
            check(token(changes), expected);
        }
    }

    #[test]
    fn a_required_claim_may_be_any_json_value() {
        let required = [("level".to_string(), json!(3)), ("admin".to_string(), json!(false))];
        let rule = ClaimRule { issuer: ISSUER, audience: "orders", required_claims: &required };
        let claims = |level: Value, admin: Value| {
            let claims = json!({ "iss": ISSUER, "aud": "orders", "exp": NOW + 60, "level": level, "admin": admin });
            claims.as_object().cloned().unwrap_or_default()
        };
        assert_eq!(check_claims(&claims(json!(3), json!(false)), &rule, NOW), Ok(()));
        assert_eq!(check_claims(&claims(json!([1, 3]), json!(false)), &rule, NOW), Ok(()));
        assert_eq!(check_claims(&claims(json!("3"), json!(false)), &rule, NOW), Err(AuthRefusal::MissingClaim));
        assert_eq!(check_claims(&claims(json!(3), json!("false")), &rule, NOW), Err(AuthRefusal::MissingClaim));
    }

    #[test]
    fn refusal_reasons_for_the_audit_log() {
        assert_eq!(AuthRefusal::MissingClaim.as_str(), "missing_claim");
        assert_eq!(AuthRefusal::IssuerUnavailable.as_str(), "issuer_unavailable");
    }
}
