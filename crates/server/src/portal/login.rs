//! `GET|POST /login` and `POST /logout`.
//!
//! The login form is protected against login CSRF (a foreign page logging the victim in
//! as the attacker) with a double-submit token: `GET /login` sets a random value in the
//! `kw_login_csrf` cookie and the same value in a hidden field, and `POST /login`
//! requires both to match. We chose this over an `Origin` check because it does not
//! depend on knowing every name the server is reached by (the configured public URL may
//! differ from the address in use) nor on the browser sending `Origin`; SameSite=Lax
//! cookies alone would not do, as the login POST needs no session cookie to succeed.

use super::session;
use super::{Chrome, Form, PortalRequest, csrf_refused, error_page, page, require_session_post};
use crate::login::{LoginRefusal, password_login};
use crate::state::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use keyward_core::SecretDigest;
use time::OffsetDateTime;

const LOGIN_CSRF_COOKIE: &str = "kw_login_csrf";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: &'static str,
    chrome: Option<Chrome>,
    asset_version: &'static str,
    message: Option<String>,
    login_csrf: String,
}

fn login_page(status: StatusCode, message: Option<String>, login_csrf: String) -> Response {
    page(status, &LoginPage { title: "Log in", chrome: None, asset_version: super::ASSET_VERSION, message, login_csrf })
}

pub(super) async fn show(State(state): State<AppState>, request: PortalRequest) -> Response {
    if let Ok(Some(_)) = session::current(&state, &request.headers, OffsetDateTime::now_utc()).await {
        return Redirect::to("/account").into_response();
    }
    let token = match session::random_token() {
        Ok(token) => token,
        Err(error) => return error_page(&error, None),
    };
    let cookie = match session::cookie(&state, &format!("{LOGIN_CSRF_COOKIE}={}; Max-Age=3600", token.as_str())) {
        Ok(cookie) => cookie,
        Err(error) => return error_page(&error, None),
    };
    let mut response = login_page(StatusCode::OK, None, token.to_string());
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// Whether the login form's token is the one in its cookie.
fn login_token_matches(cookie: Option<&str>, field: &str) -> bool {
    let (mut from_cookie, mut from_field) = ([0u8; 32], [0u8; 32]);
    let Some(cookie) = cookie else { return false };
    hex::decode_to_slice(cookie, &mut from_cookie).is_ok()
        && hex::decode_to_slice(field, &mut from_field).is_ok()
        && SecretDigest(from_cookie).constant_time_eq(&SecretDigest(from_field))
}

pub(super) async fn submit(State(state): State<AppState>, request: PortalRequest, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let login_csrf = form.get("login_csrf");
    if !login_token_matches(session::cookie_value(&request.headers, LOGIN_CSRF_COOKIE), login_csrf) {
        return csrf_refused(None);
    }
    let Some(realm) = state.realm_by_name(&state.config.default_realm) else {
        return error_page(&crate::error::ApiError::NotFound("realm"), None);
    };
    let login = password_login(&state, realm.id, form.get("username"), form.get("password"), request.client_ip).await;
    let principal = match login {
        Ok(principal) => principal,
        Err(refusal) => {
            let status = match refusal {
                LoginRefusal::InvalidCredentials => StatusCode::UNAUTHORIZED,
                LoginRefusal::ServiceAccount | LoginRefusal::Disabled => StatusCode::FORBIDDEN,
                LoginRefusal::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                LoginRefusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            };
            let mut response = login_page(status, Some(refusal.message()), login_csrf.to_string());
            if let LoginRefusal::Throttled { retry_after_secs } = refusal {
                if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            return response;
        }
    };
    let (cookie, _) = match session::start(&state, principal, OffsetDateTime::now_utc()).await {
        Ok(started) => started,
        Err(error) => return error_page(&error, None),
    };
    let mut response = Redirect::to("/account").into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    if let Ok(clear) = session::cookie(&state, &format!("{LOGIN_CSRF_COOKIE}=; Max-Age=0")) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

pub(super) async fn logout(State(state): State<AppState>, request: PortalRequest, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let session = match require_session_post(&state, &request, &form).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if let Err(error) = session::end(&state, &session, request.client_ip, OffsetDateTime::now_utc()).await {
        return error_page(&error, Chrome::of(&session));
    }
    let mut response = Redirect::to("/login").into_response();
    match session::clear_cookie(&state) {
        Ok(clear) => {
            response.headers_mut().append(header::SET_COOKIE, clear);
        }
        Err(error) => return error_page(&error, None),
    }
    response
}
