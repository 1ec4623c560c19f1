//! The one HTTP error type. Only this crate turns errors into status codes, and every
//! error leaves as RFC 9457 `application/problem+json` with a stable `type`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use proto::Problem;
use store::StoreError;

/// The same body for every refused credential, so the answer tells an attacker nothing.
pub const UNAUTHENTICATED_DETAIL: &str =
    "Authentication required: send a valid credential in Authorization: Bearer, X-Api-Key or an alias header.";

#[derive(Debug)]
pub enum ApiError {
    /// 401: missing, malformed, unknown, revoked or expired credential (one message).
    Unauthenticated,
    /// 429: too many failed authentications from this address.
    Throttled { retry_after_secs: u64 },
    /// 403: authenticated but not allowed; the message says what is missing.
    Forbidden(String),
    /// 404: no such object, or one the caller may not see.
    NotFound(&'static str),
    /// 400: the request is malformed (syntax, parameters).
    BadRequest(String),
    /// 422: a field's value breaks a rule.
    Invalid { field: String, detail: String },
    /// 409: the value is taken, or the object is in the wrong state.
    Conflict { field: Option<String>, detail: String },
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 503: this node cannot vouch for credentials right now (its index is stale).
    Unavailable,
    /// 500: logged with its cause; the caller sees a generic message.
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: &str, detail: impl Into<String>) -> ApiError {
        ApiError::Invalid { field: field.to_string(), detail: detail.into() }
    }

    /// The status and the message a person is shown, for the portal's HTML pages. An
    /// internal error is logged here, where it becomes a page.
    pub(crate) fn status_and_message(&self) -> (StatusCode, String) {
        if let ApiError::Internal(cause) = self {
            tracing::error!(cause = %cause, "portal request failed");
        }
        (self.parts().0, self.detail_and_field().0)
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthenticated"),
            ApiError::Throttled { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "throttled", "Too many failed authentications")
            }
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type")
            }
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }

    fn detail_and_field(&self) -> (String, Option<String>) {
        match self {
            ApiError::Unauthenticated => (UNAUTHENTICATED_DETAIL.to_string(), None),
            ApiError::Throttled { retry_after_secs } => {
                (format!("Too many failed authentications from your address; retry in {retry_after_secs} s."), None)
            }
            ApiError::Forbidden(detail) | ApiError::BadRequest(detail) => (detail.clone(), None),
            ApiError::NotFound(what) => (format!("No {what} with that id in this realm."), None),
            ApiError::Invalid { field, detail } => (format!("{field}: {detail}"), Some(field.clone())),
            ApiError::Conflict { field, detail } => (detail.clone(), field.clone()),
            ApiError::PayloadTooLarge => ("The request body is larger than the server accepts.".to_string(), None),
            ApiError::UnsupportedMediaType => {
                ("Send the body as JSON with Content-Type: application/json.".to_string(), None)
            }
            ApiError::Unavailable => (
                "keyward cannot reach its database to confirm credentials are current; retry shortly.".to_string(),
                None,
            ),
            ApiError::Internal(_) => {
                ("Something went wrong on our side; the request id is in the logs.".to_string(), None)
            }
        }
    }
}

/// Builds a problem response.
pub fn problem_response(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: String,
    field: Option<String>,
) -> Response {
    let problem = Problem {
        problem_type: format!("urn:keyward:problem:{slug}"),
        title: title.to_string(),
        status: status.as_u16(),
        detail,
        field,
        instance: None,
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            // Logged once, here, where it becomes a response.
            tracing::error!(cause = %cause, "request failed");
        }
        let (status, slug, title) = self.parts();
        let (detail, field) = self.detail_and_field();
        let mut response = problem_response(status, slug, title, detail, field);
        match &self {
            ApiError::Unauthenticated => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"keyward\""));
            }
            ApiError::Throttled { retry_after_secs } => {
                if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            ApiError::Unavailable => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::NotFound("object"),
            StoreError::Conflict { field } => ApiError::Conflict {
                field: Some(field.to_string()),
                detail: format!("{field} is already taken in this realm; choose another."),
            },
            StoreError::Gone => ApiError::Conflict {
                field: None,
                detail: "Something this request refers to was deleted by another request while it ran; nothing \
                         was changed. Reload it and try again."
                    .to_string(),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// A store error as the API answers it when the object looked up is `what`: `NotFound`
/// names it; anything else as [`From<StoreError>`].
pub fn not_found(what: &'static str) -> impl FnOnce(StoreError) -> ApiError {
    move |error| match error {
        StoreError::NotFound => ApiError::NotFound(what),
        other => other.into(),
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
