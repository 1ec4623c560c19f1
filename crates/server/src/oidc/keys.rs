//! The key ring: every realm's signing keys (published, and retired ones for API tokens),
//! decrypted once at load and kept in memory, so signing and verification never touch the database.
//!
//! A key is published (in JWKS, and accepted for verification) from its creation until
//! its `removes_at`. It signs from its `activates_at` until a newer key activates. A
//! rotation inserts the next key with `activates_at` in the future (pre-publication, so
//! verifiers that cache JWKS learn it before it signs) and schedules the older keys'
//! removal a grace period after that, longer than the longest access token.

use crate::state::AppState;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use keyward_core::jwt::{ACCESS_TOKEN_TYP, API_TOKEN_TYP, SigningAlg, TokenTyp, generate_signing_key};
use keyward_core::secret::KeySealer;
use proto::oidc::Jwk;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use store::{NewAuditEvent, NewSigningKey, SigningKeyRow, StoreError, StoreResult};
use time::{Duration, OffsetDateTime};

/// How long a rotated-in key is published before it signs, by default: twice the
/// JWKS `max-age`, so a verifier that cached the set has fetched it again.
pub const DEFAULT_PREPUBLISH: Duration = Duration::minutes(10);
/// The longest signature `LoadedKey::verify` decodes; a longer one does not verify.
const MAX_SIGNATURE_BYTES: usize = 512;
/// How long verifiers may cache JWKS (its `Cache-Control: max-age`).
pub const JWKS_MAX_AGE_SECS: i64 = 300;
/// How long retired keys keep verifying at least.
pub const MIN_GRACE_MARGIN: Duration = Duration::minutes(1);

enum Signer {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A published signing key, ready to sign and verify.
pub struct LoadedKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub realm_id: i64,
    pub created_at: OffsetDateTime,
    /// Unix seconds.
    pub activates_at: i64,
    /// Unix seconds; `None` while it is the newest key.
    pub removes_at: Option<i64>,
    pub jwk: Jwk,
    /// SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
    signer: Signer,
    /// The public half, parsed once for aws-lc-rs and bound to the key's algorithm:
    /// verifying does not parse the key again (for RS256 that was a fifth of the time a
    /// verification took; `benches/benches/tokens.rs`).
    verifier: ParsedPublicKey,
    /// base64url of `{"alg":…,"typ":"at+jwt","kid":…}`, the same for every token.
    header_b64: String,
    /// The same with `"typ":"api-token+jwt"`, for API tokens.
    api_header_b64: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {kid} does not open or parse: {reason}")]
    Unusable { kid: String, reason: String },
    #[error("could not sign: {0}")]
    Signing(String),
}

/// What a sealed private key is bound to: its kid, realm and algorithm. A sealed key
/// copied into another row does not open.
fn sealing_context(kid: &str, realm_id: i64, alg: SigningAlg) -> String {
    format!("keyward signing key|{kid}|{realm_id}|{}", alg.as_str())
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn jwk(kind: &str, kid: &str, alg: SigningAlg) -> Jwk {
    Jwk {
        kty: kind.to_string(),
        kid: kid.to_string(),
        key_use: "sig".to_string(),
        alg: alg.as_str().to_string(),
        crv: None,
        x: None,
        y: None,
        n: None,
        e: None,
    }
}

impl LoadedKey {
    /// Opens a stored key with the master key's sealer.
    pub fn from_row(row: &SigningKeyRow, sealer: &KeySealer) -> Result<LoadedKey, KeyError> {
        let unusable = |reason: &str| KeyError::Unusable { kid: row.kid.clone(), reason: reason.to_string() };
        let alg = SigningAlg::parse(&row.alg).ok_or_else(|| unusable("unknown algorithm"))?;
        let aad = sealing_context(&row.kid, row.realm_id, alg);
        let pkcs8 = sealer.open(aad.as_bytes(), &row.sealed_private_key).map_err(|_| unusable("sealed key"))?;
        let (signer, jwk, verifier, spki) = match alg {
            SigningAlg::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                    .map_err(|_| unusable("P-256 key"))?;
                let point = pair.public_key().as_ref();
                if point.len() != 65 {
                    return Err(unusable("P-256 public key"));
                }
                let mut jwk = jwk("EC", &row.kid, alg);
                let (x, y) = (b64url(&point[1..33]), b64url(&point[33..65]));
                let verifier =
                    ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).map_err(|_| unusable("P-256 public key"))?;
                (jwk.crv, jwk.x, jwk.y) = (Some("P-256".to_string()), Some(x), Some(y));
                let spki = pair.public_key().as_der().map_err(|_| unusable("P-256 public key"))?.as_ref().to_vec();
                (Signer::Ecdsa(pair), jwk, verifier, spki)
            }
            SigningAlg::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(&pkcs8).map_err(|_| unusable("RSA key"))?;
                let public = pair.public_key();
                let n = b64url(public.modulus().big_endian_without_leading_zero());
                let e = b64url(public.exponent().big_endian_without_leading_zero());
                let mut jwk = jwk("RSA", &row.kid, alg);
                (jwk.n, jwk.e) = (Some(n), Some(e));
                let spki = pair.public_key().as_der().map_err(|_| unusable("RSA public key"))?.as_ref().to_vec();
                let verifier =
                    ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &spki).map_err(|_| unusable("RSA public key"))?;
                (Signer::Rsa(pair), jwk, verifier, spki)
            }
            SigningAlg::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| unusable("Ed25519 key"))?;
                let x = b64url(pair.public_key().as_ref());
                let verifier = ParsedPublicKey::new(&ED25519, pair.public_key().as_ref())
                    .map_err(|_| unusable("Ed25519 public key"))?;
                let mut jwk = jwk("OKP", &row.kid, alg);
                (jwk.crv, jwk.x) = (Some("Ed25519".to_string()), Some(x));
                let spki = pair.public_key().as_der().map_err(|_| unusable("Ed25519 public key"))?.as_ref().to_vec();
                (Signer::Ed25519(pair), jwk, verifier, spki)
            }
        };
        // Everything published comes from the opened private key; a public key written
        // into the row by someone without the master key is refused, not served.
        if spki != row.public_key {
            return Err(unusable("stored public key does not match the private key"));
        }
        let header = serde_json::json!({ "alg": alg.as_str(), "typ": ACCESS_TOKEN_TYP, "kid": row.kid });
        let api_header = serde_json::json!({ "alg": alg.as_str(), "typ": API_TOKEN_TYP, "kid": row.kid });
        Ok(LoadedKey {
            kid: row.kid.clone(),
            alg,
            realm_id: row.realm_id,
            created_at: row.created_at,
            activates_at: row.activates_at.unix_timestamp(),
            removes_at: row.removes_at.map(OffsetDateTime::unix_timestamp),
            jwk,
            spki,
            signer,
            verifier,
            header_b64: b64url(header.to_string().as_bytes()),
            api_header_b64: b64url(api_header.to_string().as_bytes()),
        })
    }

    /// Signs `claims` (JSON) into a compact JWS typed as an access token.
    pub fn sign(&self, claims: &[u8]) -> Result<String, KeyError> {
        self.sign_typed(claims, TokenTyp::Access)
    }

    /// Signs `claims` (JSON) into a compact JWS with the `typ` of `typ`.
    pub fn sign_typed(&self, claims: &[u8], typ: TokenTyp) -> Result<String, KeyError> {
        let header = match typ {
            TokenTyp::Access => &self.header_b64,
            TokenTyp::Api => &self.api_header_b64,
        };
        let mut token = String::with_capacity(header.len() + claims.len() * 4 / 3 + 400);
        token.push_str(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut token);
        let signature = self.sign_message(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    /// Signs `message` (`header.payload`) and returns the raw signature.
    pub fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.signer {
            Signer::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| KeyError::Signing("ECDSA".to_string())),
            Signer::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
                    .map_err(|_| KeyError::Signing("RSA".to_string()))?;
                Ok(signature)
            }
            Signer::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// Verifies a signature (base64url, as in the token) over `message` (`header.payload`)
    /// with this key's algorithm, which the parsed key is bound to.
    pub fn verify(&self, message: &[u8], signature_b64: &str) -> bool {
        // Room for an RSA-4096 signature; keyward's are 64 (ES256, EdDSA) or 256 bytes.
        let mut buffer = [0u8; MAX_SIGNATURE_BYTES + crate::oidc::tokens::SIGNATURE_SLACK];
        crate::oidc::tokens::decode_signature(signature_b64, &mut buffer)
            .is_some_and(|signature| self.verifier.verify_sig(message, signature).is_ok())
    }

    /// The public key as Keycloak's realm document shows it: base64 SPKI DER.
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(&self.spki)
    }

    pub fn is_published(&self, now: i64) -> bool {
        self.removes_at.is_none_or(|removes_at| removes_at > now)
    }
}

/// Every realm's keys: the published ones sign and verify access tokens; retired ones are
/// kept only to verify API tokens, whose records say whether they still work.
#[derive(Default)]
pub struct KeyRing {
    realms: RwLock<HashMap<i64, Arc<Vec<Arc<LoadedKey>>>>>,
}

impl KeyRing {
    pub fn replace_realm(&self, realm_id: i64, keys: Vec<LoadedKey>) {
        let keys = Arc::new(keys.into_iter().map(Arc::new).collect());
        if let Ok(mut realms) = self.realms.write() {
            realms.insert(realm_id, keys);
        }
    }

    fn keys(&self, realm_id: i64) -> Arc<Vec<Arc<LoadedKey>>> {
        self.realms.read().ok().and_then(|realms| realms.get(&realm_id).cloned()).unwrap_or_default()
    }

    /// The key that signs at `now`: the published key activated most recently.
    pub fn signing_key(&self, realm_id: i64, now: i64) -> Option<Arc<LoadedKey>> {
        self.keys(realm_id)
            .iter()
            .filter(|key| key.activates_at <= now && key.is_published(now))
            .max_by_key(|key| (key.activates_at, key.created_at))
            .cloned()
    }

    /// The published key named `kid` in the realm.
    pub fn find(&self, realm_id: i64, kid: &str, now: i64) -> Option<Arc<LoadedKey>> {
        self.keys(realm_id).iter().find(|key| key.kid == kid && key.is_published(now)).cloned()
    }

    /// The realm's key named `kid`, published or retired: for API tokens only.
    pub fn find_retained(&self, realm_id: i64, kid: &str) -> Option<Arc<LoadedKey>> {
        self.keys(realm_id).iter().find(|key| key.kid == kid).cloned()
    }

    /// The realm's keys as JWKS publishes them at `now`.
    pub fn published(&self, realm_id: i64, now: i64) -> Vec<Arc<LoadedKey>> {
        self.keys(realm_id).iter().filter(|key| key.is_published(now)).cloned().collect()
    }
}

/// Reads one realm's keys from the store into the ring. A key that does not open is
/// logged and left out: the rest of the realm keeps working.
pub async fn reload_realm_keys(state: &AppState, realm_id: i64) -> StoreResult<()> {
    let rows = state.store.signing_keys_with_retired(Some(realm_id)).await?;
    state.keys.replace_realm(realm_id, open_rows(&rows, &state.sealer));
    Ok(())
}

/// Reads every realm's keys, at start.
pub async fn load_all_keys(state: &AppState) -> StoreResult<()> {
    let rows = state.store.signing_keys_with_retired(None).await?;
    let mut by_realm: HashMap<i64, Vec<SigningKeyRow>> = HashMap::new();
    for row in rows {
        by_realm.entry(row.realm_id).or_default().push(row);
    }
    for (realm_id, rows) in by_realm {
        state.keys.replace_realm(realm_id, open_rows(&rows, &state.sealer));
    }
    Ok(())
}

fn open_rows(rows: &[SigningKeyRow], sealer: &KeySealer) -> Vec<LoadedKey> {
    rows.iter()
        .filter_map(|row| match LoadedKey::from_row(row, sealer) {
            Ok(key) => Some(key),
            Err(error) => {
                tracing::error!(%error, "signing key left out");
                None
            }
        })
        .collect()
}

/// What a rotation asks for.
#[derive(Clone, Copy, Debug)]
pub struct Rotation {
    pub alg: SigningAlg,
    pub prepublish: Duration,
    pub grace: Duration,
}

/// Generates a key and stores it sealed, in `mutation`. Returns its kid.
async fn insert_new_key(
    mutation: &mut store::Mutation,
    sealer: &KeySealer,
    realm_id: i64,
    alg: SigningAlg,
    activates_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<String, RotationError> {
    let generated = tokio::task::spawn_blocking(move || generate_signing_key(alg))
        .await
        .map_err(|error| RotationError::Crypto(error.to_string()))?
        .map_err(|error| RotationError::Crypto(error.to_string()))?;
    let kid = keyward_core::PublicId::generate(&mut rand_core::UnwrapErr(rand_core::OsRng)).to_string();
    let sealed = sealer
        .seal(
            &mut rand_core::UnwrapErr(rand_core::OsRng),
            sealing_context(&kid, realm_id, alg).as_bytes(),
            &generated.pkcs8,
        )
        .map_err(|error| RotationError::Crypto(error.to_string()))?;
    let new = NewSigningKey {
        realm_id,
        kid: &kid,
        alg: alg.as_str(),
        public_key: &generated.spki,
        sealed_private_key: &sealed,
        activates_at,
    };
    mutation.insert_signing_key(&new, now).await?;
    Ok(kid)
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key generation failed: {0}")]
    Crypto(String),
}

/// Makes sure the realm has a current key, generating its first one (active at once)
/// if it has none. Safe on many nodes at once: mutations are serialised and the check
/// runs inside one.
pub async fn ensure_realm_key(state: &AppState, realm_id: i64, realm_name: &str) -> Result<(), RotationError> {
    let now = OffsetDateTime::now_utc();
    if state.keys.signing_key(realm_id, now.unix_timestamp()).is_some() {
        return Ok(());
    }
    let alg = state.realm(realm_id).map_or(SigningAlg::Es256, |realm| realm.token_settings.signing_alg);
    let mut mutation = state.store.begin().await?;
    if !mutation.realm_has_active_signing_key(realm_id, now).await? {
        let kid = insert_new_key(&mut mutation, &state.sealer, realm_id, alg, now, now).await?;
        mutation
            .audit(NewAuditEvent {
                realm: realm_name.to_string(),
                at: now,
                actor: "keyward".to_string(),
                action: "signing_key.create".to_string(),
                target: format!("signing_key:{kid}"),
                client_ip: String::new(),
                result: "ok".to_string(),
                detail: format!("first {} key of the realm", alg.as_str()),
            })
            .await?;
    }
    mutation.commit().await?;
    reload_realm_keys(state, realm_id).await?;
    Ok(())
}

/// Rotates a realm's signing key in one transaction: a new key, published now, signing
/// after `prepublish`; every older key leaves JWKS `grace` after that. Works on the
/// store alone, so the CLI can run it on the data dir. Returns the new kid.
pub async fn rotate(
    store: &store::Store,
    sealer: &KeySealer,
    realm: &store::RealmRow,
    rotation: Rotation,
    actor: &str,
) -> Result<String, RotationError> {
    let now = OffsetDateTime::now_utc();
    let mut mutation = store.begin().await?;
    // A key published by an earlier rotation that has not signed yet is superseded.
    mutation.withdraw_pending_signing_keys(realm.id, now).await?;
    // With nothing signing now (a realm's first key), the new key signs at once: there
    // is nothing to pre-publish against.
    let activates_at =
        if mutation.realm_has_active_signing_key(realm.id, now).await? { now + rotation.prepublish } else { now };
    let kid = insert_new_key(&mut mutation, sealer, realm.id, rotation.alg, activates_at, now).await?;
    let retired = mutation.retire_signing_keys(realm.id, &kid, activates_at + rotation.grace).await?;
    mutation
        .audit(NewAuditEvent {
            realm: realm.name.clone(),
            at: now,
            actor: actor.to_string(),
            action: "signing_key.rotate".to_string(),
            target: format!("signing_key:{kid}"),
            client_ip: String::new(),
            result: "ok".to_string(),
            detail: format!(
                "{} key signs from {}; {retired} older key(s) leave JWKS {} s after that",
                rotation.alg.as_str(),
                activates_at.unix_timestamp(),
                rotation.grace.whole_seconds()
            ),
        })
        .await?;
    mutation.commit().await?;
    Ok(kid)
}

/// The grace period a rotation must keep at least: the realm's access-token lifetime
/// plus the verification leeway and a margin.
pub fn minimum_grace(realm: &store::RealmRow) -> Duration {
    realm.token_settings.access_token_lifetime + Duration::seconds(keyward_core::jwt::LEEWAY_SECS) + MIN_GRACE_MARGIN
}

/// The default grace: an hour, or twice the access-token lifetime when that is longer.
pub fn default_grace(realm: &store::RealmRow) -> Duration {
    std::cmp::max(Duration::hours(1), realm.token_settings.access_token_lifetime * 2).max(minimum_grace(realm))
}

/// Refuses a rotation whose grace would let tokens outlive their key, or whose timing
/// is out of range. The message names the flag or field to fix.
pub fn check_rotation(realm: &store::RealmRow, rotation: &Rotation) -> Result<(), String> {
    if !(0..=7 * 86_400).contains(&rotation.prepublish.whole_seconds()) {
        return Err("prepublish must be between 0 and 604800 seconds".to_string());
    }
    let minimum = minimum_grace(realm);
    if rotation.grace < minimum || rotation.grace > Duration::days(30) {
        return Err(format!(
            "grace must be between {} and 2592000 seconds: old keys must keep verifying for the realm's access-token              lifetime plus leeway",
            minimum.whole_seconds()
        ));
    }
    Ok(())
}

/// The realm's JWKS as published now, read from the store (for offline export).
pub async fn export_jwks(
    store: &store::Store,
    sealer: &KeySealer,
    realm: &store::RealmRow,
) -> StoreResult<proto::oidc::Jwks> {
    let rows = store.realm_signing_keys(realm.id, OffsetDateTime::now_utc()).await?;
    Ok(proto::oidc::Jwks { keys: open_rows(&rows, sealer).into_iter().map(|key| key.jwk).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::MasterKey;

    fn key(sealer: &KeySealer, kid: &str, alg: SigningAlg, activates_at: i64, removes_at: Option<i64>) -> LoadedKey {
        let generated = generate_signing_key(alg).expect("key generation");
        let context = sealing_context(kid, 7, alg);
        let sealed = sealer.seal(&mut rand_core::UnwrapErr(rand_core::OsRng), context.as_bytes(), &generated.pkcs8);
        let row = SigningKeyRow {
            id: 1,
            realm_id: 7,
            kid: kid.to_string(),
            alg: alg.as_str().to_string(),
            public_key: generated.spki,
            sealed_private_key: sealed.expect("sealing"),
            created_at: OffsetDateTime::from_unix_timestamp(activates_at).expect("time"),
            activates_at: OffsetDateTime::from_unix_timestamp(activates_at).expect("time"),
            removes_at: removes_at.map(|at| OffsetDateTime::from_unix_timestamp(at).expect("time")),
        };
        LoadedKey::from_row(&row, sealer).expect("opens")
    }

    /// The signature segment is decoded strictly and never overflows its buffer: a
    /// re-encoded signature with other trailing bits, padding, or one far too long for
    /// any key does not verify (nor panic); the genuine one does.
    #[test]
    fn only_the_exact_signature_encoding_verifies() {
        let sealer = MasterKey::from_bytes([3; 32]).key_sealer();
        for alg in [SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Rs256] {
            let key = key(&sealer, "k1", alg, 0, None);
            let token = key.sign(br#"{"sub":"a"}"#).expect("signs");
            let (message, signature) = token.rsplit_once('.').expect("three segments");
            assert!(key.verify(message.as_bytes(), signature), "{alg:?}");
            let mut tweaked = signature.to_string();
            // The last character carries trailing bits (64 and 256 bytes are not multiples
            // of 3): its neighbour in the alphabet decodes to the same bytes, or fails.
            let last = tweaked.pop().expect("not empty");
            let next = if last == 'A' { 'B' } else { 'A' };
            tweaked.push(next);
            assert!(!key.verify(message.as_bytes(), &tweaked), "{alg:?}: {last} -> {next}");
            assert!(!key.verify(message.as_bytes(), &format!("{signature}==")), "{alg:?}");
            assert!(!key.verify(message.as_bytes(), &format!("{signature} ")), "{alg:?}");
            for length in [683, 684, 686, 10_000] {
                assert!(!key.verify(message.as_bytes(), &"A".repeat(length)), "{alg:?}, {length}");
            }
        }
    }

    #[test]
    fn a_rotated_key_is_published_before_it_signs_and_the_old_one_leaves_after_the_grace() {
        let sealer = MasterKey::from_bytes([3; 32]).key_sealer();
        let ring = KeyRing::default();
        // Old key since 1000; rotation at 2000 with the new key signing from 2600 and the
        // old one removed at 2600 + 3600.
        ring.replace_realm(
            7,
            vec![
                key(&sealer, "old", SigningAlg::Es256, 1000, Some(6200)),
                key(&sealer, "new", SigningAlg::EdDsa, 2600, None),
            ],
        );
        let signing = |now| ring.signing_key(7, now).map(|key| key.kid.clone());
        let published = |now| ring.published(7, now).iter().map(|key| key.kid.clone()).collect::<Vec<_>>();
        assert_eq!(signing(2000), Some("old".to_string()));
        assert_eq!(published(2000), ["old", "new"]);
        assert_eq!(signing(2600), Some("new".to_string()));
        assert!(ring.find(7, "old", 6199).is_some(), "the old key verifies through the grace period");
        assert!(ring.find(7, "old", 6200).is_none());
        assert_eq!(published(6200), ["new"]);
        assert!(ring.find(8, "new", 3000).is_none(), "another realm's kid is unknown here");
    }

    #[test]
    fn every_algorithm_signs_what_it_verifies_and_nothing_else() {
        let sealer = MasterKey::from_bytes([4; 32]).key_sealer();
        for alg in SigningAlg::ALL {
            let key = key(&sealer, "k", alg, 0, None);
            let token = key.sign(br#"{"sub":"x"}"#).expect("sign");
            let (message, signature) = token.rsplit_once('.').expect("three parts");
            assert!(key.verify(message.as_bytes(), signature), "{alg:?}");
            assert!(!key.verify(format!("{message}x").as_bytes(), signature), "{alg:?} tampered");
            assert!(!key.verify(message.as_bytes(), &format!("{signature}AAAA")), "{alg:?} signature too long");
            assert!(!key.verify(message.as_bytes(), &"A".repeat(1024)), "{alg:?} longer than any signature");
            assert!(!key.verify(message.as_bytes(), &format!("{signature}=")), "{alg:?} padded base64");
        }
    }

    #[test]
    fn a_key_sealed_for_one_kid_does_not_open_as_another() {
        let sealer = MasterKey::from_bytes([5; 32]).key_sealer();
        let generated = generate_signing_key(SigningAlg::Es256).expect("key generation");
        let context = sealing_context("a", 1, SigningAlg::Es256);
        let sealed = sealer
            .seal(&mut rand_core::UnwrapErr(rand_core::OsRng), context.as_bytes(), &generated.pkcs8)
            .expect("seal");
        let row = SigningKeyRow {
            id: 1,
            realm_id: 1,
            kid: "b".to_string(),
            alg: "ES256".to_string(),
            public_key: generated.spki,
            sealed_private_key: sealed,
            created_at: OffsetDateTime::UNIX_EPOCH,
            activates_at: OffsetDateTime::UNIX_EPOCH,
            removes_at: None,
        };
        assert!(LoadedKey::from_row(&row, &sealer).is_err());
    }
}
