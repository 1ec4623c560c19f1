//! Access tokens: the signing algorithms a realm may use and the realm's token settings.

use time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
