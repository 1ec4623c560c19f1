//! The opaque credential format: `prefix + base62(random) + base62(CRC32)`.
//!
//! A secret carries 192 random bits from the caller's CSPRNG (the server passes the OS
//! generator). The checksum lets us refuse a mistyped or forged key without any lookup,
//! and lets secret scanners recognise keyward keys. Only `HMAC-SHA256(pepper, secret)`
//! is ever stored; the pepper is derived from the master key so a stolen database alone
//! cannot be used to test guesses.

use aws_lc_rs::{aead, hkdf, hmac};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// Random bytes in every opaque secret: 192 bits, above the 160 the design asks for.
pub const SECRET_RANDOM_BYTES: usize = 24;
/// base62 of 24 bytes needs at most 33 characters; we always pad to this width.
const RANDOM_CHARS: usize = 33;
/// base62 of a u32 needs at most 6 characters.
const CHECKSUM_CHARS: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a credential is, told by its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// Full-admin key made by `keyward admin-key create`.
    AdminKey,
    /// A person's personal API key.
    UserApiKey,
    /// A service account's token.
    ServiceAccountToken,
    /// An API key of a published API service deployment.
    DeploymentKey,
    /// A credential bound to one workload run.
    WorkloadCredential,
    /// A registered OAuth client's secret. Kept with the client, not in the index.
    ClientSecret,
    /// A signed access token (JWT) from the token service. Not an opaque secret: it has
    /// no prefix, is never stored, and is not among [`CredentialKind::ALL`].
    AccessToken,
    /// An admin-managed API token: a JWT bound to a record in the credentials table,
    /// whose `jti` is what the record's digest is taken of. Not an opaque secret either.
    ApiToken,
}

impl CredentialKind {
    /// How many kinds there are: `ApiToken` is the last. For tables indexed by
    /// [`CredentialKind::index`].
    pub const COUNT: usize = CredentialKind::ApiToken as usize + 1;

    /// This kind's place in a table of [`CredentialKind::COUNT`] entries.
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const ALL: [CredentialKind; 6] = [
        CredentialKind::AdminKey,
        CredentialKind::UserApiKey,
        CredentialKind::ServiceAccountToken,
        CredentialKind::DeploymentKey,
        CredentialKind::WorkloadCredential,
        CredentialKind::ClientSecret,
    ];

    /// Every kind a credentials row or an index slot can hold: the opaque kinds and
    /// API tokens.
    pub const STORED: [CredentialKind; 7] = [
        CredentialKind::AdminKey,
        CredentialKind::UserApiKey,
        CredentialKind::ServiceAccountToken,
        CredentialKind::DeploymentKey,
        CredentialKind::WorkloadCredential,
        CredentialKind::ClientSecret,
        CredentialKind::ApiToken,
    ];

    /// The prefix every secret of this kind starts with, underscore included.
    pub fn prefix(self) -> &'static str {
        match self {
            CredentialKind::AdminKey => "kwa_",
            CredentialKind::UserApiKey => "kwu_",
            CredentialKind::ServiceAccountToken => "kws_",
            CredentialKind::DeploymentKey => "kwd_",
            CredentialKind::WorkloadCredential => "kwr_",
            CredentialKind::ClientSecret => "kwc_",
            CredentialKind::AccessToken | CredentialKind::ApiToken => "",
        }
    }

    /// A stable short name used in storage, metrics and audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::AdminKey => "admin_key",
            CredentialKind::UserApiKey => "user_api_key",
            CredentialKind::ServiceAccountToken => "service_account_token",
            CredentialKind::DeploymentKey => "deployment_key",
            CredentialKind::WorkloadCredential => "workload_credential",
            CredentialKind::ClientSecret => "client_secret",
            CredentialKind::AccessToken => "access_token",
            CredentialKind::ApiToken => "api_token",
        }
    }

    pub fn from_str_name(name: &str) -> Option<Self> {
        Self::STORED.into_iter().find(|kind| kind.as_str() == name)
    }

    pub fn as_u8(self) -> u8 {
        match self {
            CredentialKind::AdminKey => 0,
            CredentialKind::UserApiKey => 1,
            CredentialKind::ServiceAccountToken => 2,
            CredentialKind::DeploymentKey => 3,
            CredentialKind::WorkloadCredential => 4,
            CredentialKind::AccessToken => 5,
            CredentialKind::ClientSecret => 6,
            CredentialKind::ApiToken => 7,
        }
    }

    pub fn from_u8(value: u8) -> Option<Self> {
        Self::STORED.into_iter().find(|kind| kind.as_u8() == value)
    }

    fn from_prefix(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| text.starts_with(kind.prefix()))
    }
}

/// A plaintext secret. It exists only in the response that creates it: it has no
/// `Debug`, `Display` or `Serialize`, and its memory is zeroed on drop.
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Generates a new secret of `kind` from `rng`, which must be a CSPRNG.
    pub fn generate(kind: CredentialKind, rng: &mut impl CryptoRng) -> Secret {
        let mut random = Zeroizing::new([0u8; SECRET_RANDOM_BYTES]);
        rng.fill_bytes(random.as_mut());
        let mut text = String::with_capacity(4 + RANDOM_CHARS + CHECKSUM_CHARS);
        text.push_str(kind.prefix());
        push_base62(&mut text, random.as_ref(), RANDOM_CHARS);
        let checksum = checksum_text(crc32fast::hash(text.as_bytes()));
        text.extend(checksum.iter().map(|digit| char::from(*digit)));
        Secret(Zeroizing::new(text))
    }

    /// The whole secret, to hand to its owner exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The non-secret start shown in lists so people can tell their keys apart:
    /// the prefix and the first four random characters.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(8).collect()
    }
}

/// Why a presented string is not a keyward secret. Never shown to the caller; every
/// format error answers the same generic 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    #[error("unknown prefix")]
    UnknownPrefix,
    #[error("wrong length")]
    WrongLength,
    #[error("character outside base62")]
    NotBase62,
    #[error("checksum mismatch")]
    BadChecksum,
}

/// A presented secret whose format and checksum are right. Holding one does not mean
/// it is a valid credential, only that it is worth a lookup.
pub struct CheckedSecret<'a> {
    pub kind: CredentialKind,
    text: &'a str,
}

impl<'a> CheckedSecret<'a> {
    pub fn as_str(&self) -> &'a str {
        self.text
    }
}

/// Checks the prefix, length, alphabet and CRC32 of a presented secret. This runs
/// before any lookup, so a flipped character costs us a CRC and nothing else.
pub fn check_format(presented: &str) -> Result<CheckedSecret<'_>, SecretFormatError> {
    let kind = CredentialKind::from_prefix(presented).ok_or(SecretFormatError::UnknownPrefix)?;
    if presented.len() != 4 + RANDOM_CHARS + CHECKSUM_CHARS {
        return Err(SecretFormatError::WrongLength);
    }
    let body = &presented.as_bytes()[4..];
    if !body.iter().all(u8::is_ascii_alphanumeric) {
        return Err(SecretFormatError::NotBase62);
    }
    let (payload, presented_checksum) = presented.split_at(4 + RANDOM_CHARS);
    if checksum_text(crc32fast::hash(payload.as_bytes())) != presented_checksum.as_bytes() {
        return Err(SecretFormatError::BadChecksum);
    }
    Ok(CheckedSecret { kind, text: presented })
}

/// The checksum's characters: the CRC32 in base62, left-padded with '0'. Not secret,
/// and made on every presented key, so without an allocation.
fn checksum_text(mut crc: u32) -> [u8; CHECKSUM_CHARS] {
    let mut digits = [b'0'; CHECKSUM_CHARS];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    digits
}

/// Appends the base62 form of the big-endian number in `bytes`, left-padded with '0'
/// to exactly `width` characters.
fn push_base62(out: &mut String, bytes: &[u8], width: usize) {
    let mut number = Zeroizing::new(bytes.to_vec());
    let mut digits = Zeroizing::new(Vec::with_capacity(width));
    while number.iter().any(|byte| *byte != 0) {
        let mut remainder: u32 = 0;
        for byte in number.iter_mut() {
            let accumulator = (remainder << 8) | u32::from(*byte);
            *byte = (accumulator / 62) as u8;
            remainder = accumulator % 62;
        }
        digits.push(BASE62[remainder as usize]);
    }
    for _ in digits.len()..width {
        out.push('0');
    }
    out.extend(digits.iter().rev().map(|digit| char::from(*digit)));
}

/// The 32-byte master key kept in the data dir (mode 0600). Everything secret that
/// keyward stores is derived from or encrypted with it.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    pub fn generate(rng: &mut impl CryptoRng) -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        MasterKey(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey(Zeroizing::new(bytes))
    }

    /// The key file's text: 64 lowercase hex digits and a newline.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}\n", hex::encode(self.0.as_ref())))
    }

    pub fn from_file_text(text: &str) -> Option<MasterKey> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), bytes.as_mut()).ok()?;
        Some(MasterKey(bytes))
    }

    /// A value that identifies this key without revealing it, stored in the database so
    /// a node started with the wrong key file refuses to start instead of refusing
    /// every credential.
    pub fn check_value(&self) -> String {
        let digest = self.pepper().digest("keyward master key check v1");
        hex::encode(&digest.0[..16])
    }

    /// Derives the HMAC pepper for credential digests (HKDF-SHA256, fixed label).
    pub fn pepper(&self) -> Pepper {
        Pepper(self.derive(b"keyward credential pepper v1"))
    }

    /// Derives the key of the audit chain's HMAC (HKDF-SHA256, its own label).
    pub fn audit_key(&self) -> crate::audit::AuditKey {
        crate::audit::AuditKey::new(self.derive(b"keyward audit chain v1"))
    }

    /// The key that seals signing keys' private halves at rest.
    pub fn key_sealer(&self) -> KeySealer {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"keyward");
        let prk = salt.extract(self.0.as_ref());
        let mut bytes = Zeroizing::new([0u8; 32]);
        // Expanding 32 bytes of SHA-256 output cannot fail.
        let _ = prk.expand(&[b"keyward signing keys v1"], &aead::AES_256_GCM).and_then(|okm| okm.fill(bytes.as_mut()));
        KeySealer(bytes)
    }

    fn derive(&self, label: &'static [u8]) -> hmac::Key {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"keyward");
        let prk = salt.extract(self.0.as_ref());
        // Expanding 32 bytes of SHA-256 output cannot fail; the fallback keeps this total.
        prk.expand(&[label], hmac::HMAC_SHA256)
            .map(hmac::Key::from)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, label))
    }
}

/// AES-256-GCM under a key derived from the master key. A sealed value is
/// `nonce (12 bytes) || ciphertext || tag`; the associated data binds it to its row (the
/// kid), so a sealed key copied to another row does not open.
pub struct KeySealer(Zeroizing<[u8; 32]>);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a sealed key did not open: wrong master key, or the row was altered")]
pub struct SealError;

impl KeySealer {
    fn key(&self) -> Result<aead::LessSafeKey, SealError> {
        aead::UnboundKey::new(&aead::AES_256_GCM, self.0.as_ref()).map(aead::LessSafeKey::new).map_err(|_| SealError)
    }

    pub fn seal(&self, rng: &mut impl CryptoRng, associated: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; aead::NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut sealed = Vec::with_capacity(nonce.len() + plaintext.len() + aead::AES_256_GCM.tag_len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let body = &mut sealed[aead::NONCE_LEN..];
        let tag = self
            .key()?
            .seal_in_place_separate_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(associated), body)
            .map_err(|_| SealError)?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(sealed)
    }

    pub fn open(&self, associated: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < aead::NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return Err(SealError);
        }
        let (nonce, body) = sealed.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError)?;
        let mut buffer = Zeroizing::new(body.to_vec());
        let plain_len = self
            .key()?
            .open_in_place(nonce, aead::Aad::from(associated), buffer.as_mut_slice())
            .map_err(|_| SealError)?
            .len();
        buffer.truncate(plain_len);
        Ok(buffer)
    }
}

/// The HMAC key that turns secrets into the digests we store.
#[derive(Clone)]
pub struct Pepper(hmac::Key);

impl Pepper {
    pub fn digest(&self, secret: &str) -> SecretDigest {
        let tag = hmac::sign(&self.0, secret.as_bytes());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(tag.as_ref());
        SecretDigest(bytes)
    }
}

/// HMAC-SHA256(pepper, secret): the only form in which a secret is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretDigest(pub [u8; 32]);

impl SecretDigest {
    /// Compares two digests in constant time.
    pub fn constant_time_eq(&self, other: &SecretDigest) -> bool {
        let mut difference = 0u8;
        for (left, right) in self.0.iter().zip(other.0.iter()) {
            difference |= left ^ right;
        }
        std::hint::black_box(difference) == 0
    }
}

impl std::fmt::Debug for SecretDigest {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SecretDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_rng::CountingRng;

    fn check(kind: CredentialKind) {
        let secret = Secret::generate(kind, &mut CountingRng(1));
        let text = secret.expose();
        assert!(text.starts_with(kind.prefix()), "{}", kind.prefix());
        assert_eq!(text.len(), 43);
        let checked = check_format(text).map(|c| c.kind);
        assert_eq!(checked, Ok(kind));
    }

    #[test]
    fn every_kind_round_trips_through_the_format_check() {
        for kind in CredentialKind::ALL {
            check(kind);
        }
    }

    #[test]
    fn a_flipped_character_fails_the_checksum_before_any_lookup() {
        let secret = Secret::generate(CredentialKind::UserApiKey, &mut CountingRng(9));
        let text = secret.expose().to_string();
        for position in 4..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
            let flipped = String::from_utf8(bytes).unwrap_or_default();
            assert_eq!(
                check_format(&flipped).map(|c| c.kind).err(),
                Some(SecretFormatError::BadChecksum),
                "position {position}"
            );
        }
    }

    #[test]
    fn malformed_inputs_are_refused_with_their_reason() {
        let good = Secret::generate(CredentialKind::AdminKey, &mut CountingRng(3));
        let good = good.expose();
        let cases: [(&str, SecretFormatError); 4] = [
            ("", SecretFormatError::UnknownPrefix),
            ("kwx_abc", SecretFormatError::UnknownPrefix),
            ("kwa_abc", SecretFormatError::WrongLength),
            (&format!("{}-{}", &good[..20], &good[21..]), SecretFormatError::NotBase62),
        ];
        for (input, expected) in cases {
            assert_eq!(check_format(input).map(|c| c.kind).err(), Some(expected), "{input}");
        }
    }

    #[test]
    fn checksums_read_as_the_keys_already_issued_wrote_them() {
        // Keys made before `checksum_text` carry push_base62 of the CRC's big-endian bytes.
        for crc in [0, 1, 61, 62, 3843, 3844, 0x7fff_ffff, 0xdead_beef, u32::MAX] {
            let mut old = String::new();
            push_base62(&mut old, &crc.to_be_bytes(), CHECKSUM_CHARS);
            assert_eq!(checksum_text(crc), old.as_bytes(), "{crc}");
        }
    }

    #[test]
    fn base62_pads_to_a_fixed_width() {
        let mut text = String::new();
        push_base62(&mut text, &[0, 0, 0, 61], 6);
        assert_eq!(text, "00000z");
        let mut text = String::new();
        push_base62(&mut text, &[0xff; 24], RANDOM_CHARS);
        assert_eq!(text.len(), RANDOM_CHARS);
    }

    #[test]
    fn digests_depend_on_the_pepper_and_compare_in_constant_time() {
        let first = MasterKey::from_bytes([1; 32]).pepper();
        let second = MasterKey::from_bytes([2; 32]).pepper();
        let a = first.digest("kwu_x");
        assert!(a.constant_time_eq(&first.digest("kwu_x")));
        assert!(!a.constant_time_eq(&second.digest("kwu_x")));
        assert!(!a.constant_time_eq(&first.digest("kwu_y")));
    }

    #[test]
    fn sealed_keys_open_only_with_the_same_master_key_and_row() {
        let sealer = MasterKey::from_bytes([7; 32]).key_sealer();
        let sealed = sealer.seal(&mut CountingRng(3), b"kid-1", b"private key bytes");
        let sealed = sealed.map_err(|error| error.to_string());
        let Ok(sealed) = sealed else { panic!("sealing failed") };
        assert_eq!(sealer.open(b"kid-1", &sealed).map(|plain| plain.to_vec()), Ok(b"private key bytes".to_vec()));
        assert_eq!(sealer.open(b"kid-2", &sealed).map(|plain| plain.to_vec()), Err(SealError));
        let other = MasterKey::from_bytes([8; 32]).key_sealer();
        assert_eq!(other.open(b"kid-1", &sealed).map(|plain| plain.to_vec()), Err(SealError));
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert_eq!(sealer.open(b"kid-1", &tampered).map(|plain| plain.to_vec()), Err(SealError));
    }

    #[test]
    fn master_key_file_text_round_trips() {
        let key = MasterKey::from_bytes([7; 32]);
        let text = key.to_file_text();
        let back = MasterKey::from_file_text(&text).map(|k| k.pepper().digest("a").0);
        assert_eq!(back, Some(key.pepper().digest("a").0));
        assert!(MasterKey::from_file_text("nothex").is_none());
    }
}
