//! Extractors whose rejections are problem+json: the caller, JSON bodies, paths and
//! queries.

use crate::authn::{AuthFailure, Caller};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// The client's address: the socket peer, or behind a configured trusted proxy the
/// right-most untrusted `X-Forwarded-For` entry (`core::ipfilter::client_address`);
/// IPv4-mapped IPv6 addresses are normalised either way.
pub fn client_ip(parts: &Parts, state: &AppState) -> IpAddr {
    let peer =
        parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let trusted = &state.config.trusted_proxies;
    if trusted.is_empty() {
        return peer.to_canonical();
    }
    // Raw bytes: a value that is not text is still a list of hops, and dropping it would
    // attribute the request to the proxy.
    let forwarded: Vec<&[u8]> = parts.headers.get_all("x-forwarded-for").iter().map(|value| value.as_bytes()).collect();
    keyward_core::ipfilter::client_address(peer, &forwarded, trusted)
}

fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    state.authenticate(&parts.headers, client_ip(parts, state)).map_err(|failure| match failure {
        AuthFailure::Refused(_) => ApiError::Unauthenticated,
        AuthFailure::Throttled { retry_after_secs } => ApiError::Throttled { retry_after_secs },
        AuthFailure::Unavailable => ApiError::Unavailable,
    })
}

/// An authenticated caller with a general-purpose credential. A credential bound to an
/// audience (a Model Monitor token, say) is refused here: it may only identify its user.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let caller = authenticate(parts, state)?;
        require_general_purpose(&caller)?;
        Ok(caller)
    }
}

/// Refuses a credential that may only identify its user: an access token narrowed by
/// `scope`, or a key bound to an audience. For keyward's API, and for the upstream routes
/// that act as the caller with the same identity.
pub fn require_general_purpose(caller: &Caller) -> Result<(), ApiError> {
    // Scopes narrow a token for other services; keyward's own API has no scopes to
    // honour, so a narrowed token only says who its subject is (GET /v4/users/self).
    if let Some(scope) = caller.access_token.as_ref().and_then(|token| token.claims.scope.as_deref()) {
        return Err(ApiError::Forbidden(format!(
            "This access token is narrowed to the scopes {scope:?}; it can only identify its subject here. \
             Use a token without a scope."
        )));
    }
    if let Some(audience) = &caller.audience {
        return Err(ApiError::Forbidden(format!(
            "This key is bound to the audience {audience:?}; it can only identify its user (GET /v4/users/self). \
             Use a general-purpose key here."
        )));
    }
    Ok(())
}

/// An authenticated caller whose credential may be bound to an audience: for the routes
/// that only say who the caller is.
pub struct IdentifiedCaller(pub Caller);

impl FromRequestParts<AppState> for IdentifiedCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<IdentifiedCaller, ApiError> {
        authenticate(parts, state).map(IdentifiedCaller)
    }
}

/// A JSON body. Syntax errors answer 400, a wrong type or unknown field 422 naming the
/// field, an oversized body 413, a missing content type 415.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge;
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        JsonRejection::JsonDataError(error) => {
            // "Failed to deserialize the JSON body into the target type: name: invalid type…"
            let text = error.body_text();
            let detail = text.split_once("target type: ").map_or(text.as_str(), |(_, rest)| rest).to_string();
            let field = detail.split_once(": ").map(|(field, _)| field.to_string());
            match field {
                Some(field) if !field.contains(' ') => ApiError::Invalid { field, detail },
                _ => ApiError::Invalid { field: "body".to_string(), detail },
            }
        }
        JsonRejection::JsonSyntaxError(error) => {
            ApiError::BadRequest(format!("The body is not valid JSON: {}", error.body_text()))
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// Path parameters; a bad one answers 400 problem+json.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection: PathRejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// Query parameters; unknown or malformed ones answer 400 problem+json.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection: QueryRejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// The client's address, for handlers that authenticate a credential from the body.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts, state)))
    }
}
