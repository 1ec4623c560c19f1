//! keyward's domain: the credential format and its hashing, roles, realm policies,
//! project access rules, input validation, authentication decisions and the audit hash chain.
//!
//! This crate does no IO: no files, no network, no database, no async, no HTTP types.
//! The current time and the random number generator always come in as arguments, so
//! every decision here can be tested with fixed values. It must not depend on tokio,
//! axum, hyper or sqlx, and none of its types are serialized on the wire (that is
//! `proto`'s job).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audit;
pub mod auth;
pub mod claims;
pub mod deployer;
pub mod ids;
pub mod ipfilter;
pub mod jwt;
pub mod password;
pub mod policy;
pub mod projects;
pub mod resource_server;
pub mod roles;
pub mod secret;
pub mod validate;

pub use auth::{AuthRefusal, CredentialState, PrincipalState};
pub use ids::PublicId;
pub use projects::{ProjectAccess, ProjectAction, ProjectRole};
pub use roles::{Role, RoleSet};
pub use secret::{CredentialKind, MasterKey, Pepper, Secret, SecretDigest, SecretFormatError};

/// A deterministic generator for tests only; production passes the OS CSPRNG.
#[cfg(test)]
pub(crate) mod test_rng {
    use rand_core::{CryptoRng, RngCore};

    pub struct CountingRng(pub u8);

    impl RngCore for CountingRng {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for byte in dest {
                self.0 = self.0.wrapping_add(37);
                *byte = self.0;
            }
        }
    }

    impl CryptoRng for CountingRng {}
}
