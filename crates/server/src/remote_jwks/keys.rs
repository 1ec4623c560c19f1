//! A foreign issuer's key set: the JWS algorithms a resource server accepts, and the
//! JWKS document parsed into aws-lc-rs public keys once per fetch.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512, RSA_PSS_2048_8192_SHA256, RSA_PSS_2048_8192_SHA384,
    RSA_PSS_2048_8192_SHA512, RsaParameters, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// An asymmetric JWS algorithm (RFC 7518) a foreign issuer may sign with. There is no
/// `none` and no HMAC algorithm: a public key must never be usable as a shared secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JwsAlgorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl JwsAlgorithm {
    pub const ALL: [JwsAlgorithm; 9] = [
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Rs384,
        JwsAlgorithm::Rs512,
        JwsAlgorithm::Ps256,
        JwsAlgorithm::Ps384,
        JwsAlgorithm::Ps512,
        JwsAlgorithm::Es256,
        JwsAlgorithm::Es384,
        JwsAlgorithm::EdDsa,
    ];

    const RSA: [JwsAlgorithm; 6] = [
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Rs384,
        JwsAlgorithm::Rs512,
        JwsAlgorithm::Ps256,
        JwsAlgorithm::Ps384,
        JwsAlgorithm::Ps512,
    ];

    /// The name in JOSE headers and JWKS (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlgorithm::Rs256 => "RS256",
            JwsAlgorithm::Rs384 => "RS384",
            JwsAlgorithm::Rs512 => "RS512",
            JwsAlgorithm::Ps256 => "PS256",
            JwsAlgorithm::Ps384 => "PS384",
            JwsAlgorithm::Ps512 => "PS512",
            JwsAlgorithm::Es256 => "ES256",
            JwsAlgorithm::Es384 => "ES384",
            JwsAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// Parses the exact JOSE name; anything else (`none`, `HS256`, `es256`) is refused.
    pub fn parse(text: &str) -> Option<JwsAlgorithm> {
        JwsAlgorithm::ALL.into_iter().find(|alg| alg.as_str() == text)
    }

    fn rsa_parameters(self) -> Option<&'static RsaParameters> {
        match self {
            JwsAlgorithm::Rs256 => Some(&RSA_PKCS1_2048_8192_SHA256),
            JwsAlgorithm::Rs384 => Some(&RSA_PKCS1_2048_8192_SHA384),
            JwsAlgorithm::Rs512 => Some(&RSA_PKCS1_2048_8192_SHA512),
            JwsAlgorithm::Ps256 => Some(&RSA_PSS_2048_8192_SHA256),
            JwsAlgorithm::Ps384 => Some(&RSA_PSS_2048_8192_SHA384),
            JwsAlgorithm::Ps512 => Some(&RSA_PSS_2048_8192_SHA512),
            JwsAlgorithm::Es256 | JwsAlgorithm::Es384 | JwsAlgorithm::EdDsa => None,
        }
    }
}

/// One usable key of an issuer's set, parsed for each algorithm it may verify.
pub(super) struct RemoteKey {
    /// The JWK members that make the key, to recognise it in the next fetch.
    identity: String,
    /// One parsed key per algorithm: aws-lc-rs binds a parsed key to its algorithm, and an
    /// RSA JWK without `alg` may verify any of the six RSA ones.
    verifiers: Vec<(JwsAlgorithm, ParsedPublicKey)>,
}

impl RemoteKey {
    /// The parsed key for `alg`, when the JWK's type, curve and `alg` allow it.
    pub(super) fn verifier(&self, alg: JwsAlgorithm) -> Option<&ParsedPublicKey> {
        self.verifiers.iter().find(|(key_alg, _)| *key_alg == alg).map(|(_, verifier)| verifier)
    }

    #[cfg(test)]
    pub(super) fn algorithms(&self) -> Vec<JwsAlgorithm> {
        self.verifiers.iter().map(|(alg, _)| *alg).collect()
    }
}

/// An issuer's usable keys by kid, as of one fetch.
#[derive(Default)]
pub(super) struct KeySet {
    keys: HashMap<String, Arc<RemoteKey>>,
}

impl KeySet {
    pub(super) fn get(&self, kid: &str) -> Option<&Arc<RemoteKey>> {
        self.keys.get(kid)
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    #[cfg(test)]
    pub(super) fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

/// The JWK members keyward reads; others (`x5c`, `x5t`, …) are not looked at.
#[derive(Deserialize)]
struct JwkMembers {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// Why a fetched document gave no key set.
#[derive(Debug, thiserror::Error)]
pub(super) enum KeySetError {
    #[error("not a JWKS document: {0}")]
    NotJwks(serde_json::Error),
    #[error("no usable signing key among {0} JWK(s)")]
    NoUsableKey(usize),
}

/// How many JWKs of one set are looked at.
const MAX_KEYS_PER_SET: usize = 32;

/// Parses a JWKS document into the keys keyward can verify with. A JWK it cannot use (an
/// encryption key, an HMAC secret, an unknown curve, a broken value, no kid, a kid seen
/// before) is left out; the rest still work. A key unchanged since `previous` is taken
/// from it as it is, so tokens verified with it stay cached across refreshes. A set with
/// no usable key is an error: a broken issuer must not wipe the set that works.
pub(super) fn parse_key_set(document: &[u8], previous: Option<&KeySet>) -> Result<KeySet, KeySetError> {
    let document: JwksDocument = serde_json::from_slice(document).map_err(KeySetError::NotJwks)?;
    let published = document.keys.len();
    let mut keys = HashMap::new();
    // Issuers publish a handful of keys; past this many, the rest are left out, so a key
    // set made to be huge costs a bounded amount of parsing and memory.
    for value in document.keys.into_iter().take(MAX_KEYS_PER_SET) {
        let Ok(members) = serde_json::from_value::<JwkMembers>(value) else { continue };
        let Some(kid) = members.kid.clone() else { continue };
        if keys.contains_key(&kid) {
            tracing::debug!(%kid, "JWK with a kid seen before left out");
            continue;
        }
        let identity = identity(&members);
        let reused = previous.and_then(|set| set.get(&kid)).filter(|key| key.identity == identity);
        let key = match reused {
            Some(key) => key.clone(),
            None => match parse_key(&members, identity) {
                Some(key) => Arc::new(key),
                None => {
                    tracing::debug!(%kid, kty = %members.kty, "JWK keyward cannot verify with left out");
                    continue;
                }
            },
        };
        keys.insert(kid, key);
    }
    if keys.is_empty() {
        return Err(KeySetError::NoUsableKey(published));
    }
    Ok(KeySet { keys })
}

fn identity(members: &JwkMembers) -> String {
    let parts = [
        Some(members.kty.as_str()),
        members.key_use.as_deref(),
        members.alg.as_deref(),
        members.crv.as_deref(),
        members.x.as_deref(),
        members.y.as_deref(),
        members.n.as_deref(),
        members.e.as_deref(),
    ];
    let mut identity = String::new();
    for part in parts {
        identity.push_str(part.unwrap_or("-"));
        identity.push('|');
    }
    if let Some(operations) = &members.key_ops {
        identity.push_str(&operations.join(","));
    }
    identity
}

fn parse_key(members: &JwkMembers, identity: String) -> Option<RemoteKey> {
    if members.key_use.as_deref().is_some_and(|key_use| key_use != "sig") {
        return None;
    }
    if members.key_ops.as_ref().is_some_and(|operations| !operations.iter().any(|operation| operation == "verify")) {
        return None;
    }
    // An `alg` keyward does not know (or HS256, or `none`) makes the key unusable, not
    // usable with anything.
    let declared = match members.alg.as_deref() {
        Some(text) => Some(JwsAlgorithm::parse(text)?),
        None => None,
    };
    let verifiers = match (members.kty.as_str(), members.crv.as_deref()) {
        ("RSA", _) => {
            let modulus = decode(members.n.as_deref()?)?;
            let exponent = decode(members.e.as_deref()?)?;
            let components =
                RsaPublicKeyComponents { n: without_leading_zeros(&modulus), e: without_leading_zeros(&exponent) };
            // aws-lc-rs checks the size only when verifying; a key that could never verify
            // (under 2048 or over 8192 bits) is left out here, so its kid is unknown.
            if !(256..=1024).contains(&components.n.len()) {
                return None;
            }
            let algorithms = match declared {
                Some(alg) => vec![alg],
                None => JwsAlgorithm::RSA.to_vec(),
            };
            let mut verifiers = Vec::with_capacity(algorithms.len());
            for alg in algorithms {
                verifiers.push((alg, components.to_parsed_public_key(alg.rsa_parameters()?).ok()?));
            }
            verifiers
        }
        ("EC", Some(curve)) => {
            let (alg, verification, coordinate_len) = match curve {
                "P-256" => (JwsAlgorithm::Es256, &ECDSA_P256_SHA256_FIXED, 32),
                "P-384" => (JwsAlgorithm::Es384, &ECDSA_P384_SHA384_FIXED, 48),
                _ => return None,
            };
            if declared.is_some_and(|declared| declared != alg) {
                return None;
            }
            let (x, y) = (decode(members.x.as_deref()?)?, decode(members.y.as_deref()?)?);
            if x.len() != coordinate_len || y.len() != coordinate_len {
                return None;
            }
            // The uncompressed point, as aws-lc-rs takes it: 0x04 ‖ x ‖ y.
            let mut point = Vec::with_capacity(1 + 2 * coordinate_len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            vec![(alg, ParsedPublicKey::new(verification, &point).ok()?)]
        }
        ("OKP", Some("Ed25519")) => {
            if declared.is_some_and(|declared| declared != JwsAlgorithm::EdDsa) {
                return None;
            }
            let x = decode(members.x.as_deref()?)?;
            if x.len() != 32 {
                return None;
            }
            vec![(JwsAlgorithm::EdDsa, ParsedPublicKey::new(&ED25519, &x).ok()?)]
        }
        _ => return None,
    };
    Some(RemoteKey { identity, verifiers })
}

/// base64url as JWKs carry it; trailing padding, which some issuers add, is tolerated.
fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// RFC 7518 forbids leading zero octets in `n` and `e`, and aws-lc-rs refuses them; a
/// few issuers still send one, and the number is the same without it.
fn without_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|byte| *byte != 0).unwrap_or(bytes.len());
    &bytes[start..]
}
