//! The forwarding engine: one request to one upstream over pooled keep-alive
//! connections (hyper), bodies streamed both ways. `keyward proxy` and the upstream
//! routes of `keyward serve` both forward through it.

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::client::conn::http1;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Any request or response body.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body from bytes in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    let bytes = bytes.into();
    if bytes.is_empty() {
        // The same body to hyper (ended, exactly 0 bytes), and a box of nothing: no
        // allocation for the bodiless calls most forwarded ones are.
        return http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync();
    }
    http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

/// Any body, boxed.
pub fn boxed<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), in the
/// order [`hop_by_hop_bit`] numbers them.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// `Connection`'s bit from [`hop_by_hop_bit`].
const CONNECTION_BIT: u8 = 1;

/// The bit of a hop-by-hop name (its place in `HOP_BY_HOP`), or 0. A match on the name's
/// text, which is lower case in a `HeaderName`: the compiler branches on the length
/// first, so most names are passed over after one comparison.
fn hop_by_hop_bit(name: &HeaderName) -> u8 {
    match name.as_str() {
        "connection" => CONNECTION_BIT,
        "keep-alive" => 1 << 1,
        "proxy-authenticate" => 1 << 2,
        "proxy-authorization" => 1 << 3,
        "te" => 1 << 4,
        "trailer" => 1 << 5,
        "transfer-encoding" => 1 << 6,
        "upgrade" => 1 << 7,
        _ => 0,
    }
}

/// The names a `Connection` header's value lists (tokens, in any case). Split as bytes: a
/// byte hyper lets through but that is not text (`x-a, \xff`) spoils only its own token,
/// which could not name a header anyway, not the names listed beside it.
fn listed(connection: &HeaderValue) -> impl Iterator<Item = &str> {
    connection
        .as_bytes()
        .split(|byte| *byte == b',')
        .filter_map(|token| std::str::from_utf8(token.trim_ascii()).ok())
        .filter(|token| !token.is_empty())
}

/// Removes hop-by-hop headers, and those the `Connection` header names. Nearly every
/// upstream answer carries `Connection: keep-alive`, so this runs on every call: one pass
/// over the names the message has finds the hop-by-hop ones (as bits), and only those are
/// removed. A `Connection` value of `keep-alive` alone (what nearly every upstream sends)
/// lists only a hop-by-hop name; any other value is read token by token, each looked up
/// in the message (a hash, no allocation); only a name the message really has is
/// compared with those gathered so far, and gathered once, to be removed after. So each
/// token costs a lookup, plus, when it names a header there, a comparison with each
/// distinct name gathered (at most hyper's 100 headers), whatever a caller or an
/// upstream sends; and the usual message allocates nothing.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let found = headers.keys().fold(0, |found, name| found | hop_by_hop_bit(name));
    if found == 0 {
        return;
    }
    if found & CONNECTION_BIT != 0 {
        let mut named: Vec<HeaderName> = Vec::new();
        for value in headers.get_all(header::CONNECTION) {
            if value.as_bytes().eq_ignore_ascii_case(b"keep-alive") {
                continue;
            }
            for token in listed(value) {
                // Hop-by-hop names go below anyway; a name gathered already is not looked up.
                if HOP_BY_HOP.iter().any(|hop| hop.as_str().eq_ignore_ascii_case(token))
                    || !headers.contains_key(token)
                    || named.iter().any(|name| name.as_str().eq_ignore_ascii_case(token))
                {
                    continue;
                }
                if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    named.push(name);
                }
            }
        }
        for name in named {
            headers.remove(name);
        }
    }
    for (bit, hop) in HOP_BY_HOP.iter().enumerate() {
        if found & (1 << bit) != 0 {
            headers.remove(hop);
        }
    }
}

/// Removes every header whose name `doomed` picks. It looks at the names the message
/// has (a handful) instead of looking up each name it might have: a lookup hashes the
/// name, and a forwarded call drops a dozen or more names that are nearly never there.
/// The names are looked at again after each removal rather than gathered into a list
/// first: there are a handful, and most calls remove none or one.
pub fn remove_where(headers: &mut HeaderMap, doomed: impl Fn(&HeaderName) -> bool) {
    while let Some(name) = headers.keys().find(|name| doomed(name)).cloned() {
        headers.remove(&name);
    }
}

/// Where requests go: a base URL (`http://host:port/optional/base`).
#[derive(Clone, Debug)]
pub struct Upstream {
    scheme: hyper::http::uri::Scheme,
    authority: hyper::http::uri::Authority,
    base_path: String,
    /// The `Host` header every forwarded request carries, made once.
    host: HeaderValue,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{0:?} is not an http:// URL with a host")]
    NotHttp(String),
    #[error(
        "{0:?} is a link-local or cloud metadata address, where metadata services live; keyward never forwards there"
    )]
    LinkLocal(String),
    /// The URL itself is not repeated: it holds a secret.
    #[error(
        "an upstream URL must not carry a user name or password (user:password@host); keyward would store and log it"
    )]
    Credentials,
}

/// Link-local addresses (169.254.0.0/16, fe80::/10), where cloud instance-metadata
/// services answer with credentials, and the metadata addresses outside them: AWS's
/// fd00:ec2::254, Google's fd20:ce::254 and Alibaba Cloud's 100.100.100.200. No upstream
/// is ever one of them.
pub fn is_link_local(ip: IpAddr) -> bool {
    const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    const GOOGLE_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254);
    const ALIBABA_METADATA: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);
    let metadata_v4 = |v4: Ipv4Addr| v4.is_link_local() || v4 == ALIBABA_METADATA;
    match ip {
        IpAddr::V4(v4) => metadata_v4(v4),
        IpAddr::V6(v6) => {
            v6.to_ipv4_mapped().is_some_and(metadata_v4)
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == AWS_METADATA_V6
                || v6 == GOOGLE_METADATA_V6
        }
    }
}

/// The system resolver, minus link-local answers: a host name that resolves only to such
/// addresses (`169.254.169.254.nip.io`, a decimal `2852039166`) fails like an unknown
/// host. Literal addresses never reach a resolver; `Upstream::parse` refuses those.
#[derive(Clone)]
pub struct GuardedResolver(GaiResolver);

impl Default for GuardedResolver {
    fn default() -> Self {
        GuardedResolver(GaiResolver::new())
    }
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let mut system = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addresses: Vec<SocketAddr> =
                system.call(name).await?.filter(|address| !is_link_local(address.ip())).collect();
            if addresses.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host} resolves to no address keyward forwards to (link-local ones are refused)"),
                ));
            }
            Ok(addresses.into_iter())
        })
    }
}

impl Upstream {
    pub fn parse(url: &str) -> Result<Upstream, UpstreamError> {
        let uri: Uri = url.parse().map_err(|_| UpstreamError::NotHttp(url.to_string()))?;
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
            return Err(UpstreamError::NotHttp(url.to_string()));
        };
        if authority.as_str().contains('@') {
            return Err(UpstreamError::Credentials);
        }
        if scheme != hyper::http::uri::Scheme::HTTP {
            return Err(UpstreamError::NotHttp(url.to_string()));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        if host.parse::<IpAddr>().is_ok_and(is_link_local) {
            return Err(UpstreamError::LinkLocal(url.to_string()));
        }
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| UpstreamError::NotHttp(url.to_string()))?;
        Ok(Upstream { scheme, authority, base_path: uri.path().trim_end_matches('/').to_string(), host })
    }

    /// The upstream URI for a request path (with its query), under the base path.
    pub fn uri_for(&self, path_and_query: &str) -> Result<Uri, hyper::http::Error> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(format!("{}{}", self.base_path, path_and_query))
            .build()
    }

    /// The path and query a request's URI has upstream, under the base path: kept as
    /// they are (no copy) when there is no base path to put in front.
    fn path_of(&self, uri: &Uri) -> Result<Uri, hyper::http::Error> {
        match uri.path_and_query() {
            Some(path_and_query) if self.base_path.is_empty() => {
                Uri::builder().path_and_query(path_and_query.clone()).build()
            }
            Some(path_and_query) => {
                Uri::builder().path_and_query(format!("{}{}", self.base_path, path_and_query)).build()
            }
            None => Uri::builder().path_and_query(format!("{}/", self.base_path)).build(),
        }
    }

    /// The upstream URI for a request's URI: [`Upstream::path_of`] with the upstream's
    /// scheme and authority.
    fn uri_of(&self, uri: &Uri) -> Result<Uri, hyper::http::Error> {
        let mut parts = self.path_of(uri)?.into_parts();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        Ok(Uri::from_parts(parts)?)
    }

    /// Makes a request head received from a client the head this upstream gets over a
    /// connection of its own ([`Forwarder::send_over`]): the path and query alone (origin
    /// form) under the base path, no hop-by-hop header, and this upstream's `Host`.
    pub fn make_head(&self, parts: &mut hyper::http::request::Parts) -> Result<(), BoxError> {
        let uri = &parts.uri;
        // A path and query alone, with no base path to put in front: already what goes.
        let as_it_is = self.base_path.is_empty()
            && uri.scheme().is_none()
            && uri.authority().is_none()
            && uri.path_and_query().is_some();
        if !as_it_is {
            parts.uri = self.path_of(uri)?;
        }
        prepare(self, parts);
        Ok(())
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

/// A pooled HTTP/1.1 client. Cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    client: Client<HttpConnector<GuardedResolver>, Body>,
    connector: HttpConnector<GuardedResolver>,
    /// How long [`Forwarder::forward`] waits for the upstream's answer to begin.
    answer_timeout: Duration,
}

/// How long a routed or published call waits for its upstream to begin answering, counted
/// from the last part of the request's body sent (an upload takes as long as it takes): an
/// upstream that takes the request and never answers must not hold the call (and its
/// client's connection) for ever. Generous, since a model may score for minutes; an
/// answer that has begun streams for as long as it takes.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// A request body that notes when its latest part was read (in milliseconds from
/// `started`), and otherwise is its body: its size hint too, from which hyper frames a
/// request whose `Content-Length` a `Connection` header named away.
struct Progress {
    body: Body,
    started: tokio::time::Instant,
    progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl hyper::body::Body for Progress {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(context);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.progress.store(now, std::sync::atomic::Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The upstream took the request and did not begin answering within the answer timeout
/// (a gateway timeout: the upstream may still be working on it, so not worth a retry).
#[derive(Debug, thiserror::Error)]
#[error("the upstream did not begin answering within {0:?} of the request's last byte")]
pub struct AnswerTimeout(pub Duration);

/// One upstream connection of its own, for the calls of one client connection (`keyward
/// proxy`): HTTP/1.1 calls on a connection come one after another, so one upstream
/// connection carries them all, with no pool to look up or share. Made on the first call
/// and made again when the upstream closes it, when it has been idle for a minute (as the
/// pool forgets idle connections), or when it is still busy with an earlier answer
/// nobody has finished reading.
#[derive(Default)]
pub struct Link(std::sync::Mutex<Option<(http1::SendRequest<Body>, Instant)>>);

/// The most a connection of `keyward proxy` (to its client, or its link upstream) buffers
/// to read or to write. Both write from one buffer (hyper's `writev(false)`): a message's
/// head and a body chunk are copied into it and sent with one `write`, which costs about
/// 750 fewer instructions a call than hyper's default of queueing the chunks and
/// gathering them with `writev`. That buffer keeps its size for the connection's life,
/// so it is bounded here, and with it the chunks read (the default allows about 400 KiB
/// each way). hyper checks the bound after each read, so a message head is refused once
/// the bytes read for it pass it: a request head of 100 KB still got through here, one of
/// 140 KB got 431 (an upstream's answer, 502). nginx's default allows 32 KiB.
pub const PROXY_BUFFER_BYTES: usize = 64 * 1024;

/// How long a link's connection may sit idle and still be used.
const LINK_IDLE: Duration = Duration::from_secs(60);

impl Link {
    /// The kept connection, if it can take a request now.
    fn take_ready(&self) -> Option<http1::SendRequest<Body>> {
        let (sender, since) = self.0.lock().ok().and_then(|mut slot| slot.take())?;
        // A busy or closed connection is dropped here: a busy one closes once its answer
        // has been read, and a call never waits for it.
        (since.elapsed() < LINK_IDLE && sender.is_ready()).then_some(sender)
    }

    fn keep(&self, sender: http1::SendRequest<Body>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((sender, Instant::now()));
        }
    }
}

impl Default for Forwarder {
    fn default() -> Self {
        Forwarder::new()
    }
}

impl Forwarder {
    pub fn new() -> Forwarder {
        let mut connector = HttpConnector::new_with_resolver(GuardedResolver(GaiResolver::new()));
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(connector.clone());
        Forwarder { client, connector, answer_timeout: ANSWER_TIMEOUT }
    }

    /// The same, waiting `timeout` instead of [`ANSWER_TIMEOUT`] for an answer to begin.
    pub fn with_answer_timeout(timeout: Duration) -> Forwarder {
        Forwarder { answer_timeout: timeout, ..Forwarder::new() }
    }

    /// Sends `request` (whose URI is already the upstream's) and returns the upstream's
    /// answer with its body still streaming.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<hyper::body::Incoming>, BoxError> {
        Ok(self.client.request(request).await?)
    }

    /// Forwards a request received from a client to `upstream`: the path and query are
    /// kept, `Host` becomes the upstream's, hop-by-hop headers are dropped both ways, and
    /// `extra` headers are set (replacing any the client sent).
    pub async fn forward(
        &self,
        upstream: &Upstream,
        mut parts: hyper::http::request::Parts,
        body: Body,
        extra: &HeaderMap,
    ) -> Result<Response<Body>, BoxError> {
        parts.uri = upstream.uri_of(&parts.uri)?;
        prepare(upstream, &mut parts);
        parts.headers.reserve(extra.len());
        for (name, value) in extra {
            parts.headers.insert(name.clone(), value.clone());
        }
        let started = tokio::time::Instant::now();
        let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let body = Progress { body, started, progress: progress.clone() }.boxed_unsync();
        let send = self.send(Request::from_parts(parts, body));
        tokio::pin!(send);
        loop {
            let last = Duration::from_millis(progress.load(std::sync::atomic::Ordering::Relaxed));
            match tokio::time::timeout_at(started + last + self.answer_timeout, &mut send).await {
                Ok(response) => return answer(response?),
                // The body moved on meanwhile: the wait starts from its latest part.
                Err(_) if Duration::from_millis(progress.load(std::sync::atomic::Ordering::Relaxed)) > last => {}
                Err(_) => return Err(AnswerTimeout(self.answer_timeout).into()),
            }
        }
    }

    /// [`Forwarder::forward`] over `link`'s own connection instead of the pool, for a
    /// request whose head [`Upstream::make_head`] has made: returns the upstream's answer
    /// (without hop-by-hop headers) with its body still streaming.
    pub async fn send_over(
        &self,
        link: &Link,
        upstream: &Upstream,
        parts: hyper::http::request::Parts,
        body: Body,
    ) -> Result<Response<Body>, BoxError> {
        let mut request = Request::from_parts(parts, body);
        // A kept connection the upstream has closed meanwhile gives the request back
        // unsent; it then goes over a new one, once.
        if let Some(mut sender) = link.take_ready() {
            match sender.try_send_request(request).await {
                Ok(response) => {
                    link.keep(sender);
                    return answer(response);
                }
                Err(mut error) => match error.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(error.into_error().into()),
                },
            }
        }
        let mut sender = self.connect(upstream).await?;
        let response = sender.send_request(request).await?;
        link.keep(sender);
        answer(response)
    }

    /// A new connection to `upstream`, through the same guarded connector as the pool's.
    async fn connect(&self, upstream: &Upstream) -> Result<http1::SendRequest<Body>, BoxError> {
        let target = Uri::builder()
            .scheme(upstream.scheme.clone())
            .authority(upstream.authority.clone())
            .path_and_query("/")
            .build()?;
        let io = tower_service::Service::call(&mut self.connector.clone(), target).await?;
        let (mut sender, connection) =
            http1::Builder::new().writev(false).max_buf_size(PROXY_BUFFER_BYTES).handshake(io).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended");
            }
        });
        sender.ready().await?;
        Ok(sender)
    }
}

/// What every forwarded request gets: no hop-by-hop header and the upstream's `Host`.
fn prepare(upstream: &Upstream, parts: &mut hyper::http::request::Parts) {
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(header::HOST, upstream.host.clone());
    parts.version = hyper::Version::HTTP_11;
}

/// The upstream's answer, without its hop-by-hop headers, its body still streaming.
fn answer(response: Response<hyper::body::Incoming>) -> Result<Response<Body>, BoxError> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, boxed(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_http_urls_with_an_optional_base_path() {
        let upstream = Upstream::parse("http://127.0.0.1:9000/jobs/").unwrap();
        assert_eq!(upstream.uri_for("/v1/run?x=1").unwrap().to_string(), "http://127.0.0.1:9000/jobs/v1/run?x=1");
        let root = Upstream::parse("http://api.internal").unwrap();
        assert_eq!(root.uri_for("/a").unwrap().to_string(), "http://api.internal/a");
        let incoming: Uri = "/v1/run?x=1".parse().unwrap();
        assert_eq!(root.uri_of(&incoming).unwrap().to_string(), "http://api.internal/v1/run?x=1");
        assert_eq!(upstream.uri_of(&incoming).unwrap().to_string(), "http://127.0.0.1:9000/jobs/v1/run?x=1");
        assert_eq!(upstream.host, "127.0.0.1:9000");
        for bad in ["https://api.internal", "api.internal", "/relative", "ftp://x"] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
        for with_secret in ["http://user:s3cret@api.internal/", "http://token@10.0.0.5:8000"] {
            let refused = Upstream::parse(with_secret).unwrap_err();
            assert!(matches!(refused, UpstreamError::Credentials), "{with_secret}");
            assert!(!refused.to_string().contains("s3cret") && !refused.to_string().contains("token@"));
        }
        for metadata in [
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]:8080",
            "http://[::ffff:169.254.169.254]",
            "http://[fd00:ec2::254]",
            "http://[fd20:ce::254]",
            "http://100.100.100.200/latest/meta-data",
            "http://[::ffff:100.100.100.200]",
        ] {
            assert!(matches!(Upstream::parse(metadata), Err(UpstreamError::LinkLocal(_))), "{metadata}");
        }
    }

    /// A name that resolves to the metadata address fails to connect, rather than reach it.
    #[tokio::test]
    async fn names_resolving_to_link_local_addresses_are_not_connected() {
        use tower_service::Service;
        let mut resolver = GuardedResolver(GaiResolver::new());
        // glibc reads a bare decimal as an IPv4 address: 2852039166 is 169.254.169.254.
        let refused = resolver.call("2852039166".parse().unwrap()).await;
        assert_eq!(refused.err().map(|error| error.kind()), Some(std::io::ErrorKind::PermissionDenied));
        let local: Vec<SocketAddr> = resolver.call("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(!local.is_empty());
    }

    /// The names left, sorted, once `strip_hop_by_hop` has gone over these headers.
    fn left_after_stripping(headers: &[(&'static str, &'static str)]) -> Vec<String> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut map);
        let mut left: Vec<String> = map.keys().map(|name| name.as_str().to_string()).collect();
        left.sort_unstable();
        left
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        // A listed name (twice) before the Connection header that lists it in another case,
        // two Connection headers, a near-miss name that stays.
        let mixed = [
            ("x-secret-hop", "1"),
            ("x-secret-hop", "2"),
            ("connection", "keep-alive, X-Secret-Hop"),
            ("connection", " x-second-list ,close"),
            ("x-second-list", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("accept", "*/*"),
            ("x-secret-hop-not", "kept"),
        ];
        assert_eq!(left_after_stripping(&mixed), ["accept", "x-secret-hop-not"]);
        // Without a Connection header, only the fixed hop-by-hop names go.
        let plain = [("te", "trailers"), ("upgrade", "websocket"), ("accept", "*/*")];
        assert_eq!(left_after_stripping(&plain), ["accept"]);
        // The usual answer: Connection names only hop-by-hop headers (and `close`).
        let usual = [("connection", "Keep-Alive, Close"), ("keep-alive", "timeout=5"), ("content-length", "3")];
        assert_eq!(left_after_stripping(&usual), ["content-length"]);
        // `close` is a name like any other: a header of that name goes too.
        let close = [("connection", "close"), ("close", "1"), ("accept", "*/*")];
        assert_eq!(left_after_stripping(&close), ["accept"]);
        // Each hop-by-hop name alone goes (the bits and the names are in the same order).
        for hop in &HOP_BY_HOP {
            let mut map = HeaderMap::new();
            map.insert(hop.clone(), HeaderValue::from_static("1"));
            map.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
            strip_hop_by_hop(&mut map);
            assert_eq!(map.keys().collect::<Vec<_>>(), [header::ACCEPT], "{hop}");
        }
    }

    /// A byte that is not text in `Connection` does not hide the names listed beside it.
    #[test]
    fn a_connection_value_that_is_not_text_still_removes_what_it_lists() {
        let mut map = HeaderMap::new();
        map.insert(header::CONNECTION, HeaderValue::from_bytes(b"X-Listed, \xff, x-other").unwrap());
        map.insert(HeaderName::from_static("x-listed"), HeaderValue::from_static("1"));
        map.insert(HeaderName::from_static("x-other"), HeaderValue::from_static("1"));
        map.insert(HeaderName::from_static("x-kept"), HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut map);
        assert_eq!(map.keys().collect::<Vec<_>>(), [HeaderName::from_static("x-kept")]);
    }

    /// As many headers as hyper accepts (100) and a `Connection` header near its size
    /// limit, listing half of them many times over: all listed ones go, the rest stay.
    /// (The work is linear in `Connection`'s length; an earlier version, quadratic in the
    /// headers times that length, took seconds on this message.)
    #[test]
    fn a_long_connection_header_removes_what_it_lists_and_nothing_else() {
        let mut headers = HeaderMap::new();
        let mut tokens = Vec::new();
        for n in 0..49 {
            headers.insert(HeaderName::from_bytes(format!("x-kept-{n}").as_bytes()).unwrap(), HeaderValue::from(n));
            let listed = format!("x-listed-{n}");
            headers.insert(HeaderName::from_bytes(listed.as_bytes()).unwrap(), HeaderValue::from(n));
            tokens.push(listed.to_uppercase());
        }
        let mut value = "a,".repeat(100_000);
        value.push_str(&tokens.join(","));
        value.push(',');
        value.push_str(&tokens.join(" , "));
        headers.insert(header::CONNECTION, HeaderValue::from_str(&value).unwrap());
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 49);
        assert!(headers.keys().all(|name| name.as_str().starts_with("x-kept-")));
    }

    /// How a test upstream answers.
    #[derive(Clone, Copy, PartialEq)]
    enum Manner {
        /// One call per connection, answered with how many connections it has accepted so
        /// far, then a hang-up without saying so (as when a keep-alive timer runs out).
        HangUpAfterEach,
        /// Every call on a connection, with `ok`, keeping it open.
        KeepAlive,
        /// Every call with a 401 whose chunked body sends one chunk, then waits 5 s.
        SlowChunked401,
    }

    /// A test upstream answering in `manner`, and how many connections it has accepted.
    async fn test_upstream(manner: Manner) -> (Upstream, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = Upstream::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let mut pending = Vec::new();
                    let mut buffer = [0u8; 1024];
                    loop {
                        while let Some(end) = pending.windows(4).position(|window| window == b"\r\n\r\n") {
                            pending.drain(..end + 4);
                            let answer = match manner {
                                Manner::HangUpAfterEach => {
                                    let body = n.to_string();
                                    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len())
                                }
                                Manner::KeepAlive => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_string(),
                                Manner::SlowChunked401 => {
                                    "HTTP/1.1 401 Unauthorized\r\ntransfer-encoding: chunked\r\n\r\n2\r\nno\r\n"
                                        .to_string()
                                }
                            };
                            if stream.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                            match manner {
                                Manner::HangUpAfterEach => {
                                    // Let the answer arrive before the hang-up.
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                    return;
                                }
                                Manner::KeepAlive => {}
                                Manner::SlowChunked401 => {
                                    tokio::time::sleep(Duration::from_secs(5)).await;
                                    let _ = stream.write_all(b"0\r\n\r\n").await;
                                }
                            }
                        }
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => pending.extend_from_slice(&buffer[..read]),
                        }
                    }
                });
            }
        });
        (upstream, accepted)
    }

    /// A client connection's own upstream connection is made again, and the call sent
    /// over the new one, when the upstream has closed the old one between calls.
    #[tokio::test]
    async fn a_link_reconnects_when_the_upstream_hangs_up() {
        let (upstream, accepted) = test_upstream(Manner::HangUpAfterEach).await;
        let (forwarder, link) = (Forwarder::new(), Link::default());
        for call in 1..=3 {
            let response = call_over(&forwarder, &link, &upstream).await;
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, call.to_string(), "call {call} went over connection {body:?}");
            // The hang-up happens after the answer; give it time to be seen, or not.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    /// An upstream that takes the connection and never answers does not hold a routed
    /// call for ever: the call fails once the answer has not begun in time.
    #[tokio::test]
    async fn an_upstream_that_never_answers_is_given_up_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = Upstream::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let forwarder = Forwarder::with_answer_timeout(Duration::from_millis(300));
        let (parts, ()) = Request::get("/x").body(()).unwrap().into_parts();
        let started = Instant::now();
        let error = forwarder.forward(&upstream, parts, full(""), &HeaderMap::new()).await.unwrap_err();
        assert!(error.to_string().contains("did not begin answering"), "{error}");
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    /// An upstream that reads one request until it ends with `ending`, then answers
    /// `answer`; and what it received.
    async fn answer_after(
        ending: &'static [u8],
        answer: &'static [u8],
    ) -> (Upstream, tokio::task::JoinHandle<Vec<u8>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = Upstream::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let received = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buffer = [0u8; 1024];
            while !received.ends_with(ending) {
                let read = stream.read(&mut buffer).await.unwrap();
                assert!(read > 0, "the request ended early");
                received.extend_from_slice(&buffer[..read]);
            }
            stream.write_all(answer).await.unwrap();
            received
        });
        (upstream, received)
    }

    /// A body of `left` one-byte parts, one every `every`.
    struct SlowBody {
        left: u8,
        every: Duration,
        sleep: Pin<Box<tokio::time::Sleep>>,
    }

    impl hyper::body::Body for SlowBody {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            context: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, BoxError>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            std::task::ready!(self.sleep.as_mut().poll(context));
            let next = tokio::time::Instant::now() + self.every;
            self.sleep.as_mut().reset(next);
            self.left -= 1;
            Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(b"x")))))
        }
    }

    /// The wait for an answer counts from the request's last part: an upload that takes
    /// longer than the timeout, its parts arriving all along, is answered.
    #[tokio::test]
    async fn a_slow_upload_is_not_taken_for_an_upstream_that_never_answers() {
        // The whole chunked body, then the answer.
        let (upstream, _) = answer_after(b"0\r\n\r\n", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        let every = Duration::from_millis(150);
        let body = SlowBody { left: 5, every, sleep: Box::pin(tokio::time::sleep(every)) };
        let forwarder = Forwarder::with_answer_timeout(Duration::from_millis(300));
        let (parts, ()) = Request::post("/upload").body(()).unwrap().into_parts();
        let response = forwarder.forward(&upstream, parts, boxed(body), &HeaderMap::new()).await.unwrap();
        assert_eq!(response.status(), 200);
    }

    /// A body whose length is known goes with a `Content-Length` hyper makes from it (the
    /// answer-timeout wrapper keeps the body's size hint), not chunked.
    #[tokio::test]
    async fn a_body_of_known_length_is_sent_with_its_length() {
        let (upstream, received) = answer_after(b"abc", b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        let (parts, ()) = Request::post("/x").body(()).unwrap().into_parts();
        let response = Forwarder::new().forward(&upstream, parts, full("abc"), &HeaderMap::new()).await.unwrap();
        assert_eq!(response.status(), 200);
        let head = String::from_utf8(received.await.unwrap()).unwrap().to_ascii_lowercase();
        assert!(head.contains("content-length: 3\r\n") && !head.contains("transfer-encoding"), "{head}");
    }

    async fn call_over(forwarder: &Forwarder, link: &Link, upstream: &Upstream) -> Response<Body> {
        let (mut parts, ()) = Request::get("/x").body(()).unwrap().into_parts();
        upstream.make_head(&mut parts).unwrap();
        forwarder.send_over(link, upstream, parts, full("")).await.unwrap()
    }

    /// Calls whose answers were read go over the one connection, one after another.
    #[tokio::test]
    async fn a_link_carries_one_call_after_another_over_one_connection() {
        let (upstream, accepted) = test_upstream(Manner::KeepAlive).await;
        let (forwarder, link) = (Forwarder::new(), Link::default());
        for _ in 0..5 {
            let response = call_over(&forwarder, &link, &upstream).await;
            assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "ok");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// A call does not wait for a connection still busy with an answer nobody has read
    /// (the proxy's retry after a 401 whose body is chunked): it takes a new one.
    #[tokio::test]
    async fn a_link_does_not_wait_for_an_unread_answer() {
        let (upstream, accepted) = test_upstream(Manner::SlowChunked401).await;
        let (forwarder, link) = (Forwarder::new(), Link::default());
        let unread = call_over(&forwarder, &link, &upstream).await;
        assert_eq!(unread.status(), 401);
        let again = tokio::time::timeout(Duration::from_secs(2), call_over(&forwarder, &link, &upstream)).await;
        assert_eq!(again.expect("the second call waited for the first answer").status(), 401);
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
        drop(unread);
    }
}
