//! Tokens from foreign OIDC issuers, for deployments that act as resource servers: the
//! issuer's key set is fetched from its JWKS URL and cached, and a token is verified
//! against it. The claims are then `keyward_core::resource_server::check_claims`'s to judge.
//!
//! Verification order: size, shape, the JOSE header (only `alg`, `typ` and `kid`: `jwk`,
//! `jku`, `x5u`, `x5c` and `crit` refuse the token, so a token never names where its key
//! comes from), the algorithm among those the deployment allows, the kid in the issuer's
//! set, the key fitting the algorithm, the signature. Tokens that passed are remembered,
//! so a repeated token costs a hash lookup, for as long as its key is in the set.
//!
//! Fetching: a URL's set is fetched on first use and kept. A kid the set lacks causes one
//! refetch per `min_refresh_interval` at most; a set older than `max_age` is refreshed in
//! the background while requests go on with it. Requests that need the same fetch share
//! it, and none waits longer than `fetch_timeout`. A failed fetch keeps the last good set,
//! so an issuer that is down or hangs costs a timeout, not the tokens it already signed.

mod keys;

pub use keys::JwsAlgorithm;

use crate::verified_cache::VerifiedCache;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri, header};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keys::{KeySet, RemoteKey, parse_key_set};
use keyward_core::auth::AuthRefusal;
use keyward_core::jwt::MAX_TOKEN_BYTES;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// The largest JWKS document read; a longer body fails the fetch.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// The longest signature decoded: RSA-8192.
const MAX_SIGNATURE_BYTES: usize = 1024;
/// Longer kids are refused before any lookup.
const MAX_KID_BYTES: usize = 256;

/// How foreign key sets are fetched and kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteJwksConfig {
    /// The longest a fetch may take, and so the longest a request waits for one.
    pub fetch_timeout: Duration,
    /// An unknown kid causes a refetch at most this often per URL (whole seconds).
    pub min_refresh_interval: Duration,
    /// A set older than this is refreshed in the background (whole seconds).
    pub max_age: Duration,
}

impl Default for RemoteJwksConfig {
    fn default() -> Self {
        RemoteJwksConfig {
            fetch_timeout: Duration::from_secs(3),
            min_refresh_interval: Duration::from_secs(60),
            max_age: Duration::from_secs(600),
        }
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector<proxy::forward::GuardedResolver>>, Empty<Bytes>>;

/// Foreign issuers' key sets by JWKS URL, and the tokens verified with them. One per
/// server, in its shared state; URLs come from configuration, never from a token.
pub struct RemoteJwks {
    fetcher: Arc<Fetcher>,
    issuers: RwLock<HashMap<String, Arc<Issuer>>>,
    verified: VerifiedCache<VerifiedRemote>,
}

/// What a fetch task needs, shared with the tasks it spawns.
struct Fetcher {
    config: RemoteJwksConfig,
    /// Built at the first fetch: reading the system's trust roots is not worth doing in a
    /// server that never fetches.
    client: OnceLock<Result<HttpClient, String>>,
}

/// One JWKS URL: its last good set and the fetch, if one is under way.
struct Issuer {
    state: Mutex<IssuerState>,
    /// Counts finished fetches; requests waiting for a fetch watch it.
    fetches_done: watch::Sender<u64>,
}

#[derive(Default)]
struct IssuerState {
    keys: Option<Arc<KeySet>>,
    /// When `keys` was fetched (unix seconds).
    fetched_at: i64,
    /// When the last fetch, good or not, began (unix seconds).
    attempted_at: Option<i64>,
    fetching: bool,
}

impl Default for RemoteJwks {
    fn default() -> Self {
        RemoteJwks::new(RemoteJwksConfig::default())
    }
}

impl RemoteJwks {
    pub fn new(config: RemoteJwksConfig) -> RemoteJwks {
        RemoteJwks {
            fetcher: Arc::new(Fetcher { config, client: OnceLock::new() }),
            issuers: RwLock::new(HashMap::new()),
            verified: VerifiedCache::default(),
        }
    }

    /// Verifies `token` against the key set at `url` and returns its claims, unchecked:
    /// issuer, audience, times and required claims are for
    /// `keyward_core::resource_server::check_claims`. `algorithms` are those the
    /// deployment allows. `now` (unix seconds) dates fetches for the refresh rules.
    ///
    /// Refusals: `Malformed` (size, shape, base64), `BadToken` (header, algorithm, a key
    /// that does not fit the algorithm, claims that are not a JSON object), `UnknownKey`,
    /// `BadSignature`, and `IssuerUnavailable` when no set could ever be fetched.
    pub async fn verify(
        &self,
        url: &str,
        algorithms: &[JwsAlgorithm],
        token: &str,
        now: i64,
    ) -> Result<Arc<Map<String, Value>>, AuthRefusal> {
        self.verify_checked(url, algorithms, token, now, &[], |_| Ok(())).await
    }

    /// [`verify`](Self::verify), then `check` on the claims (every time, cached or not).
    /// Only a token that passes is remembered, and only with the claims that later uses
    /// read: the standard ones ([`KEPT_CLAIMS`]) and `also_kept` (a deployment's required
    /// claims), when they are small. A token made to be large, or refused, costs its
    /// sender a verification each time, not this process memory.
    pub async fn verify_checked(
        &self,
        url: &str,
        algorithms: &[JwsAlgorithm],
        token: &str,
        now: i64,
        also_kept: &[&str],
        check: impl Fn(&Map<String, Value>) -> Result<(), AuthRefusal>,
    ) -> Result<Arc<Map<String, Value>>, AuthRefusal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthRefusal::Malformed);
        }
        let issuer = self.issuer(url);
        // Claim names kept for another deployment that saw this token first.
        let mut kept_before = None;
        if let Some(cached) = self.verified.get(token) {
            // Kept for a deployment that reads fewer claims than this caller: verified
            // again below and kept with both sets, instead of judged without the claims
            // this caller needs.
            let has_all = also_kept.iter().all(|name| cached.keeps(name));
            if cached.url == url && algorithms.contains(&cached.alg) && has_all {
                let keys = self.current_keys(&issuer, url, now).await?;
                // The issuer may have dropped (or replaced) the key since.
                if keys.get(&cached.kid).is_some_and(|key| Arc::ptr_eq(key, &cached.key)) {
                    check(&cached.claims)?;
                    return Ok(cached.claims.clone());
                }
            }
            if cached.url == url {
                kept_before = Some(cached.also_kept.clone());
            }
        }
        let mut also_kept: Vec<String> = also_kept.iter().map(|name| name.to_string()).collect();
        for name in kept_before.unwrap_or_default() {
            if !also_kept.contains(&name) {
                also_kept.push(name);
            }
        }
        let parsed = parse_token(token)?;
        if !algorithms.contains(&parsed.alg) {
            return Err(AuthRefusal::BadToken);
        }
        let mut keys = self.current_keys(&issuer, url, now).await?;
        if keys.get(&parsed.kid).is_none() {
            keys = self.refetch_for_unknown_kid(&issuer, url, now).await.ok_or(AuthRefusal::UnknownKey)?;
        }
        let key = keys.get(&parsed.kid).ok_or(AuthRefusal::UnknownKey)?;
        let verifier = key.verifier(parsed.alg).ok_or(AuthRefusal::BadToken)?;
        let mut buffer = [0u8; MAX_SIGNATURE_BYTES + crate::oidc::tokens::SIGNATURE_SLACK];
        let signature =
            crate::oidc::tokens::decode_signature(parsed.signature, &mut buffer).ok_or(AuthRefusal::BadSignature)?;
        verifier.verify_sig(parsed.signed.as_bytes(), signature).map_err(|_| AuthRefusal::BadSignature)?;
        // Only now, with the signature good, is the payload worth parsing.
        let payload = crate::oidc::tokens::decode_segment(parsed.payload).ok_or(AuthRefusal::Malformed)?;
        let claims: Map<String, Value> = serde_json::from_slice(&payload).map_err(|_| AuthRefusal::BadToken)?;
        check(&claims)?;
        let kept: Map<String, Value> = claims
            .iter()
            .filter(|(name, _)| KEPT_CLAIMS.contains(&name.as_str()) || also_kept.contains(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        let kept = Arc::new(kept);
        if serde_json::to_vec(&*kept).is_ok_and(|json| json.len() <= MAX_CACHED_CLAIM_BYTES) {
            self.verified.insert(
                token,
                Arc::new(VerifiedRemote {
                    url: url.to_string(),
                    kid: parsed.kid,
                    alg: parsed.alg,
                    key: key.clone(),
                    claims: kept.clone(),
                    also_kept,
                }),
            );
        }
        Ok(kept)
    }

    /// Forgets the issuers whose URL no deployment names any more, with their key sets.
    pub fn retain_urls(&self, in_use: &std::collections::HashSet<&str>) {
        if let Ok(mut issuers) = self.issuers.write() {
            issuers.retain(|url, _| in_use.contains(url.as_str()));
        }
    }

    fn issuer(&self, url: &str) -> Arc<Issuer> {
        if let Some(issuer) = self.issuers.read().ok().and_then(|issuers| issuers.get(url).cloned()) {
            return issuer;
        }
        let fresh = || Arc::new(Issuer { state: Mutex::default(), fetches_done: watch::Sender::new(0) });
        match self.issuers.write() {
            Ok(mut issuers) => issuers.entry(url.to_string()).or_insert_with(fresh).clone(),
            // A poisoned map still answers, only without sharing this URL's state.
            Err(_) => fresh(),
        }
    }

    /// The URL's set: the cached one (refreshed in the background when older than
    /// `max_age`), or, when there is none yet, the result of a fetch waited for.
    async fn current_keys(&self, issuer: &Arc<Issuer>, url: &str, now: i64) -> Result<Arc<KeySet>, AuthRefusal> {
        let config = &self.fetcher.config;
        let (mut finished, started) = {
            let Ok(mut state) = issuer.state.lock() else { return Err(AuthRefusal::IssuerUnavailable) };
            if let Some(keys) = state.keys.clone() {
                let stale = now.saturating_sub(state.fetched_at) >= whole_seconds(config.max_age);
                let started =
                    (stale && !state.fetching && may_fetch(&state, now, whole_seconds(config.min_refresh_interval)))
                        .then(|| begin_fetch(&mut state, now));
                drop(state);
                if let Some(started) = started {
                    self.spawn_fetch(issuer, url, started);
                }
                return Ok(keys);
            }
            // Without a set, a failed fetch is retried no more often than one can take,
            // so an issuer that is down sees one connection at a time from this node.
            let started = (!state.fetching && may_fetch(&state, now, whole_seconds(config.fetch_timeout).max(1)))
                .then(|| begin_fetch(&mut state, now));
            if !state.fetching {
                return Err(AuthRefusal::IssuerUnavailable);
            }
            (issuer.fetches_done.subscribe(), started)
        };
        if let Some(started) = started {
            self.spawn_fetch(issuer, url, started);
        }
        let _ = tokio::time::timeout(config.fetch_timeout, finished.changed()).await;
        let keys = issuer.state.lock().ok().and_then(|state| state.keys.clone());
        keys.ok_or(AuthRefusal::IssuerUnavailable)
    }

    /// A set that may hold a kid the cached one lacks: the result of a fetch under way,
    /// or of one started now if the last began `min_refresh_interval` ago or more.
    /// `None` when no fetch may start or none came back in time.
    async fn refetch_for_unknown_kid(&self, issuer: &Arc<Issuer>, url: &str, now: i64) -> Option<Arc<KeySet>> {
        let config = &self.fetcher.config;
        let (mut finished, started) = {
            let mut state = issuer.state.lock().ok()?;
            let started = match state.fetching {
                true => None,
                false if may_fetch(&state, now, whole_seconds(config.min_refresh_interval)) => {
                    Some(begin_fetch(&mut state, now))
                }
                false => return None,
            };
            (issuer.fetches_done.subscribe(), started)
        };
        if let Some(started) = started {
            self.spawn_fetch(issuer, url, started);
        }
        tokio::time::timeout(config.fetch_timeout, finished.changed()).await.ok()?.ok()?;
        issuer.state.lock().ok()?.keys.clone()
    }

    /// Runs the fetch `begin_fetch` claimed in its own task, so that it finishes (and
    /// updates the set) even when the request that started it gives up or goes away.
    /// Called with the state unlocked: the task's end locks it.
    fn spawn_fetch(&self, issuer: &Arc<Issuer>, url: &str, started: StartedFetch) {
        let StartedFetch { previous, now } = started;
        let mut guard = FetchGuard { issuer: issuer.clone(), fetched: None, now };
        let fetcher = self.fetcher.clone();
        let url = url.to_string();
        tokio::spawn(async move {
            let fetched = match tokio::time::timeout(fetcher.config.fetch_timeout, fetcher.fetch(&url)).await {
                Ok(Ok(document)) => {
                    parse_key_set(&document, previous.as_deref()).map_err(|error| FetchError::Keys(error.to_string()))
                }
                Ok(Err(error)) => Err(error),
                Err(_) => Err(FetchError::Timeout(fetcher.config.fetch_timeout)),
            };
            match fetched {
                Ok(keys) => {
                    tracing::debug!(url, keys = keys.len(), "fetched a JWKS");
                    guard.keep(keys);
                }
                Err(error) => {
                    let kept = if previous.is_some() { "keeping the last good key set" } else { "no key set yet" };
                    tracing::warn!(url, %error, "JWKS fetch failed; {kept}");
                }
            }
        });
    }

    /// How many verified tokens are remembered (for tests and metrics).
    pub fn cached_tokens(&self) -> usize {
        self.verified.len()
    }
}

/// A fetch claimed under the state's lock, to be spawned once it is released.
struct StartedFetch {
    /// The set the fetch may reuse unchanged keys from.
    previous: Option<Arc<KeySet>>,
    now: i64,
}

/// Marks a fetch as under way, so that no other request starts one.
fn begin_fetch(state: &mut IssuerState, now: i64) -> StartedFetch {
    state.fetching = true;
    state.attempted_at = Some(now);
    StartedFetch { previous: state.keys.clone(), now }
}

fn whole_seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Whether a fetch may begin at `now`, `interval` seconds after the last one began. A
/// clock that went back counts as time passed, or a step back would stop all fetches.
fn may_fetch(state: &IssuerState, now: i64, interval: i64) -> bool {
    state.attempted_at.is_none_or(|at| now < at || now.saturating_sub(at) >= interval)
}

/// Ends a fetch: stores what it brought and wakes the requests waiting for it, also when
/// the task is dropped unfinished (runtime shutdown), so no URL is left "fetching".
struct FetchGuard {
    issuer: Arc<Issuer>,
    fetched: Option<Arc<KeySet>>,
    now: i64,
}

impl FetchGuard {
    /// The fetched set, to become the URL's set when the fetch ends.
    fn keep(&mut self, keys: KeySet) {
        self.fetched = Some(Arc::new(keys));
    }
}

impl Drop for FetchGuard {
    fn drop(&mut self) {
        if let Ok(mut state) = self.issuer.state.lock() {
            if let Some(keys) = self.fetched.take() {
                state.keys = Some(keys);
                state.fetched_at = self.now;
            }
            state.fetching = false;
            // Sent while the state is locked: a request that saw `fetching` and
            // subscribed under the same lock cannot miss it.
            self.issuer.fetches_done.send_modify(|done| *done = done.wrapping_add(1));
        }
    }
}

/// Why a fetch failed, for the log.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("not an http or https URL")]
    Url,
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("request: {0}")]
    Request(String),
    #[error("answered {0}")]
    Status(StatusCode),
    #[error("body: {0}")]
    Body(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Keys(String),
}

impl Fetcher {
    fn client(&self) -> Result<&HttpClient, FetchError> {
        self.client.get_or_init(build_client).as_ref().map_err(|error| FetchError::Tls(error.clone()))
    }

    /// GETs `url` and returns its body: 200 only, at most [`MAX_JWKS_BYTES`]. Redirects
    /// are not followed.
    async fn fetch(&self, url: &str) -> Result<Bytes, FetchError> {
        let uri: Uri = url.parse().map_err(|_| FetchError::Url)?;
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        if host.parse::<std::net::IpAddr>().is_ok_and(proxy::forward::is_link_local) {
            return Err(FetchError::Url);
        }
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(FetchError::Url);
        }
        let request = Request::get(uri)
            .header(header::ACCEPT, "application/jwk-set+json, application/json")
            .header(header::USER_AGENT, concat!("keyward/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|_| FetchError::Url)?;
        let response = self.client()?.request(request).await.map_err(|error| FetchError::Request(error.to_string()))?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|error| FetchError::Body(error.to_string()))?;
        Ok(body.to_bytes())
    }
}

/// An HTTP/1.1 client for http and https URLs: rustls with the aws-lc-rs provider
/// (passed in, not installed process-wide) and the system's trust roots.
fn build_client() -> Result<HttpClient, String> {
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "a system trust root could not be read");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!("no system trust roots: JWKS URLs over https will fail");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Like upstreams, a JWKS URL never reaches a link-local (cloud metadata) address.
    let mut http = HttpConnector::new_with_resolver(proxy::forward::GuardedResolver::default());
    http.enforce_http(false);
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector))
}

/// The claims a cached token keeps: what the claim checks and the identity headers read.
pub const KEPT_CLAIMS: [&str; 8] = ["iss", "aud", "exp", "nbf", "iat", "sub", "preferred_username", "email"];
/// A cached token's kept claims may take this much JSON; a bigger one is verified again at
/// each use rather than held.
const MAX_CACHED_CLAIM_BYTES: usize = 2048;

/// The only header parameters accepted; any other one refuses the token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    #[allow(dead_code, reason = "accepted with any value; read only so that it is not an unknown parameter")]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
}

/// A token split and its header checked; nothing verified yet.
struct ParsedToken<'a> {
    alg: JwsAlgorithm,
    kid: String,
    /// `header.payload`, what the signature covers.
    signed: &'a str,
    payload: &'a str,
    signature: &'a str,
}

fn parse_token(token: &str) -> Result<ParsedToken<'_>, AuthRefusal> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthRefusal::Malformed);
    };
    let header_bytes = crate::oidc::tokens::decode_segment(header).ok_or(AuthRefusal::Malformed)?;
    let header_json: JoseHeader = serde_json::from_slice(&header_bytes).map_err(|_| AuthRefusal::BadToken)?;
    let alg = JwsAlgorithm::parse(&header_json.alg).ok_or(AuthRefusal::BadToken)?;
    let kid = header_json
        .kid
        .filter(|kid| (1..=MAX_KID_BYTES).contains(&kid.len()))
        .ok_or(AuthRefusal::BadToken)?
        .into_owned();
    Ok(ParsedToken { alg, kid, signed: &token[..header.len() + 1 + payload.len()], payload, signature })
}

/// A token whose signature verified, with what it verified against.
struct VerifiedRemote {
    url: String,
    kid: String,
    alg: JwsAlgorithm,
    key: Arc<RemoteKey>,
    claims: Arc<Map<String, Value>>,
    /// The claims kept beside [`KEPT_CLAIMS`] (deployments' required claims), whether or
    /// not the token has them: a check that reads another must see the token again.
    also_kept: Vec<String>,
}

impl VerifiedRemote {
    fn keeps(&self, name: &str) -> bool {
        KEPT_CLAIMS.contains(&name) || self.also_kept.iter().any(|kept| kept == name)
    }
}

#[cfg(test)]
mod tests;
