//! `keyward proxy`, the workload sidecar: code in a run calls platform APIs through it
//! without holding a long-lived secret. It injects a fresh access token, exchanged for
//! the run's `kwr_` credential, into every call it forwards to one upstream; optionally
//! it keeps that token in a file for code that reads one. It never opens the database.
//!
//! `forward` is the forwarding engine `keyward serve`'s upstream routes use too.

pub mod forward;
pub mod token;

use crate::forward::{Body, Forwarder, Link, Upstream, boxed, full};
use crate::token::{TokenError, TokenSource};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Request bodies up to this size are held, so a call refused with 401 (the token was
/// revoked or rotated meanwhile) can be sent again with a fresh token. Larger or
/// unsized bodies stream through and are not retried.
pub const RETRYABLE_BODY_BYTES: u64 = 64 * 1024;

/// Headers that carry credentials; a caller's are never forwarded.
pub const CREDENTIAL_HEADERS: [&str; 4] = ["authorization", "x-api-key", "x-domino-api-key", "x-dmm-api-key"];

pub struct ProxyConfig {
    pub listen: String,
    /// keyward's base URL, for the token endpoint.
    pub server: String,
    pub realm: String,
    /// Where calls go; keyward itself by default.
    pub upstream: Upstream,
    pub credential_file: PathBuf,
    pub token_file: Option<PathBuf>,
}

struct Proxy {
    forwarder: Forwarder,
    upstream: Upstream,
    tokens: Arc<TokenSource>,
}

/// Removes every credential-carrying header a caller sent.
pub fn strip_credentials(headers: &mut HeaderMap) {
    forward::remove_where(headers, |name| CREDENTIAL_HEADERS.contains(&name.as_str()));
}

fn problem(status: StatusCode, detail: &str) -> Response<Body> {
    let body = serde_json::json!({
        "type": format!("urn:keyward:problem:proxy-{}", status.as_u16()),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

/// The request's body, held in memory when it is small enough to send twice.
enum HeldBody {
    Held(Bytes),
    Streaming(Body),
}

/// What hyper read of the body's framing tells: no body, a `Content-Length` small enough
/// to hold, or a larger or chunked one, which streams.
async fn hold_if_small(body: hyper::body::Incoming) -> Result<HeldBody, Response<Body>> {
    use hyper::body::Body as _;
    if body.is_end_stream() {
        return Ok(HeldBody::Held(Bytes::new()));
    }
    match body.size_hint().exact() {
        Some(length) if length <= RETRYABLE_BODY_BYTES => match body.collect().await {
            Ok(collected) => Ok(HeldBody::Held(collected.to_bytes())),
            Err(error) => Err(problem(StatusCode::BAD_REQUEST, &format!("could not read the request body: {error}"))),
        },
        _ => Ok(HeldBody::Streaming(boxed(body))),
    }
}

impl Proxy {
    async fn handle(self: Arc<Self>, link: Arc<Link>, request: Request<hyper::body::Incoming>) -> Response<Body> {
        if request.method() == Method::CONNECT {
            return problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "keyward proxy does not tunnel (CONNECT); it forwards plain requests to its one upstream.",
            );
        }
        if request.uri().scheme().is_some() || request.uri().authority().is_some() {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!(
                    "keyward proxy forwards only to {}; send the path alone (GET /v4/users/self), not a full URL.",
                    self.upstream
                ),
            );
        }
        let (mut parts, body) = request.into_parts();
        strip_credentials(&mut parts.headers);
        let held = match hold_if_small(body).await {
            Ok(held) => held,
            Err(response) => return response,
        };
        let fresh = match self.tokens.get().await {
            Ok(fresh) => fresh,
            Err(error) => return token_problem(&error),
        };
        // The head the upstream gets, made once; a retry changes only its token.
        if let Err(error) = self.upstream.make_head(&mut parts) {
            return self.unreachable(&error);
        }
        match held {
            HeldBody::Streaming(body) => {
                parts.headers.insert(header::AUTHORIZATION, fresh.header.clone());
                self.send(&link, parts, body).await
            }
            HeldBody::Held(bytes) => {
                // Kept before the token goes in: a retry puts in its own.
                let kept = KeptHead::of(&parts);
                parts.headers.insert(header::AUTHORIZATION, fresh.header.clone());
                let first = self.send(&link, parts, full(bytes.clone())).await;
                if first.status() != StatusCode::UNAUTHORIZED {
                    return first;
                }
                // The token may have been revoked or its key rotated: one fresh try.
                self.tokens.invalidate(&fresh.token).await;
                let again = match self.tokens.get().await {
                    Ok(again) => again,
                    Err(TokenError::Refused(reason)) => {
                        return problem(
                            StatusCode::UNAUTHORIZED,
                            &format!("The upstream refused the token and the run credential was refused too: {reason}"),
                        );
                    }
                    Err(TokenError::Unavailable(_)) => return first,
                };
                // Nobody reads the refusal's body: let it go before the retry, so the
                // connection it holds is not waited for.
                drop(first);
                let mut parts = kept.into_parts();
                parts.headers.insert(header::AUTHORIZATION, again.header.clone());
                self.send(&link, parts, full(bytes)).await
            }
        }
    }

    async fn send(&self, link: &Link, parts: Parts, body: Body) -> Response<Body> {
        match self.forwarder.send_over(link, &self.upstream, parts, body).await {
            Ok(response) => response,
            Err(error) => self.unreachable(&error),
        }
    }

    fn unreachable(&self, error: &forward::BoxError) -> Response<Body> {
        problem(
            StatusCode::BAD_GATEWAY,
            &format!("keyward proxy could not reach the upstream {}: {error}", self.upstream),
        )
    }
}

/// What a retry needs of a request's head: hyper consumes the head it sends. The headers
/// are kept as a list (each name and value cloned, a reference count at most) and made
/// into a map again only for a retry, which is rare: copying the map itself for every
/// call hashed every name again, about 1,300 instructions a call.
struct KeptHead {
    method: Method,
    uri: hyper::Uri,
    version: hyper::Version,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    extensions: hyper::http::Extensions,
}

impl KeptHead {
    fn of(parts: &Parts) -> KeptHead {
        KeptHead {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: {
                let mut headers = Vec::with_capacity(parts.headers.len());
                headers.extend(parts.headers.iter().map(|(name, value)| (name.clone(), value.clone())));
                headers
            },
            extensions: parts.extensions.clone(),
        }
    }

    fn into_parts(self) -> Parts {
        let mut headers = HeaderMap::with_capacity(self.headers.len() + 1);
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        let mut head = Request::new(());
        *head.method_mut() = self.method;
        *head.uri_mut() = self.uri;
        *head.version_mut() = self.version;
        *head.headers_mut() = headers;
        *head.extensions_mut() = self.extensions;
        head.into_parts().0
    }
}

fn token_problem(error: &TokenError) -> Response<Body> {
    match error {
        TokenError::Refused(_) => problem(StatusCode::UNAUTHORIZED, &format!("keyward proxy: {error}")),
        TokenError::Unavailable(_) => {
            let mut response = problem(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("keyward proxy: {error}. It retries on the next call."),
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

/// The environment a launcher exports for the run's code.
pub fn environment(listen: &str, server: &str, token_file: Option<&std::path::Path>) -> Vec<(String, String)> {
    let proxy = format!("http://{listen}");
    let mut variables = vec![
        ("KEYWARD_API_PROXY".to_string(), proxy.clone()),
        ("KEYWARD_API_HOST".to_string(), server.trim_end_matches('/').to_string()),
        ("DOMINO_API_PROXY".to_string(), proxy),
        ("DOMINO_API_HOST".to_string(), server.trim_end_matches('/').to_string()),
    ];
    if let Some(path) = token_file {
        variables.push(("KEYWARD_TOKEN_FILE".to_string(), path.display().to_string()));
        variables.push(("DOMINO_TOKEN_FILE".to_string(), path.display().to_string()));
    }
    variables
}

/// Binds, calls `ready` with the bound address, and serves until the process ends. It
/// does not contact the server before the first call (or the token file's first write).
pub async fn run(config: ProxyConfig, ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    let forwarder = Forwarder::new();
    let tokens = TokenSource::new(forwarder.clone(), &config.server, &config.realm, config.credential_file.clone())
        .map_err(std::io::Error::other)?;
    let tokens = Arc::new(tokens);
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    ready(listener.local_addr()?);
    if let Some(path) = config.token_file.clone() {
        tokio::spawn(token::keep_token_file(tokens.clone(), path));
    }
    let proxy = Arc::new(Proxy { forwarder, upstream: config.upstream, tokens });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        tokio::spawn(async move {
            // This client connection's own upstream connection (`forward::Link`).
            let link = Arc::new(Link::default());
            let service = service_fn(move |request| {
                let (proxy, link) = (proxy.clone(), link.clone());
                async move { Ok::<_, std::convert::Infallible>(proxy.handle(link, request).await) }
            });
            // One buffer per write (`writev(false)`), bounded (`forward::PROXY_BUFFER_BYTES`).
            let mut connection = http1::Builder::new();
            connection.keep_alive(true).writev(false).max_buf_size(forward::PROXY_BUFFER_BYTES);
            if let Err(error) = connection.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%error, "proxy connection ended");
            }
        });
    }
}
