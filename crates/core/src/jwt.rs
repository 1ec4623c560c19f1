//! Access tokens: the signing algorithms a realm may use, the realm's token settings,
//! signing-key generation, and the checks every presented access token must pass.
//!
//! The server parses the JOSE header and claims (JSON) and verifies the signature; the
//! decisions about what it found are here, with `now` passed in.

use crate::auth::AuthRefusal;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use time::Duration;
use zeroize::Zeroizing;

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 30;
/// The `typ` header of every access token (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// The `typ` header of API tokens: explicitly typed (RFC 8725 §3.11), so that a verifier
/// that expects access tokens refuses them. Only keyward knows whether an API token's
/// record still allows it.
pub const API_TOKEN_TYP: &str = "api-token+jwt";

/// What a token's `typ` says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenTyp {
    Access,
    Api,
}
/// Longer presented tokens are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A JWS algorithm keyward signs access tokens with. Nothing else is ever accepted:
/// not `none`, not an HMAC algorithm (which a public key could be abused as a secret for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    Es256,
    Rs256,
    EdDsa,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa];

    /// The name in JOSE headers and JWKS (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::Rs256 => "RS256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    /// Parses the exact JOSE name; anything else (including `none` and `HS256`) is refused.
    pub fn parse(text: &str) -> Option<SigningAlg> {
        SigningAlg::ALL.into_iter().find(|alg| alg.as_str() == text)
    }
}

/// How a realm issues access tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenSettings {
    /// The algorithm of the realm's new signing keys.
    pub signing_alg: SigningAlg,
    /// The default access-token lifetime.
    pub access_token_lifetime: Duration,
    /// Access tokens issued before this unix second are refused (Keycloak's
    /// "tokens-not-before"); 0 for none.
    pub tokens_not_before: i64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            signing_alg: SigningAlg::Es256,
            access_token_lifetime: Duration::minutes(5),
            tokens_not_before: 0,
        }
    }
}

/// A freshly generated signing key: the private key as PKCS#8 v1 DER (to be sealed
/// before storage) and the public key as SubjectPublicKeyInfo DER.
pub struct GeneratedKey {
    pub pkcs8: Zeroizing<Vec<u8>>,
    pub spki: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the crypto library could not generate a {0} key")]
pub struct KeyGenerationFailed(&'static str);

/// Generates a signing key for `alg` (RSA keys are 2048-bit). aws-lc-rs draws the
/// randomness from the OS generator itself; it takes no RNG argument.
pub fn generate_signing_key(alg: SigningAlg) -> Result<GeneratedKey, KeyGenerationFailed> {
    let failed = |_| KeyGenerationFailed(alg.as_str());
    match alg {
        SigningAlg::Es256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?;
            let pkcs8 = pair.to_pkcs8v1().map_err(failed)?;
            let spki = pair.public_key().as_der().map_err(failed)?;
            Ok(GeneratedKey { pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()), spki: spki.as_ref().to_vec() })
        }
        SigningAlg::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(failed)?;
            let pkcs8 = pair.as_der().map_err(failed)?;
            let spki = pair.public_key().as_der().map_err(failed)?;
            Ok(GeneratedKey { pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()), spki: spki.as_ref().to_vec() })
        }
        SigningAlg::EdDsa => {
            let pair = Ed25519KeyPair::generate().map_err(failed)?;
            let pkcs8 = pair.to_pkcs8v1().map_err(failed)?;
            let spki = pair.public_key().as_der().map_err(failed)?;
            Ok(GeneratedKey { pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()), spki: spki.as_ref().to_vec() })
        }
    }
}

/// A `kid` keyward would have issued: 1–64 characters of `A-Z a-z 0-9 - _`. Anything
/// else (path characters, URLs, quotes) is refused before any lookup.
pub fn is_valid_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// The JOSE header of a presented token, as parsed. The parser refuses any parameter
/// other than these three, so `jwk`, `jku`, `x5u`, `x5c` and `crit` never get this far.
#[derive(Clone, Copy, Debug)]
pub struct HeaderFacts<'a> {
    pub alg: &'a str,
    pub typ: Option<&'a str>,
    pub kid: Option<&'a str>,
}

/// Checks the header: an algorithm keyward signs with, `typ` `at+jwt` or
/// `api-token+jwt`, a well-formed kid. Whether the kid is known, and of that algorithm,
/// is for the key ring.
pub fn check_header<'a>(header: &HeaderFacts<'a>) -> Result<(SigningAlg, &'a str, TokenTyp), AuthRefusal> {
    let alg = SigningAlg::parse(header.alg).ok_or(AuthRefusal::BadToken)?;
    let typ = match header.typ {
        Some(typ) if typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) => TokenTyp::Access,
        Some(typ) if typ.eq_ignore_ascii_case(API_TOKEN_TYP) => TokenTyp::Api,
        _ => return Err(AuthRefusal::BadToken),
    };
    let kid = header.kid.filter(|kid| is_valid_kid(kid)).ok_or(AuthRefusal::BadToken)?;
    Ok((alg, kid, typ))
}

/// The time claims of a token (unix seconds).
#[derive(Clone, Copy, Debug)]
pub struct TimeClaims {
    pub exp: i64,
    pub iat: i64,
    pub nbf: Option<i64>,
}

/// Checks `exp`, `nbf` and `iat` against `now` with [`LEEWAY_SECS`], and the realm's
/// "tokens not before" (tokens issued earlier are refused).
pub fn check_times(times: TimeClaims, now: i64, tokens_not_before: i64) -> Result<(), AuthRefusal> {
    if now > times.exp.saturating_add(LEEWAY_SECS) {
        return Err(AuthRefusal::Expired);
    }
    let not_before = times.nbf.unwrap_or(times.iat);
    if times.iat > now.saturating_add(LEEWAY_SECS) || not_before > now.saturating_add(LEEWAY_SECS) {
        return Err(AuthRefusal::NotYetValid);
    }
    if times.iat < tokens_not_before {
        return Err(AuthRefusal::Revoked);
    }
    Ok(())
}

/// Decides the scopes of an exchanged token: the requested ones, which must all be
/// among the subject's (when the subject is limited), else the subject's own.
pub fn narrow_scopes<'a>(subject: Option<&[&'a str]>, requested: Option<&[&'a str]>) -> Result<Vec<&'a str>, &'a str> {
    match (subject, requested) {
        (Some(held), Some(asked)) => match asked.iter().find(|scope| !held.contains(scope)) {
            Some(extra) => Err(extra),
            None => Ok(asked.to_vec()),
        },
        (None, Some(asked)) => Ok(asked.to_vec()),
        (Some(held), None) => Ok(held.to_vec()),
        (None, None) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks_refuse_what_keyward_never_issues() {
        let good = HeaderFacts { alg: "ES256", typ: Some("at+jwt"), kid: Some("abc_DEF-1") };
        assert_eq!(check_header(&good), Ok((SigningAlg::Es256, "abc_DEF-1", TokenTyp::Access)));
        let api = HeaderFacts { typ: Some("api-token+jwt"), ..good };
        assert_eq!(check_header(&api), Ok((SigningAlg::Es256, "abc_DEF-1", TokenTyp::Api)));
        let cases = [
            HeaderFacts { alg: "none", ..good },
            HeaderFacts { alg: "HS256", ..good },
            HeaderFacts { typ: Some("JWT"), ..good },
            HeaderFacts { typ: None, ..good },
            HeaderFacts { kid: None, ..good },
            HeaderFacts { kid: Some("../../etc/passwd"), ..good },
            HeaderFacts { kid: Some("a/b"), ..good },
            HeaderFacts { kid: Some(""), ..good },
        ];
        for case in cases {
            assert_eq!(check_header(&case), Err(AuthRefusal::BadToken), "{case:?}");
        }
    }

    #[test]
    fn times_allow_thirty_seconds_of_skew_and_no_more() {
        let now = 1_000_000;
        let fresh = TimeClaims { exp: now + 300, iat: now, nbf: Some(now) };
        assert_eq!(check_times(fresh, now, 0), Ok(()));
        assert_eq!(check_times(TimeClaims { exp: now - 30, ..fresh }, now, 0), Ok(()));
        assert_eq!(check_times(TimeClaims { exp: now - 31, ..fresh }, now, 0), Err(AuthRefusal::Expired));
        assert_eq!(check_times(TimeClaims { iat: now + 30, nbf: None, ..fresh }, now, 0), Ok(()));
        assert_eq!(check_times(TimeClaims { iat: now + 31, ..fresh }, now, 0), Err(AuthRefusal::NotYetValid));
        assert_eq!(check_times(TimeClaims { nbf: Some(now + 31), ..fresh }, now, 0), Err(AuthRefusal::NotYetValid));
        assert_eq!(check_times(fresh, now, now + 1), Err(AuthRefusal::Revoked));
    }

    #[test]
    fn exchanged_scopes_only_narrow() {
        assert_eq!(narrow_scopes(Some(&["a", "b"]), Some(&["a"])), Ok(vec!["a"]));
        assert_eq!(narrow_scopes(Some(&["a"]), Some(&["a", "b"])), Err("b"));
        assert_eq!(narrow_scopes(Some(&["a"]), None), Ok(vec!["a"]));
        assert_eq!(narrow_scopes(None, Some(&["x"])), Ok(vec!["x"]));
    }

    #[test]
    fn generated_keys_have_the_expected_public_key_sizes() {
        for (alg, spki_len) in [(SigningAlg::Es256, 91), (SigningAlg::EdDsa, 44)] {
            let key = generate_signing_key(alg).map_err(|error| error.to_string());
            assert_eq!(key.map(|key| key.spki.len()), Ok(spki_len), "{alg:?}");
        }
    }

    #[test]
    fn only_the_three_asymmetric_algorithms_parse() {
        for alg in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(alg.as_str()), Some(alg));
        }
        for refused in ["none", "None", "HS256", "es256", "ES384", "RS512", "Ed25519", ""] {
            assert_eq!(SigningAlg::parse(refused), None, "{refused}");
        }
    }
}
