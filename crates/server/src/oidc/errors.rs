//! OAuth 2.0 errors (RFC 6749 §5.2, RFC 6750 §3): the token service's endpoints answer
//! in that form, not problem+json, because OAuth clients parse it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::oidc::OAuthError;

#[derive(Debug)]
pub struct OAuthFailure {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// The `WWW-Authenticate` challenge, for 401s.
    pub challenge: Option<&'static str>,
    /// Seconds for `Retry-After`, for 429s.
    pub retry_after: Option<u64>,
}

impl OAuthFailure {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> OAuthFailure {
        OAuthFailure { status, error, description: description.into(), challenge: None, retry_after: None }
    }

    pub fn invalid_request(description: impl Into<String>) -> OAuthFailure {
        OAuthFailure::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> OAuthFailure {
        OAuthFailure::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    /// Client authentication failed: one message, whatever the reason.
    pub fn invalid_client() -> OAuthFailure {
        OAuthFailure {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "Client authentication failed: send a valid keyward credential of this realm as the client \
                          secret (HTTP Basic or client_secret), or as a Bearer token."
                .to_string(),
            challenge: Some("Basic realm=\"keyward\""),
            retry_after: None,
        }
    }

    /// A bearer access token was missing or refused (RFC 6750 §3.1).
    pub fn invalid_token() -> OAuthFailure {
        OAuthFailure {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_token",
            description: "Send a valid access token of this realm in Authorization: Bearer.".to_string(),
            challenge: Some("Bearer error=\"invalid_token\""),
            retry_after: None,
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> OAuthFailure {
        tracing::error!(%cause, "token service error");
        OAuthFailure::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "Something went wrong; retry shortly.")
    }

    pub fn unavailable() -> OAuthFailure {
        OAuthFailure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "keyward cannot confirm credentials are current right now; retry shortly.",
        )
    }

    pub fn throttled(retry_after_secs: u64) -> OAuthFailure {
        OAuthFailure {
            retry_after: Some(retry_after_secs),
            ..OAuthFailure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                format!("Too many failed authentications from your address; retry in {retry_after_secs} s."),
            )
        }
    }
}

impl IntoResponse for OAuthFailure {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, Json(OAuthError { error: self.error.to_string(), error_description: self.description }))
                .into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

impl From<store::StoreError> for OAuthFailure {
    fn from(error: store::StoreError) -> Self {
        OAuthFailure::internal(error)
    }
}

/// Maps an authentication failure of a client or subject credential.
pub fn from_auth_failure(failure: crate::authn::AuthFailure, refused: OAuthFailure) -> OAuthFailure {
    match failure {
        crate::authn::AuthFailure::Refused(_) => refused,
        crate::authn::AuthFailure::Throttled { retry_after_secs } => OAuthFailure::throttled(retry_after_secs),
        crate::authn::AuthFailure::Unavailable => OAuthFailure::unavailable(),
    }
}
