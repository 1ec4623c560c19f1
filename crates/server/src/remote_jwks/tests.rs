//! Verification against a JWKS server started on 127.0.0.1:0 in each test, whose answers
//! (keys, a hang, an error) the test switches and whose requests it counts. Fetch dates
//! come from the `now` the test passes, so "a minute later" needs no waiting.

use super::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    RsaEncoding, RsaKeyPair,
};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const NOW: i64 = 1_800_000_000;
const TIMEOUT: Duration = Duration::from_millis(300);
/// How long a call may take when it has to wait for a fetch that never ends: the
/// timeout, with room for a slow machine. Not a tight bound, only "it does not hang".
const WAIT_BOUND: Duration = Duration::from_millis(1500);

fn config() -> RemoteJwksConfig {
    RemoteJwksConfig { fetch_timeout: TIMEOUT, ..RemoteJwksConfig::default() }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One RSA key for every test: generating it costs far more than the others.
static RSA: LazyLock<RsaKeyPair> =
    LazyLock::new(|| RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key generation"));

enum Signer {
    Ecdsa(EcdsaKeyPair),
    Rsa,
    Ed25519(Ed25519KeyPair),
}

/// A key the test issuer publishes and signs with.
struct TestKey {
    kid: String,
    signer: Signer,
    jwk: Value,
}

impl TestKey {
    fn ec(kid: &str, curve: &str) -> TestKey {
        let (signing, alg, coordinate) = match curve {
            "P-256" => (&ECDSA_P256_SHA256_FIXED_SIGNING, "ES256", 32),
            _ => (&ECDSA_P384_SHA384_FIXED_SIGNING, "ES384", 48),
        };
        let pair = EcdsaKeyPair::generate(signing).expect("EC key generation");
        let point = pair.public_key().as_ref().to_vec();
        let (x, y) = (b64(&point[1..1 + coordinate]), b64(&point[1 + coordinate..]));
        let jwk = json!({ "kty": "EC", "crv": curve, "kid": kid, "use": "sig", "alg": alg, "x": x, "y": y });
        TestKey { kid: kid.to_string(), signer: Signer::Ecdsa(pair), jwk }
    }

    fn ed25519(kid: &str) -> TestKey {
        let pair = Ed25519KeyPair::generate().expect("Ed25519 key generation");
        let jwk =
            json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "x": b64(pair.public_key().as_ref()) });
        TestKey { kid: kid.to_string(), signer: Signer::Ed25519(pair), jwk }
    }

    /// The shared RSA key under `kid`, its JWK with `alg` when given.
    fn rsa(kid: &str, alg: Option<&str>) -> TestKey {
        let public = RSA.public_key();
        let mut jwk = json!({
            "kty": "RSA",
            "kid": kid,
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        });
        if let Some(alg) = alg {
            jwk["alg"] = json!(alg);
        }
        TestKey { kid: kid.to_string(), signer: Signer::Rsa, jwk }
    }

    /// Signs `header.payload` as `alg` says (the key must be of its kind).
    fn sign(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        match &self.signer {
            Signer::Ecdsa(pair) => pair.sign(&SystemRandom::new(), message).expect("ECDSA").as_ref().to_vec(),
            Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Rsa => {
                let encoding: &'static dyn RsaEncoding = match alg {
                    "RS256" => &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    "RS384" => &aws_lc_rs::signature::RSA_PKCS1_SHA384,
                    "RS512" => &aws_lc_rs::signature::RSA_PKCS1_SHA512,
                    "PS256" => &aws_lc_rs::signature::RSA_PSS_SHA256,
                    "PS384" => &aws_lc_rs::signature::RSA_PSS_SHA384,
                    _ => &aws_lc_rs::signature::RSA_PSS_SHA512,
                };
                let mut signature = vec![0; RSA.public_modulus_len()];
                RSA.sign(encoding, &SystemRandom::new(), message, &mut signature).expect("RSA");
                signature
            }
        }
    }

    /// A token with this header and these claims, signed by this key.
    fn token_with(&self, header: &Value, claims: &Value) -> String {
        let alg = header["alg"].as_str().unwrap_or_default();
        let signed = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        format!("{signed}.{}", b64(&self.sign(alg, signed.as_bytes())))
    }

    /// An ordinary token: `{"alg", "typ": "JWT", "kid"}` and claims naming `subject`.
    fn token(&self, alg: &str, subject: &str) -> String {
        let header = json!({ "alg": alg, "typ": "JWT", "kid": self.kid });
        self.token_with(&header, &json!({ "iss": "https://issuer.example", "sub": subject }))
    }
}

fn jwks_of(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.jwk.clone()).collect::<Vec<_>>() })
}

/// What the test issuer answers at its JWKS URL.
#[derive(Clone)]
enum Answer {
    Keys(Value),
    /// Accepts the request and never answers.
    Hang,
    Status(u16),
    Body(String),
}

struct IssuerShared {
    hits: AtomicUsize,
    answer: Mutex<(Answer, Duration)>,
}

/// A JWKS server on 127.0.0.1, stopped with the test's runtime.
struct TestIssuer {
    url: String,
    shared: Arc<IssuerShared>,
}

impl TestIssuer {
    async fn start(keys: &[&TestKey]) -> TestIssuer {
        let shared = Arc::new(IssuerShared {
            hits: AtomicUsize::new(0),
            answer: Mutex::new((Answer::Keys(jwks_of(keys)), Duration::ZERO)),
        });
        let router = axum::Router::new().route("/jwks", axum::routing::get(answer)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/jwks", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        TestIssuer { url, shared }
    }

    fn answer(&self, answer: Answer) {
        self.shared.answer.lock().expect("lock").0 = answer;
    }

    fn publish(&self, keys: &[&TestKey]) {
        self.answer(Answer::Keys(jwks_of(keys)));
    }

    /// Every answer waits this long first.
    fn delay(&self, delay: Duration) {
        self.shared.answer.lock().expect("lock").1 = delay;
    }

    fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Waits (a bounded time) for the issuer to have been asked `hits` times in all.
    async fn wait_for_hits(&self, hits: usize) {
        let started = Instant::now();
        while self.hits() < hits && started.elapsed() < WAIT_BOUND {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(self.hits(), hits);
    }
}

async fn answer(State(shared): State<Arc<IssuerShared>>) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let (answer, delay) = shared.answer.lock().expect("lock").clone();
    tokio::time::sleep(delay).await;
    match answer {
        Answer::Keys(jwks) => axum::Json(jwks).into_response(),
        Answer::Hang => std::future::pending().await,
        Answer::Status(code) => axum::http::StatusCode::from_u16(code).expect("status").into_response(),
        Answer::Body(body) => body.into_response(),
    }
}

/// The claims' `sub`, or the refusal.
fn subject(verified: Result<Arc<Map<String, Value>>, AuthRefusal>) -> Result<String, AuthRefusal> {
    verified.map(|claims| claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_string())
}

#[tokio::test]
async fn every_algorithm_verifies_with_a_key_of_its_kind_after_one_fetch() {
    let (p256, p384, ed25519, rsa) =
        (TestKey::ec("p256", "P-256"), TestKey::ec("p384", "P-384"), TestKey::ed25519("ed"), TestKey::rsa("rsa", None));
    let issuer = TestIssuer::start(&[&p256, &p384, &ed25519, &rsa]).await;
    let jwks = RemoteJwks::new(config());
    let cases = [
        (&p256, "ES256"),
        (&p384, "ES384"),
        (&ed25519, "EdDSA"),
        // An RSA JWK without `alg` verifies every RSA algorithm.
        (&rsa, "RS256"),
        (&rsa, "RS384"),
        (&rsa, "RS512"),
        (&rsa, "PS256"),
        (&rsa, "PS384"),
        (&rsa, "PS512"),
    ];
    for (key, alg) in cases {
        let verified = jwks.verify(&issuer.url, &JwsAlgorithm::ALL, &key.token(alg, alg), NOW).await;
        assert_eq!(subject(verified), Ok(alg.to_string()), "{alg}");
    }
    assert_eq!(issuer.hits(), 1);
}

/// Verifies `token` against `issuer` at [`NOW`], allowing `allowed`.
async fn check(
    jwks: &RemoteJwks,
    issuer: &TestIssuer,
    allowed: &[JwsAlgorithm],
    token: &str,
    expected: Result<(), AuthRefusal>,
    case: &str,
) {
    let verified = jwks.verify(&issuer.url, allowed, token, NOW).await;
    assert_eq!(verified.map(|_| ()), expected, "{case}");
}

/// A token, the algorithms allowed, the expected outcome, and what the case is.
type RefusalCase<'a> = (String, &'a [JwsAlgorithm], Result<(), AuthRefusal>, String);

#[tokio::test]
async fn tokens_the_issuer_did_not_sign_as_the_header_says_are_refused() {
    use AuthRefusal::*;
    use JwsAlgorithm::*;
    let ec = TestKey::ec("ec", "P-256");
    let rsa = TestKey::rsa("rsa", None);
    let rs384_only = TestKey::rsa("rsa-384", Some("RS384"));
    let mut encryption = TestKey::ec("enc", "P-256");
    encryption.jwk["use"] = json!("enc");
    let impostor = TestKey::ec("ec", "P-256");
    let issuer = TestIssuer::start(&[&ec, &rsa, &rs384_only, &encryption]).await;
    let jwks = RemoteJwks::new(config());
    let all: &[JwsAlgorithm] = &JwsAlgorithm::ALL;
    let es256_or_eddsa: &[JwsAlgorithm] = &[Es256, EdDsa];
    let claims = json!({ "iss": "https://issuer.example", "sub": "someone" });
    let good = ec.token("ES256", "someone");
    let mut parts = good.split('.');
    let (header, payload, signature) =
        (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    // The same signature with one bit flipped.
    let flipped = {
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        bytes[10] ^= 1;
        format!("{header}.{payload}.{}", b64(&bytes))
    };
    // The signature over the real header and payload, on a different payload.
    let tampered = { format!("{header}.{}.{signature}", b64(br#"{"iss":"https://issuer.example","sub":"admin"}"#)) };
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, ec.jwk["x"].to_string().as_bytes());
    let hs256 = {
        let signed = format!("{}.{payload}", b64(br#"{"alg":"HS256","kid":"ec"}"#));
        format!("{signed}.{}", b64(aws_lc_rs::hmac::sign(&hmac_key, signed.as_bytes()).as_ref()))
    };
    let with_header = |header: Value| ec.token_with(&header, &claims);
    let signed_payload = |payload: &[u8]| {
        let signed = format!("{header}.{}", b64(payload));
        format!("{signed}.{}", b64(&ec.sign("ES256", signed.as_bytes())))
    };
    let mut cases: Vec<RefusalCase> = vec![
        (good.clone(), all, Ok(()), "a good token".into()),
        (rs384_only.token("RS384", "x"), all, Ok(()), "the algorithm the JWK names".into()),
        // The algorithm: known, allowed, and one the key is for.
        (rsa.token("RS256", "x"), es256_or_eddsa, Err(BadToken), "not allowed here".into()),
        (rs384_only.token("RS256", "x"), all, Err(BadToken), "not the JWK's alg".into()),
        (
            ec.token_with(&json!({ "alg": "ES256", "kid": "rsa" }), &claims),
            all,
            Err(BadToken),
            "EC alg, RSA key".into(),
        ),
        (
            rsa.token_with(&json!({ "alg": "RS256", "kid": "ec" }), &claims),
            all,
            Err(BadToken),
            "RSA alg, EC key".into(),
        ),
        (with_header(json!({ "alg": "es256", "kid": "ec" })), all, Err(BadToken), "alg in lower case".into()),
        (format!("{}.{payload}.", b64(br#"{"alg":"none","kid":"ec"}"#)), all, Err(BadToken), "none".into()),
        (hs256, all, Err(BadToken), "HS256 with the public key as secret".into()),
        // The header: alg, typ and kid only, each once; a kid that names a key.
        (with_header(json!({ "alg": "ES256" })), all, Err(BadToken), "no kid".into()),
        (with_header(json!({ "alg": "ES256", "kid": "" })), all, Err(BadToken), "empty kid".into()),
        (with_header(json!({ "alg": "ES256", "kid": 7 })), all, Err(BadToken), "numeric kid".into()),
        (with_header(json!({ "alg": "ES256", "kid": "k".repeat(257) })), all, Err(BadToken), "long kid".into()),
        (with_header(json!({ "alg": "ES256", "kid": "nobody" })), all, Err(UnknownKey), "unknown kid".into()),
        (with_header(json!({ "alg": "ES256", "kid": "enc" })), all, Err(UnknownKey), "encryption key".into()),
        (
            format!("{}.{payload}.x", b64(br#"{"alg":"ES256","kid":"ec","alg":"none"}"#)),
            all,
            Err(BadToken),
            "alg twice".into(),
        ),
        // The signature.
        (tampered, all, Err(BadSignature), "tampered payload".into()),
        (impostor.token("ES256", "someone"), all, Err(BadSignature), "another key, same kid".into()),
        (format!("{header}.{payload}."), all, Err(BadSignature), "no signature".into()),
        (flipped, all, Err(BadSignature), "one bit of the signature flipped".into()),
        (format!("{header}.{payload}.{}", "A".repeat(2000)), all, Err(BadSignature), "huge signature".into()),
        // Shape and claims.
        (format!("{header}.{payload}"), all, Err(Malformed), "two parts".into()),
        (format!("{good}.{payload}"), all, Err(Malformed), "four parts".into()),
        (format!("!!.{payload}.x"), all, Err(Malformed), "header not base64url".into()),
        (format!("{}.{payload}.x", b64(b"not json")), all, Err(BadToken), "header not JSON".into()),
        (signed_payload(b"[1, 2]"), all, Err(BadToken), "claims not an object".into()),
        (signed_payload(b"not json"), all, Err(BadToken), "claims not JSON".into()),
        (ec.token("ES256", &"x".repeat(MAX_TOKEN_BYTES)), all, Err(Malformed), "over 8 KiB".into()),
    ];
    // Parameters that would let a token choose or carry its own key, or change how it is read.
    for parameter in ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64", "cty", "zip"] {
        let mut header = json!({ "alg": "ES256", "typ": "JWT", "kid": "ec" });
        header[parameter] = json!("https://attacker.example/keys");
        cases.push((with_header(header), all, Err(BadToken), format!("header parameter {parameter}")));
    }
    for (token, allowed, expected, case) in &cases {
        check(&jwks, &issuer, allowed, token, *expected, case).await;
    }
    assert_eq!(issuer.hits(), 1, "unknown kids within the minute after the first fetch fetch nothing");
}

#[tokio::test]
async fn a_repeated_token_comes_from_the_cache_for_its_url_and_algorithms_only() {
    let key = TestKey::ec("ec", "P-256");
    let issuer = TestIssuer::start(&[&key]).await;
    let elsewhere = TestIssuer::start(&[]).await;
    let jwks = RemoteJwks::new(config());
    let token = key.token("ES256", "someone");
    let first = jwks.verify(&issuer.url, &[JwsAlgorithm::Es256], &token, NOW).await.expect("verifies");
    let second = jwks.verify(&issuer.url, &[JwsAlgorithm::Es256], &token, NOW).await.expect("verifies");
    assert!(Arc::ptr_eq(&first, &second), "the second call returns the cached claims");
    assert_eq!(jwks.cached_tokens(), 1);
    let other_algorithms = jwks.verify(&issuer.url, &[JwsAlgorithm::EdDsa], &token, NOW).await;
    assert_eq!(other_algorithms.map(|_| ()), Err(AuthRefusal::BadToken));
    // Another deployment's URL that never served keys does not accept it either.
    elsewhere.answer(Answer::Status(404));
    let other_url = jwks.verify(&elsewhere.url, &[JwsAlgorithm::Es256], &token, NOW).await;
    assert_eq!(other_url.map(|_| ()), Err(AuthRefusal::IssuerUnavailable));
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_the_next_unknown_kid_waits_a_minute() {
    let (old, new) = (TestKey::ec("old", "P-256"), TestKey::ed25519("new"));
    let issuer = TestIssuer::start(&[&old]).await;
    let jwks = RemoteJwks::new(config());
    let verify = |token: String, now: i64| {
        let (jwks, url) = (&jwks, issuer.url.clone());
        async move { subject(jwks.verify(&url, &JwsAlgorithm::ALL, &token, now).await) }
    };
    let old_token = old.token("ES256", "old");
    assert_eq!(verify(old_token.clone(), NOW).await, Ok("old".to_string()));
    // Before the rotation, and within the minute: no fetch.
    assert_eq!(verify(new.token("EdDSA", "new"), NOW + 30).await, Err(AuthRefusal::UnknownKey));
    assert_eq!(issuer.hits(), 1);

    issuer.publish(&[&new]);
    assert_eq!(verify(new.token("EdDSA", "new"), NOW + 61).await, Ok("new".to_string()));
    assert_eq!(issuer.hits(), 2);
    // The old token was cached, but its key has left the set.
    assert_eq!(verify(old_token, NOW + 62).await, Err(AuthRefusal::UnknownKey));
    let stranger = TestKey::ec("stranger", "P-256");
    assert_eq!(verify(stranger.token("ES256", "x"), NOW + 100).await, Err(AuthRefusal::UnknownKey));
    assert_eq!(issuer.hits(), 2, "a second unknown kid within the minute fetches nothing");
    assert_eq!(verify(stranger.token("ES256", "x"), NOW + 121).await, Err(AuthRefusal::UnknownKey));
    assert_eq!(issuer.hits(), 3, "a minute later it may");
}

#[tokio::test]
async fn a_hanging_issuer_costs_a_timeout_and_its_cached_keys_keep_verifying() {
    let (known, rotated) = (TestKey::ec("known", "P-256"), TestKey::ec("rotated", "P-256"));
    let issuer = TestIssuer::start(&[&known]).await;
    let jwks = RemoteJwks::new(config());
    let verify = |token: String, now: i64| {
        let (jwks, url) = (&jwks, issuer.url.clone());
        async move {
            let started = Instant::now();
            (subject(jwks.verify(&url, &JwsAlgorithm::ALL, &token, now).await), started.elapsed())
        }
    };
    assert_eq!(verify(known.token("ES256", "a"), NOW).await.0, Ok("a".to_string()));
    issuer.answer(Answer::Hang);

    // An unknown kid waits for the refetch, up to the timeout.
    let (verified, elapsed) = verify(rotated.token("ES256", "b"), NOW + 61).await;
    assert_eq!(verified, Err(AuthRefusal::UnknownKey));
    assert!(elapsed < WAIT_BOUND, "waited {elapsed:?}");
    assert_eq!(issuer.hits(), 2);
    // The request stopped waiting at the timeout; let the fetch reach its own.
    tokio::time::sleep(TIMEOUT).await;
    // A known kid waits for nothing.
    let (verified, elapsed) = verify(known.token("ES256", "c"), NOW + 62).await;
    assert_eq!(verified, Ok("c".to_string()));
    assert!(elapsed < TIMEOUT, "took {elapsed:?}");
    // Past max_age the set is refreshed in the background: the request does not wait.
    let (verified, elapsed) = verify(known.token("ES256", "d"), NOW + 700).await;
    assert_eq!(verified, Ok("d".to_string()));
    assert!(elapsed < TIMEOUT, "took {elapsed:?}");
    issuer.wait_for_hits(3).await;
    // While that refresh hangs, known keys still verify at once.
    let (verified, elapsed) = verify(known.token("ES256", "e"), NOW + 701).await;
    assert_eq!(verified, Ok("e".to_string()));
    assert!(elapsed < TIMEOUT, "took {elapsed:?}");
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_last_good_set() {
    let (known, unknown) = (TestKey::ec("known", "P-256"), TestKey::ec("unknown", "P-256"));
    let issuer = TestIssuer::start(&[&known]).await;
    let jwks = RemoteJwks::new(config());
    assert_eq!(
        subject(jwks.verify(&issuer.url, &JwsAlgorithm::ALL, &known.token("ES256", "a"), NOW).await),
        Ok("a".into())
    );
    let only_unusable = json!({ "keys": [{ "kty": "oct", "kid": "unknown", "k": "c2VjcmV0" }] });
    let mut too_long = json!({ "keys": [known.jwk.clone()] });
    too_long["padding"] = json!("x".repeat(MAX_JWKS_BYTES));
    let failures = [
        Answer::Status(500),
        Answer::Status(302),
        Answer::Body("<html>maintenance</html>".to_string()),
        Answer::Keys(json!({ "keys": [] })),
        Answer::Keys(only_unusable),
        Answer::Keys(too_long),
    ];
    for (index, failure) in failures.into_iter().enumerate() {
        issuer.answer(failure);
        let now = NOW + 61 * (index as i64 + 1);
        let refetched = jwks.verify(&issuer.url, &JwsAlgorithm::ALL, &unknown.token("ES256", "b"), now).await;
        assert_eq!(refetched.map(|_| ()), Err(AuthRefusal::UnknownKey), "case {index}");
        assert_eq!(issuer.hits(), index + 2, "case {index}");
        let fresh = known.token("ES256", &format!("after {index}"));
        let verified = jwks.verify(&issuer.url, &JwsAlgorithm::ALL, &fresh, now).await;
        assert_eq!(subject(verified), Ok(format!("after {index}")), "case {index}");
    }
}

#[tokio::test]
async fn without_any_set_a_token_cannot_be_judged_and_the_issuer_is_retried_a_second_later() {
    let key = TestKey::ec("ec", "P-256");
    let issuer = TestIssuer::start(&[&key]).await;
    issuer.answer(Answer::Hang);
    let jwks = RemoteJwks::new(config());
    let token = key.token("ES256", "someone");
    let started = Instant::now();
    let verified = jwks.verify(&issuer.url, &JwsAlgorithm::ALL, &token, NOW).await;
    assert_eq!(verified.map(|_| ()), Err(AuthRefusal::IssuerUnavailable));
    assert!(started.elapsed() < WAIT_BOUND, "waited {:?}", started.elapsed());
    // The request stopped waiting at the timeout; let the fetch reach its own.
    tokio::time::sleep(TIMEOUT).await;
    // The issuer recovers; within the same second nothing is fetched, then it is.
    issuer.publish(&[&key]);
    let verified = jwks.verify(&issuer.url, &JwsAlgorithm::ALL, &token, NOW).await;
    assert_eq!(verified.map(|_| ()), Err(AuthRefusal::IssuerUnavailable));
    assert_eq!(issuer.hits(), 1);
    let verified = jwks.verify(&issuer.url, &JwsAlgorithm::ALL, &token, NOW + 1).await;
    assert_eq!(subject(verified), Ok("someone".to_string()));

    // Other ways of never getting a set: an error status, a closed port, a URL keyward
    // does not fetch.
    let failing = TestIssuer::start(&[]).await;
    failing.answer(Answer::Status(503));
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        format!("http://{}/jwks", listener.local_addr().expect("address"))
    };
    for url in [failing.url.as_str(), &closed, "file:///etc/passwd", "ftp://127.0.0.1/jwks", "not a url"] {
        let verified = jwks.verify(url, &JwsAlgorithm::ALL, &token, NOW).await;
        assert_eq!(verified.map(|_| ()), Err(AuthRefusal::IssuerUnavailable), "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_share_one_fetch() {
    let key = TestKey::ed25519("ed");
    let issuer = TestIssuer::start(&[&key]).await;
    issuer.delay(Duration::from_millis(100));
    let jwks = Arc::new(RemoteJwks::new(config()));
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..16 {
        let (jwks, url, token) = (jwks.clone(), issuer.url.clone(), key.token("EdDSA", &n.to_string()));
        requests.spawn(async move { subject(jwks.verify(&url, &[JwsAlgorithm::EdDsa], &token, NOW).await) });
    }
    let verified: Result<Vec<String>, AuthRefusal> = requests.join_all().await.into_iter().collect();
    let mut subjects = verified.expect("every request verifies");
    subjects.sort_by_key(|subject| subject.parse::<u32>().unwrap_or(u32::MAX));
    assert_eq!(subjects, (0..16).map(|n| n.to_string()).collect::<Vec<_>>());
    assert_eq!(issuer.hits(), 1);
}

#[test]
fn unusable_jwks_are_left_out_and_the_rest_of_the_set_works() {
    let rsa = TestKey::rsa("rsa", None);
    let p256 = TestKey::ec("p256", "P-256");
    let mut short_x = p256.jwk.clone();
    short_x["kid"] = json!("short-x");
    short_x["x"] = json!(b64(&[1; 31]));
    let mut rsa_as_ec = rsa.jwk.clone();
    rsa_as_ec["kid"] = json!("rsa-as-ec");
    rsa_as_ec["alg"] = json!("ES256");
    let mut p256_as_es384 = p256.jwk.clone();
    p256_as_es384["kid"] = json!("p256-as-es384");
    p256_as_es384["alg"] = json!("ES384");
    let mut unknown_alg = p256.jwk.clone();
    unknown_alg["kid"] = json!("unknown-alg");
    unknown_alg["alg"] = json!("ES512");
    let mut encryption = p256.jwk.clone();
    encryption["kid"] = json!("encryption");
    encryption["use"] = json!("enc");
    let mut operations = p256.jwk.clone();
    operations["kid"] = json!("operations");
    operations["key_ops"] = json!(["encrypt"]);
    let mut duplicate = TestKey::ed25519("p256").jwk;
    duplicate["kid"] = json!("p256");
    let mut weak_rsa = rsa.jwk.clone();
    weak_rsa["kid"] = json!("weak-rsa");
    weak_rsa["n"] = json!(b64(&[0xc5; 128]));
    let mut padded = p256.jwk.clone();
    padded["kid"] = json!("padded");
    padded["x"] = json!(format!("{}=", p256.jwk["x"].as_str().unwrap_or_default()));
    let document = json!({ "keys": [
        rsa.jwk, p256.jwk, padded,
        short_x, rsa_as_ec, p256_as_es384, unknown_alg, encryption, operations, duplicate, weak_rsa,
        { "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" },
        { "kty": "OKP", "crv": "Ed448", "kid": "ed448", "x": b64(&[1; 57]) },
        { "kty": "EC", "crv": "P-521", "kid": "p521", "x": b64(&[1; 66]), "y": b64(&[1; 66]) },
        { "kty": "RSA", "kid": "no-modulus", "e": "AQAB" },
        { "kty": "RSA", "kid": "bad-base64", "n": "***", "e": "AQAB" },
        { "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA" },
        { "kid": "no-kty" },
        "not an object",
    ]});
    let set = parse_key_set(document.to_string().as_bytes(), None).expect("a set");
    assert_eq!(set.kids(), ["p256", "padded", "rsa"]);
    assert_eq!(set.get("rsa").map(|key| key.algorithms().len()), Some(6));
    assert_eq!(set.get("p256").map(|key| key.algorithms()), Some(vec![JwsAlgorithm::Es256]), "the first of a kid wins");
}

#[test]
fn a_refresh_keeps_unchanged_keys_and_replaces_changed_ones() {
    let (stays, changes) = (TestKey::ec("stays", "P-256"), TestKey::ec("changes", "P-256"));
    let first = parse_key_set(jwks_of(&[&stays, &changes]).to_string().as_bytes(), None).expect("a set");
    let replacement = TestKey::ec("changes", "P-256");
    let second = parse_key_set(jwks_of(&[&stays, &replacement]).to_string().as_bytes(), Some(&first)).expect("a set");
    let same = |kid: &str| match (first.get(kid), second.get(kid)) {
        (Some(before), Some(after)) => Arc::ptr_eq(before, after),
        _ => false,
    };
    assert!(same("stays"));
    assert!(!same("changes"));
    assert!(matches!(parse_key_set(b"{\"keys\": []}", Some(&first)), Err(keys::KeySetError::NoUsableKey(0))));
    assert!(matches!(parse_key_set(b"[]", None), Err(keys::KeySetError::NotJwks(_))));
}

#[test]
fn only_asymmetric_algorithms_parse_by_their_exact_names() {
    for alg in JwsAlgorithm::ALL {
        assert_eq!(JwsAlgorithm::parse(alg.as_str()), Some(alg));
    }
    for refused in ["none", "None", "HS256", "HS384", "HS512", "es256", "ES512", "Ed25519", "EDDSA", "RSA-OAEP", ""] {
        assert_eq!(JwsAlgorithm::parse(refused), None, "{refused}");
    }
}

#[test]
fn the_cache_can_live_in_shared_state() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<RemoteJwks>();
}

#[tokio::test]
async fn https_urls_go_through_rustls() {
    // A plain-HTTP server behind an https URL: the client must get as far as a TLS
    // handshake (the aws-lc-rs provider is passed in, not looked up process-wide) and fail.
    let issuer = TestIssuer::start(&[]).await;
    let fetcher = Fetcher { config: config(), client: OnceLock::new() };
    let https = issuer.url.replacen("http://", "https://", 1);
    let fetched = fetcher.fetch(&https).await;
    assert!(matches!(fetched, Err(FetchError::Request(_))), "{fetched:?}");
    assert_eq!(issuer.hits(), 0);
    assert!(fetcher.fetch(&issuer.url).await.is_ok(), "the same server over http answers");
}

/// Only tokens that pass the caller's claim checks are remembered, and only with the
/// claims later uses read: a sender of refused or padded tokens cannot fill memory.
#[tokio::test]
async fn only_accepted_tokens_are_cached_and_only_with_the_claims_that_are_read_again() {
    let key = TestKey::ec("ec", "P-256");
    let issuer = TestIssuer::start(&[&key]).await;
    let jwks = RemoteJwks::new(config());
    let header = json!({ "alg": "ES256", "kid": "ec" });
    let refuse = |_: &Map<String, Value>| Err(AuthRefusal::WrongAudience);
    let refused = key.token_with(&header, &json!({ "iss": "https://issuer.example", "sub": "a" }));
    let answer = jwks.verify_checked(&issuer.url, &[JwsAlgorithm::Es256], &refused, NOW, &[], refuse).await;
    assert_eq!(answer.map(|_| ()), Err(AuthRefusal::WrongAudience));
    assert_eq!(jwks.cached_tokens(), 0, "a refused token is not remembered");

    let padded = key.token_with(
        &header,
        &json!({ "iss": "https://issuer.example", "sub": "b", "org": "acme", "padding": vec![0; 1500] }),
    );
    let accept = |_: &Map<String, Value>| Ok(());
    let claims =
        jwks.verify_checked(&issuer.url, &[JwsAlgorithm::Es256], &padded, NOW, &["org"], accept).await.expect("ok");
    assert_eq!(claims.get("org"), Some(&json!("acme")));
    assert!(claims.get("padding").is_none(), "claims nobody reads again are not kept");
    assert_eq!(jwks.cached_tokens(), 1);

    let huge_subject = key.token_with(&header, &json!({ "iss": "https://issuer.example", "sub": "x".repeat(3000) }));
    jwks.verify_checked(&issuer.url, &[JwsAlgorithm::Es256], &huge_subject, NOW, &[], accept).await.expect("ok");
    assert_eq!(jwks.cached_tokens(), 1, "kept claims over the size limit are verified again instead of held");
}

/// A token first accepted by a deployment that requires no claim is not then refused by
/// one that requires a claim the token has: the cached entry did not keep it, so the
/// token is verified again and kept with both deployments' claims.
#[tokio::test]
async fn a_deployment_that_reads_more_claims_than_the_cache_kept_verifies_the_token_again() {
    let key = TestKey::ec("ec", "P-256");
    let issuer = TestIssuer::start(&[&key]).await;
    let jwks = RemoteJwks::new(config());
    let header = json!({ "alg": "ES256", "kid": "ec" });
    let token = key.token_with(
        &header,
        &json!({ "iss": "https://issuer.example", "sub": "ada", "organization": "acme", "team": "risk" }),
    );
    // A deployment that requires `required` claims: kept, and checked to be there.
    let verify = |required: &'static [&'static str]| {
        let check = move |claims: &Map<String, Value>| {
            required.iter().all(|name| claims.contains_key(*name)).then_some(()).ok_or(AuthRefusal::MissingClaim)
        };
        jwks.verify_checked(&issuer.url, &[JwsAlgorithm::Es256], &token, NOW, required, check)
    };
    let first = verify(&[]).await.expect("no claim required");
    assert!(first.get("organization").is_none(), "not kept for a deployment that does not read it");
    let second = verify(&["organization"]).await.expect("the token has it");
    assert_eq!(second.get("organization"), Some(&json!("acme")));
    let third = verify(&["team"]).await.expect("the token has it too");
    assert_eq!(third.get("organization"), Some(&json!("acme")), "both sets are kept");
    // Now from the cache for each of them, and still refused where the token lacks a claim.
    let again = verify(&["organization"]).await.expect("cached");
    assert!(Arc::ptr_eq(&again, &third), "from the cache");
    assert_eq!(jwks.cached_tokens(), 1);
    assert_eq!(verify(&["region"]).await.map(|_| ()), Err(AuthRefusal::MissingClaim));
    assert_eq!(verify(&["region"]).await.map(|_| ()), Err(AuthRefusal::MissingClaim));
}
