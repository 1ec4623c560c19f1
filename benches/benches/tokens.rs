//! The token service's cost per access token, for each signing algorithm keyward offers
//! (ES256, RS256, EdDSA), next to aws-lc-rs doing the bare signature operation on the
//! same bytes in the same run: the baselines the goals are stated against.
//!
//! - **Issuance**: `oidc::tokens::sign_claims`, what the token endpoint calls once it has
//!   built the claims (serialize them, base64url, sign with the realm's current key,
//!   encode the signature), against `EcdsaKeyPair::sign` / `RsaKeyPair::sign` /
//!   `Ed25519KeyPair::sign` of the same `header.payload` bytes.
//! - **Verification of a token not seen before**: `oidc::tokens::verify_access_token`
//!   remembers every token it has verified, by its string, in a cache of 16,384 entries
//!   that forgets the oldest first. The benchmark cycles through `DISTINCT_TOKENS` tokens
//!   (more than the cache holds, each with its own `jti`) in one unbroken walk, so between
//!   two presentations of a token 19,999 others are verified and cached: it has been
//!   forgotten, and every timed call takes the uncached path. Baseline:
//!   `UnparsedPublicKey::verify` of the same signature over the same bytes.
//! - **A repeated token**: `verify_access_token` and `AppState::authenticate` (with
//!   `Authorization: Bearer <jwt>`) of one token again and again: the cached path.
//!
//! Criterion times each benchmark on its own, seconds apart; on a shared machine the load
//! changes in between, so the ratio of two medians moves by 10–30 % from run to run. After
//! criterion, the comparisons the goals are about run again as paired ratios
//! (`keyward_benches::paired_ratio`: alternating batches of the bare operation and
//! keyward's, milliseconds apart), whose median is the figure to read the goals against.
//!
//! The state is a real `AppState`: an empty SQLite store in a temporary directory with a
//! realm per algorithm, loaded with `AppState::load`, the change feed running, each
//! realm's first key made by `oidc::keys::ensure_realm_key` as the token endpoint makes
//! it. Tokens carry the claims a `client_credentials` grant puts in them, including `cid`,
//! so verification checks the service-account token behind them in the index.
//!
//! Run with `cargo bench -p keyward-benches --bench tokens`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair, ParsedPublicKey,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey, VerificationAlgorithm,
};
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, black_box};
use keyward_benches::{create_store, is_bench_run, paired_ratio, print_ratios, synthetic_credential};
use keyward_core::jwt::{SigningAlg, TokenSettings, generate_signing_key};
use keyward_core::{CredentialKind, MasterKey, RoleSet, SecretDigest};
use proto::oidc::{AccessTokenClaims, Audience};
use server::index::PrincipalInfo;
use server::oidc::keys::LoadedKey;
use server::oidc::tokens::{API_AUDIENCE, issuer, sign_claims, verify_access_token};
use server::state::RealmInfo;
use server::{AppState, ServerConfig};
use std::cell::Cell;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Instant, SystemTime};
use store::ChangeEntity;
use time::OffsetDateTime;

/// More than the verifier's cache holds (16,384), so that cycling through them never
/// finds one still cached (see the module comment).
const DISTINCT_TOKENS: usize = 20_000;
/// A smoke run (`cargo test --benches`) only checks the benchmarks work.
const SMOKE_TOKENS: usize = 200;
const CLIENT_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
/// The tokens outlive any run.
const TOKEN_LIFETIME_SECS: i64 = 4 * 3600;

const SIGN_BASELINE: &str = "raw_sign";
const SIGN_MEASURED: [&str; 1] = ["sign_claims"];
const VERIFY_BASELINE: &str = "raw_verify";
const VERIFY_MEASURED: [&str; 5] = [
    "raw_verify_parsed_key",
    "verify_access_token_uncached",
    "authenticate_uncached",
    "verify_access_token_cached",
    "authenticate_cached",
];

/// The bare aws-lc-rs operations for one algorithm, with a key of the same algorithm
/// and size as the realm's.
enum RawSigner {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl RawSigner {
    /// A fresh key from the generator keyward uses for realm keys (RSA keys are 2048-bit
    /// like the realm's): the cost of a signature does not depend on which key of a
    /// given algorithm and size makes it. The realm's own private key stays sealed.
    fn generate(alg: SigningAlg) -> RawSigner {
        let generated = generate_signing_key(alg).expect("key generation");
        match alg {
            SigningAlg::Es256 => RawSigner::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &generated.pkcs8).expect("P-256 key"),
            ),
            SigningAlg::Rs256 => RawSigner::Rsa(RsaKeyPair::from_pkcs8(&generated.pkcs8).expect("RSA key")),
            SigningAlg::EdDsa => RawSigner::Ed25519(Ed25519KeyPair::from_pkcs8(&generated.pkcs8).expect("Ed25519 key")),
        }
    }

    fn sign(&self, rng: &SystemRandom, message: &[u8], out: &mut [u8; 512]) -> usize {
        match self {
            RawSigner::Ecdsa(pair) => {
                let signature = pair.sign(rng, message).expect("ECDSA signature");
                out[..signature.as_ref().len()].copy_from_slice(signature.as_ref());
                signature.as_ref().len()
            }
            RawSigner::Rsa(pair) => {
                let len = pair.public_modulus_len();
                pair.sign(&RSA_PKCS1_SHA256, rng, message, &mut out[..len]).expect("RSA signature");
                len
            }
            RawSigner::Ed25519(pair) => {
                let signature = pair.sign(message);
                out[..signature.as_ref().len()].copy_from_slice(signature.as_ref());
                signature.as_ref().len()
            }
        }
    }
}

/// The realm key's public half in the form aws-lc-rs verifies with, read from the JWK
/// keyward publishes for it.
fn raw_public_key(key: &LoadedKey) -> (&'static dyn VerificationAlgorithm, Vec<u8>) {
    let decode =
        |field: &Option<String>| URL_SAFE_NO_PAD.decode(field.as_deref().expect("JWK field")).expect("base64url");
    match key.alg {
        SigningAlg::Es256 => {
            let mut point = vec![4u8];
            point.extend(decode(&key.jwk.x));
            point.extend(decode(&key.jwk.y));
            (&ECDSA_P256_SHA256_FIXED, point)
        }
        // aws-lc-rs reads an RSA public key from its SubjectPublicKeyInfo DER.
        SigningAlg::Rs256 => (&RSA_PKCS1_2048_8192_SHA256, key.spki.clone()),
        SigningAlg::EdDsa => (&ED25519, decode(&key.jwk.x)),
    }
}

/// A token split the way a verifier sees it.
struct Token {
    text: String,
    /// Bytes of `header.payload`, the signed message.
    signed_len: usize,
    signature: Vec<u8>,
}

impl Token {
    fn new(text: String) -> Token {
        let (message, signature) = text.rsplit_once('.').expect("three parts");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url signature");
        Token { signed_len: message.len(), signature, text }
    }

    fn message(&self) -> &[u8] {
        &self.text.as_bytes()[..self.signed_len]
    }
}

/// One realm signing with one algorithm, with a service account and the tokens to present.
struct RealmFixture {
    alg: SigningAlg,
    realm: Arc<RealmInfo>,
    key: Arc<LoadedKey>,
    raw_signer: RawSigner,
    /// The claims of one `client_credentials` token, as the grant builds them.
    claims: AccessTokenClaims,
    /// Distinct tokens (one `jti` each), presented in turn.
    tokens: Vec<Token>,
    /// A token of its own, presented again and again.
    repeated: Token,
}

struct Fixture {
    state: AppState,
    realms: Vec<RealmFixture>,
    _dir: tempfile::TempDir,
    /// Declared last so the state's pool is dropped while the runtime still exists.
    _runtime: tokio::runtime::Runtime,
}

/// Polls a future that must finish without waiting (`sign_claims` once the realm has a
/// key), so that no executor's overhead is timed with it.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future waited; it would have touched the database"),
    }
}

fn claims_for(state: &AppState, realm: &RealmInfo, principal: &PrincipalInfo, cid: &str) -> AccessTokenClaims {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    AccessTokenClaims {
        iss: issuer(state, &realm.name).into(),
        sub: principal.public_id.as_str().into(),
        aud: Audience::One(API_AUDIENCE.into()),
        exp: now + TOKEN_LIFETIME_SECS,
        iat: now,
        nbf: Some(now),
        jti: server::api::new_public_id().to_string().into(),
        client_id: principal.username.as_str().into(),
        azp: principal.username.as_str().into(),
        sid: None,
        scope: None,
        cid: Some(cid.into()),
        api_token_id: None,
        api_token_gen: None,
        name: None,
        preferred_username: principal.username.as_str().into(),
        email: Some(format!("{}@example.com", principal.username).into()),
        groups: Vec::new(),
        extra: serde_json::Map::new(),
    }
}

impl Fixture {
    fn build(token_count: usize) -> Fixture {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
        let dir = tempfile::tempdir().expect("temporary directory");
        let master_key = MasterKey::from_bytes([7; 32]);
        let state = runtime.block_on(async {
            let (store, _) = create_store(dir.path()).await.expect("empty store");
            // Mutations append to the audit chain, as in the server.
            let store = store.with_audit_key(master_key.audit_key());
            // The default realm signs with ES256; one realm more for each other algorithm.
            for (name, signing_alg) in [("rs256", SigningAlg::Rs256), ("eddsa", SigningAlg::EdDsa)] {
                let settings = TokenSettings { signing_alg, ..TokenSettings::default() };
                let mut mutation = store.begin().await.expect("transaction");
                let id = mutation.insert_realm(name, name, settings, OffsetDateTime::now_utc()).await.expect("realm");
                mutation.changed(ChangeEntity::Realm, id).await.expect("change");
                mutation.commit().await.expect("commit");
            }
            let state = AppState::load(store, &master_key, ServerConfig::default()).await.expect("app state");
            // The change feed keeps the state fresh, as in a server; without it
            // `authenticate` refuses everything as "unavailable" after ten seconds.
            tokio::spawn(server::feed::follow(state.clone()));
            for name in ["default", "rs256", "eddsa"] {
                let realm = state.realm_by_name(name).expect("realm loaded");
                server::oidc::keys::ensure_realm_key(&state, realm.id, &realm.name).await.expect("signing key");
            }
            state
        });

        let mut realms = Vec::new();
        for (index, (name, alg)) in
            [("default", SigningAlg::Es256), ("rs256", SigningAlg::Rs256), ("eddsa", SigningAlg::EdDsa)]
                .into_iter()
                .enumerate()
        {
            let realm = state.realm_by_name(name).expect("realm");
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let key = state.keys.signing_key(realm.id, now).expect("the realm signs");
            assert_eq!(key.alg, alg, "realm {name} signs with {alg:?}");
            // A service account and the `kws_` token its access tokens are minted from.
            let principal_id = 1 + index as i64;
            let principal = PrincipalInfo {
                id: principal_id,
                public_id: format!("{principal_id:024x}"),
                realm_id: realm.id,
                kind: server::api::service_accounts::SERVICE_KIND.to_string(),
                username: format!("etl-{name}"),
                email: format!("etl-{name}@example.com"),
                enabled: true,
                roles: RoleSet::EMPTY,
                groups: Vec::new(),
                group_ids: Vec::new(),
                identity: Default::default(),
            };
            state.index.upsert_principal(principal.clone());
            let digest = SecretDigest([0x40 + index as u8; 32]);
            let credential = store::IndexedCredential {
                kind: CredentialKind::ServiceAccountToken,
                owner_id: Some(principal_id),
                ..synthetic_credential(principal_id, realm.id, digest)
            };
            state.index.upsert_credential(&credential);
            let cid = hex::encode(&digest.0[..16]);

            let claims = claims_for(&state, &realm, &principal, &cid);
            let repeated = Token::new(key.sign(&serde_json::to_vec(&claims).expect("claims")).expect("sign"));
            // Distinct tokens, signed on every core (RSA signatures take about a millisecond).
            let workers = std::thread::available_parallelism().map_or(1, usize::from);
            let tokens: Vec<Token> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..workers)
                    .map(|worker| {
                        let (state, realm, principal, cid, key) = (&state, &realm, &principal, &cid, &key);
                        scope.spawn(move || {
                            (worker..token_count)
                                .step_by(workers)
                                .map(|_| {
                                    let claims = claims_for(state, realm, principal, cid);
                                    Token::new(key.sign(&serde_json::to_vec(&claims).expect("claims")).expect("sign"))
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles.into_iter().flat_map(|handle| handle.join().expect("signing thread")).collect()
            });
            realms.push(RealmFixture {
                alg,
                realm,
                key,
                raw_signer: RawSigner::generate(alg),
                claims,
                tokens,
                repeated,
            });
        }
        Fixture { state, realms, _dir: dir, _runtime: runtime }
    }

    /// Refuses to benchmark anything that would time a refusal, and checks that the
    /// baselines verify what they are given. Uses only the repeated token, so that the
    /// distinct ones are still unseen when they are timed.
    fn check(&self) {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        for fixture in &self.realms {
            let (algorithm, public_key) = raw_public_key(&fixture.key);
            let repeated = &fixture.repeated;
            assert!(
                UnparsedPublicKey::new(algorithm, &public_key).verify(repeated.message(), &repeated.signature).is_ok()
            );
            assert!(fixture.tokens.iter().all(|token| {
                UnparsedPublicKey::new(algorithm, &public_key).verify(token.message(), &token.signature).is_ok()
            }));
            let accepted = verify_access_token(&self.state, &repeated.text, Some(API_AUDIENCE), now)
                .unwrap_or_else(|refused| panic!("{:?}: the verifier refused the token: {refused:?}", fixture.alg));
            assert_eq!(accepted.realm.id, fixture.realm.id);
            let caller = self.state.authenticate(&bearer(&repeated.text), CLIENT_IP).expect("authenticate accepts");
            assert_eq!(caller.kind, CredentialKind::AccessToken);
            let signed = ready(sign_claims(&self.state, &fixture.realm, &fixture.claims)).expect("sign_claims");
            let signed = Token::new(signed);
            assert!(UnparsedPublicKey::new(algorithm, &public_key).verify(signed.message(), &signed.signature).is_ok());
        }
    }
}

fn bearer(text: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {text}")).expect("header value"));
    headers
}

fn group_name(alg: SigningAlg) -> String {
    format!("tokens_{}", alg.as_str().to_ascii_lowercase())
}

/// Walks a list of tokens in a loop. The keyward benchmarks share one cursor and never
/// interleave with another, so the tokens they verify form one unbroken walk: between two
/// presentations of a token come `DISTINCT_TOKENS - 1` others, each inserted into the
/// verifier's cache, which has therefore forgotten it (it keeps the newest 16,384). The
/// bare aws-lc-rs baselines walk with a cursor of their own.
struct Cursor<'a> {
    tokens: &'a [Token],
    step: Cell<usize>,
}

impl<'a> Cursor<'a> {
    fn new(tokens: &'a [Token]) -> Cursor<'a> {
        Cursor { tokens, step: Cell::new(0) }
    }

    fn next(&self) -> (usize, &'a Token) {
        let step = self.step.get();
        self.step.set((step + 1) % self.tokens.len());
        (step, &self.tokens[step])
    }
}

fn bench_realm(criterion: &mut Criterion, state: &AppState, fixture: &RealmFixture) -> Vec<String> {
    let mut group = criterion.benchmark_group(group_name(fixture.alg));
    let (algorithm, public_key) = raw_public_key(&fixture.key);
    let parsed = ParsedPublicKey::new(algorithm, &public_key).expect("public key parses");
    let rng = SystemRandom::new();
    let now = || OffsetDateTime::now_utc().unix_timestamp();
    let refused = Cell::new(0usize);
    let count_refusal = |refusal: bool| refused.set(refused.get() + usize::from(refusal));
    let keyward = Cursor::new(&fixture.tokens);
    let raw = Cursor::new(&fixture.tokens);
    // Header maps as hyper hands them to `authenticate`, built before anything is timed.
    let headers: Vec<HeaderMap> = fixture.tokens.iter().map(|token| bearer(&token.text)).collect();

    // Issuance: the same `header.payload` bytes, signed bare and through sign_claims.
    let message = fixture.repeated.message().to_vec();
    let mut signature = [0u8; 512];
    let mut raw_sign = || {
        black_box(fixture.raw_signer.sign(&rng, black_box(&message), &mut signature));
    };
    let sign = || {
        let token = ready(sign_claims(state, &fixture.realm, black_box(&fixture.claims)));
        count_refusal(token.is_err());
        let _ = black_box(token);
    };
    let raw_verify = || {
        let (_, token) = raw.next();
        let verified =
            UnparsedPublicKey::new(algorithm, black_box(&public_key)).verify(token.message(), &token.signature);
        assert!(verified.is_ok());
    };
    let verify_uncached = || {
        let (_, token) = keyward.next();
        let accepted = verify_access_token(state, black_box(&token.text), Some(API_AUDIENCE), now());
        count_refusal(accepted.is_err());
        let _ = black_box(accepted);
    };
    let authenticate_uncached = || {
        let (step, _) = keyward.next();
        let caller = state.authenticate(black_box(&headers[step]), CLIENT_IP);
        count_refusal(caller.is_err());
        let _ = black_box(caller);
    };

    group.bench_function(SIGN_BASELINE, |bencher| bencher.iter(&mut raw_sign));
    group.bench_function("sign_claims", |bencher| bencher.iter(sign));
    group.bench_function(VERIFY_BASELINE, |bencher| bencher.iter(raw_verify));
    // For reference: aws-lc-rs with the key parsed once, which `UnparsedPublicKey` and
    // jsonwebtoken do on every call.
    group.bench_function("raw_verify_parsed_key", |bencher| {
        bencher.iter(|| {
            let (_, token) = raw.next();
            black_box(&parsed).verify_sig(token.message(), &token.signature).is_ok()
        })
    });
    group.bench_function("verify_access_token_uncached", |bencher| bencher.iter(verify_uncached));
    group.bench_function("authenticate_uncached", |bencher| bencher.iter(authenticate_uncached));
    group.bench_function("verify_access_token_cached", |bencher| {
        bencher.iter(|| {
            let accepted = verify_access_token(state, black_box(&fixture.repeated.text), Some(API_AUDIENCE), now());
            count_refusal(accepted.is_err());
            accepted
        })
    });
    let repeated_headers = bearer(&fixture.repeated.text);
    group.bench_function("authenticate_cached", |bencher| {
        bencher.iter(|| {
            let caller = state.authenticate(black_box(&repeated_headers), CLIENT_IP);
            count_refusal(caller.is_err());
            caller
        })
    });
    group.finish();

    // The same comparisons again, pair by pair (see `paired_ratio`): the ratios the
    // verdicts use on a noisy machine.
    let mut lines = Vec::new();
    if is_bench_run() {
        let sign_batch = if fixture.alg == SigningAlg::Rs256 { 4 } else { 40 };
        let result = paired_ratio(sign_batch, 300, &mut raw_sign, sign);
        lines.push(result.describe("sign_claims", SIGN_BASELINE));
        let result = paired_ratio(20, 300, raw_verify, verify_uncached);
        lines.push(result.describe("verify_access_token_uncached", VERIFY_BASELINE));
        let result = paired_ratio(20, 300, raw_verify, authenticate_uncached);
        lines.push(result.describe("authenticate_uncached", VERIFY_BASELINE));
    }
    assert_eq!(refused.get(), 0, "{:?}: timed calls were refused; the figures would be refusals'", fixture.alg);
    lines
}

fn main() {
    let run_started = SystemTime::now();
    // The server installs its Prometheus recorder before serving; counting costs time.
    let _ = server::metrics::handle();
    let token_count = if is_bench_run() {
        DISTINCT_TOKENS
    } else {
        println!(
            "smoke run with {SMOKE_TOKENS} tokens per algorithm (so some are cached); `cargo bench` uses {DISTINCT_TOKENS}"
        );
        SMOKE_TOKENS
    };
    let building = Instant::now();
    let fixture = Fixture::build(token_count);
    fixture.check();
    println!("signed {token_count} distinct tokens per algorithm in {:.2?}", building.elapsed());

    let mut criterion = Criterion::default().configure_from_args();
    let paired: Vec<Vec<String>> =
        fixture.realms.iter().map(|realm| bench_realm(&mut criterion, &fixture.state, realm)).collect();
    criterion.final_summary();
    for (realm, paired) in fixture.realms.iter().zip(paired) {
        let group = group_name(realm.alg);
        print_ratios(&group, SIGN_BASELINE, &SIGN_MEASURED, run_started);
        print_ratios(&group, VERIFY_BASELINE, &VERIFY_MEASURED, run_started);
        if let Some(sign) = keyward_benches::read_estimate(&group, "sign_claims", run_started) {
            println!(
                "  sign_claims: {:.0} tokens/s on one core (signing alone; no HTTP, no grant)",
                1e9 / sign.median_ns
            );
        }
        if !paired.is_empty() {
            println!("{group}: paired ratios (alternating batches, same tokens walk)");
            for line in paired {
                println!("  {line}");
            }
        }
    }
}
