//! People's passwords: the rule a new one must meet, argon2id hashing into a PHC string,
//! and verification whose cost does not tell whether the account exists.
//!
//! Service accounts have no password; that is the server's rule, not this module's.
//! Hashing costs about 19 MiB and tens of milliseconds of one core: callers run it off
//! their async workers. The salt comes from the caller's CSPRNG, like every random value
//! in this crate.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// OWASP's argon2id parameters: 19 MiB of memory, two passes, one lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;
const SALT_BYTES: usize = 16;

/// What an unknown user, or one without a password, is verified against, so that the
/// answer takes as long as for a real account. It is an ordinary hash of a random
/// password nobody kept, made with the parameters above (a test keeps them in step).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$tlnrQbyJb0wk/vAwFl/7Hg$UhWYF3TWTicNwMYKDbodUAkwbjY9k2+q3rNaJWlGSI8";

/// Why a password could not be hashed. With fixed, valid parameters and a 16-byte salt
/// this does not happen; it exists so that nothing here panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argon2id hashing failed: {0}")]
pub struct HashError(String);

/// Checks a new password against the rule: 12 to 256 characters (characters, not bytes),
/// and not the username in any case. The message says what to fix.
pub fn check_rule(password: &str, username: &str) -> Result<(), String> {
    let count = password.chars().count();
    if count < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters long"));
    }
    if count > MAX_PASSWORD_CHARS {
        return Err(format!("must be at most {MAX_PASSWORD_CHARS} characters long"));
    }
    if password.to_lowercase() == username.to_lowercase() {
        return Err("must not be the username".to_string());
    }
    Ok(())
}

fn hasher() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(|error| HashError(error.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with argon2id and a fresh 16-byte salt from `rng` (a CSPRNG).
/// Returns the PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) to store.
pub fn hash(password: &str, rng: &mut impl CryptoRng) -> Result<String, HashError> {
    let mut salt = Zeroizing::new([0u8; SALT_BYTES]);
    rng.fill_bytes(salt.as_mut());
    let hashed = hasher()?
        .hash_password_with_salt(password.as_bytes(), salt.as_ref())
        .map_err(|error| HashError(error.to_string()))?;
    Ok(hashed.to_string())
}

/// Whether `password` matches the stored PHC string. With no stored hash (no such user,
/// or one without a password) the password is checked against a fixed dummy hash of the
/// same cost and the answer is `false`, so the time taken does not tell the cases apart.
/// A stored value that is not a PHC string never matches.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    let Ok(hasher) = hasher() else { return false };
    let parsed = stored.and_then(|text| PasswordHash::new(text).ok());
    match parsed {
        Some(parsed) => hasher.verify_password(password.as_bytes(), &parsed).is_ok(),
        None => {
            if let Ok(dummy) = PasswordHash::new(DUMMY_HASH) {
                let _ = std::hint::black_box(hasher.verify_password(password.as_bytes(), &dummy));
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_rng::CountingRng;

    fn check_rule_cases(good: &[&str], bad: &[(&str, &str)]) {
        for password in good {
            assert_eq!(check_rule(password, "riley"), Ok(()), "{password:?} should pass");
        }
        for (password, message) in bad {
            let refused = check_rule(password, "riley.ci");
            assert!(refused.as_ref().is_err_and(|text| text.contains(message)), "{password:?}: {refused:?}");
        }
    }

    #[test]
    fn the_rule_counts_characters_and_refuses_the_username() {
        check_rule_cases(
            &[
                "correct horse",
                &"x".repeat(MIN_PASSWORD_CHARS),
                &"x".repeat(MAX_PASSWORD_CHARS),
                // 12 characters, 24 bytes: characters count, not bytes.
                &"é".repeat(12),
                // 256 characters of four bytes each.
                &"🔑".repeat(MAX_PASSWORD_CHARS),
            ],
            &[
                ("", "at least 12 characters"),
                ("short", "at least 12 characters"),
                // 11 characters though 22 bytes.
                (&"é".repeat(11), "at least 12 characters"),
                (&"x".repeat(MAX_PASSWORD_CHARS + 1), "at most 256 characters"),
            ],
        );
        assert_eq!(check_rule("Long.Username.1", "long.username.1"), Err("must not be the username".to_string()));
        assert_eq!(check_rule("long.username.1", "long.username.1"), Err("must not be the username".to_string()));
        assert_eq!(check_rule("long.username.12", "long.username.1"), Ok(()));
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash("correct horse battery", &mut CountingRng(1)).unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify("correct horse battery", Some(&stored)));
        assert!(!verify("correct horse battery ", Some(&stored)));
        assert!(!verify("Correct horse battery", Some(&stored)));
        assert!(!verify("", Some(&stored)));
    }

    #[test]
    fn every_hash_has_its_own_salt() {
        let mut rng = CountingRng(1);
        let first = hash("correct horse battery", &mut rng).unwrap();
        let second = hash("correct horse battery", &mut rng).unwrap();
        assert_ne!(first, second);
        assert!(verify("correct horse battery", Some(&first)) && verify("correct horse battery", Some(&second)));
    }

    #[test]
    fn without_a_stored_hash_or_with_a_damaged_one_nothing_matches() {
        assert!(!verify("anything at all", None));
        assert!(!verify("", None));
        for damaged in ["", "plaintext", "$argon2id$v=19$m=19456,t=2,p=1$", "$2b$12$abcdefghijklmnopqrstuv"] {
            assert!(!verify("plaintext", Some(damaged)), "{damaged:?}");
        }
    }

    /// The dummy costs what a real check costs only while it has the parameters new
    /// hashes get; change both together.
    #[test]
    fn the_dummy_hash_has_the_parameters_of_new_hashes() {
        let real = hash("correct horse battery", &mut CountingRng(5)).unwrap();
        let parameters = |text: &str| text.rsplitn(3, '$').nth(2).map(str::to_string);
        assert_eq!(parameters(DUMMY_HASH), parameters(&real));
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let salt_and_hash = |text: &str| text.rsplitn(3, '$').take(2).map(str::len).collect::<Vec<_>>();
        assert_eq!(salt_and_hash(DUMMY_HASH), salt_and_hash(&real));
        assert_eq!(dummy.algorithm.as_str(), "argon2id");
    }
}
