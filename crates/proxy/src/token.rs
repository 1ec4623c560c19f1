//! The access token the proxy injects: exchanged for the run credential (RFC 8693) on
//! first use, reused, refreshed at 80 % of its lifetime, and written to the legacy token
//! file when one is configured.

use crate::forward::{Body, Forwarder, full};
use http_body_util::BodyExt;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A token is refreshed once this share of its lifetime has passed.
const REFRESH_AT: f64 = 0.8;
/// A cached token still this far from expiry is served when a refresh fails.
const USABLE_MARGIN: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, thiserror::Error)]
pub enum TokenError {
    /// The server refused the run credential (the workload ended, the credential was
    /// revoked): callers get 401.
    #[error("the keyward server refused the run credential: {0}")]
    Refused(String),
    /// The server could not be asked: callers get 503, and the next call tries again.
    #[error("cannot get a token from the keyward server: {0}")]
    Unavailable(String),
}

#[derive(Clone)]
struct Cached {
    token: Arc<str>,
    /// `Bearer <token>`, made once per token rather than once per call.
    header: HeaderValue,
    refresh_at: Instant,
    expires_at: Instant,
}

impl Cached {
    fn fresh(&self, refresh_at: Instant) -> Fresh {
        Fresh { token: self.token.clone(), header: self.header.clone(), refresh_at }
    }
}

/// A token and when it should be refreshed.
#[derive(Clone, Debug)]
pub struct Fresh {
    pub token: Arc<str>,
    /// The `Authorization` value that carries it.
    pub header: HeaderValue,
    pub refresh_at: Instant,
}

pub struct TokenSource {
    forwarder: Forwarder,
    token_url: Uri,
    credential_file: PathBuf,
    /// Held by the one caller that exchanges; others wait for its result.
    cached: Mutex<Option<Cached>>,
    /// A copy of the current token for the fast path: every call reads it without
    /// waiting on the exchange lock.
    current: std::sync::RwLock<Option<Cached>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

fn form_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => encoded.push(byte as char),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

impl TokenSource {
    /// `server` is keyward's base URL; the token endpoint is the realm's.
    pub fn new(forwarder: Forwarder, server: &str, realm: &str, credential_file: PathBuf) -> Result<Self, String> {
        let token_url: Uri =
            format!("{}/auth/realms/{realm}/protocol/openid-connect/token", server.trim_end_matches('/'))
                .parse()
                .map_err(|_| format!("{server:?} is not a URL"))?;
        Ok(TokenSource {
            forwarder,
            token_url,
            credential_file,
            cached: Mutex::new(None),
            current: std::sync::RwLock::new(None),
        })
    }

    /// The run credential, read from its file on every exchange so a replaced file is
    /// picked up without a restart.
    fn credential(&self) -> Result<String, TokenError> {
        let text = std::fs::read_to_string(&self.credential_file).map_err(|error| {
            TokenError::Unavailable(format!("cannot read {}: {error}", self.credential_file.display()))
        })?;
        let credential = text.trim().to_string();
        if credential.is_empty() {
            return Err(TokenError::Unavailable(format!("{} is empty", self.credential_file.display())));
        }
        Ok(credential)
    }

    async fn exchange(&self) -> Result<Cached, TokenError> {
        let credential = self.credential()?;
        let form = format!(
            "grant_type={}&subject_token_type={}&subject_token={}",
            form_encode("urn:ietf:params:oauth:grant-type:token-exchange"),
            form_encode("urn:ietf:params:oauth:token-type:access_token"),
            form_encode(&credential)
        );
        let request: Request<Body> = Request::builder()
            .method(Method::POST)
            .uri(self.token_url.clone())
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))
            .header(header::ACCEPT, HeaderValue::from_static("application/json"))
            .body(full(form))
            .map_err(|error| TokenError::Unavailable(error.to_string()))?;
        let started = Instant::now();
        let response = tokio::time::timeout(Duration::from_secs(10), self.forwarder.send(request))
            .await
            .map_err(|_| TokenError::Unavailable(format!("{} did not answer within 10 s", self.token_url)))?
            .map_err(|error| TokenError::Unavailable(format!("{}: {error}", self.token_url)))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| TokenError::Unavailable(error.to_string()))?
            .to_bytes();
        if status == StatusCode::OK {
            let answer: TokenResponse = serde_json::from_slice(&body)
                .map_err(|error| TokenError::Unavailable(format!("unreadable token response: {error}")))?;
            let lifetime = Duration::from_secs(answer.expires_in.max(1));
            let header = HeaderValue::from_str(&format!("Bearer {}", answer.access_token))
                .map_err(|_| TokenError::Unavailable("the token server returned an unusable token".to_string()))?;
            return Ok(Cached {
                header,
                token: answer.access_token.into(),
                refresh_at: started + lifetime.mul_f64(REFRESH_AT),
                expires_at: started + lifetime,
            });
        }
        let reason = serde_json::from_slice::<OAuthError>(&body)
            .map(|error| format!("{}: {}", error.error, error.error_description))
            .unwrap_or_else(|_| format!("HTTP {status}"));
        if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
            Err(TokenError::Refused(reason))
        } else {
            Err(TokenError::Unavailable(reason))
        }
    }

    /// A token to inject: the cached one until its refresh time, else a new one. Callers
    /// wait for one exchange at a time. When a refresh fails, a cached token that is
    /// still valid for a few seconds is served meanwhile.
    pub async fn get(&self) -> Result<Fresh, TokenError> {
        if let Some(fresh) = self.current_if_fresh(Instant::now()) {
            return Ok(fresh);
        }
        let mut cached = self.cached.lock().await;
        let answer = self.refresh(&mut cached).await;
        self.publish(cached.as_ref());
        answer
    }

    fn current_if_fresh(&self, now: Instant) -> Option<Fresh> {
        let current = self.current.read().ok()?;
        let current = current.as_ref().filter(|current| now < current.refresh_at)?;
        Some(current.fresh(current.refresh_at))
    }

    fn publish(&self, cached: Option<&Cached>) {
        if let Ok(mut current) = self.current.write() {
            *current = cached.cloned();
        }
    }

    async fn refresh(&self, cached: &mut Option<Cached>) -> Result<Fresh, TokenError> {
        let now = Instant::now();
        if let Some(current) = cached.as_ref().filter(|current| now < current.refresh_at) {
            return Ok(current.fresh(current.refresh_at));
        }
        match self.exchange().await {
            Ok(fresh) => {
                let answer = fresh.fresh(fresh.refresh_at);
                *cached = Some(fresh);
                Ok(answer)
            }
            Err(error) => match cached.as_ref().filter(|current| now + USABLE_MARGIN < current.expires_at) {
                Some(current) if matches!(error, TokenError::Unavailable(_)) => {
                    tracing::warn!(%error, "token refresh failed; serving the current token meanwhile");
                    Ok(current.fresh(now + Duration::from_secs(1)))
                }
                _ => {
                    *cached = None;
                    Err(error)
                }
            },
        }
    }

    /// Forgets `token` (an upstream refused it), so the next `get` exchanges again.
    pub async fn invalidate(&self, token: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|current| &*current.token == token) {
            *cached = None;
            self.publish(None);
        }
    }
}

/// Replaces `path` with `contents` atomically: a temporary file in the same directory,
/// mode 0600, written and fsynced, renamed over the target, then the directory fsynced.
/// A reader sees the old file or the new one, never part of either.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let directory = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| std::io::Error::other("the token file path names no file"))?;
    let temporary = directory.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(directory)?.sync_all()
}

/// Keeps a valid token in `path` for as long as the proxy runs, whether or not calls go
/// through it: written at once, and again at each refresh.
pub async fn keep_token_file(source: Arc<TokenSource>, path: PathBuf) {
    let mut written: Option<Arc<str>> = None;
    loop {
        let wait = match source.get().await {
            Ok(fresh) => {
                if written.as_deref() != Some(&*fresh.token) {
                    let write_path = path.clone();
                    let token = fresh.token.clone();
                    let result =
                        tokio::task::spawn_blocking(move || write_atomically(&write_path, token.as_bytes())).await;
                    match result {
                        Ok(Ok(())) => written = Some(fresh.token.clone()),
                        Ok(Err(error)) => {
                            tracing::error!(%error, path = %path.display(), "cannot write the token file")
                        }
                        Err(error) => tracing::error!(%error, "token file writer failed"),
                    }
                }
                fresh.refresh_at.saturating_duration_since(Instant::now()).max(Duration::from_millis(200))
            }
            Err(error) => {
                tracing::warn!(%error, "no token for the token file yet; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(form_encode("urn:a b+c/d"), "urn%3Aa%20b%2Bc%2Fd");
        assert_eq!(form_encode("kwr_AZaz09"), "kwr_AZaz09");
    }

    #[test]
    fn the_token_file_is_replaced_whole_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("keyward-token-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
