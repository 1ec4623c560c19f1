//! Prometheus metrics: authentications by kind and result, and request latency.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use keyward_core::CredentialKind;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Installs the process-wide recorder once and returns its handle.
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("keyward_http_request_duration_seconds".to_string()),
                    LATENCY_BUCKETS,
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

pub fn authentication(kind: &'static str, result: &'static str) {
    metrics::counter!("keyward_authentications_total", "kind" => kind, "result" => result).increment(1);
}

/// `authentication(kind, "ok")`, on every authenticated request: the counter is looked up
/// in the registry once per kind, not hashed and found each time.
pub fn authenticated(kind: CredentialKind) {
    static OK: [OnceLock<metrics::Counter>; CredentialKind::COUNT] = [const { OnceLock::new() }; CredentialKind::COUNT];
    OK[kind.index()]
        .get_or_init(|| {
            // The recorder first: a handle taken before it is installed would count nothing.
            handle();
            metrics::counter!("keyward_authentications_total", "kind" => kind.as_str(), "result" => "ok")
        })
        .increment(1);
}

/// Records each request's latency by route template (never the raw path, which could
/// carry ids without bound).
pub async fn track_latency(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    metrics::histogram!(
        "keyward_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}
