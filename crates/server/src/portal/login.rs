//! `GET|POST /login` and `POST /logout`.
//!
//! A session belongs to one realm: the configured default realm, or the one named by
//! `/login?realm=NAME` (the form carries it). Every page then acts in the session's
//! realm only. A session of another realm is no session for this login page (it shows
//! the form rather than the account), and logging in ends, on the server, whatever
//! session the browser held before.
//!
//! The login form is protected against login CSRF (a foreign page logging the victim in
//! as the attacker) with a double-submit token: `GET /login` sets a random value in the
//! `kw_login_csrf` cookie and the same value in a hidden field, and `POST /login`
//! requires both to match. We chose this over an `Origin` check because it does not
//! depend on knowing every name the server is reached by (the configured public URL may
//! differ from the address in use) nor on the browser sending `Origin`; SameSite=Lax
//! cookies alone would not do, as the login POST needs no session cookie to succeed.

use super::session;
use super::{Anyone, Chrome, Form, PortalRequest, Posted, csrf_refused, error_page, message, page};
use crate::login::{LoginRefusal, password_login};
use crate::state::{AppState, RealmInfo};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use keyward_core::SecretDigest;
use serde::Deserialize;
use std::sync::Arc;
use time::OffsetDateTime;

pub(crate) const LOGIN_CSRF_COOKIE: &str = "kw_login_csrf";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: &'static str,
    chrome: Option<Chrome>,
    message: Option<String>,
    login_csrf: String,
    /// The realm, when it is not the default one.
    realm: Option<String>,
}

fn login_page(status: StatusCode, message: Option<String>, login_csrf: String, realm: Option<String>) -> Response {
    let title = "Log in";
    page(status, &LoginPage { title, chrome: None, message, login_csrf, realm })
}

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    realm: Option<String>,
}

/// The enabled realm a login is for: `named`, or the default realm when it is empty.
/// Answers also the name to carry in the form (none for the default realm).
fn login_realm(state: &AppState, named: Option<&str>) -> Option<(Arc<RealmInfo>, Option<String>)> {
    let named = named.map(str::trim).filter(|name| !name.is_empty() && *name != state.config.default_realm);
    let name = named.unwrap_or(&state.config.default_realm);
    let realm = state.realm_by_name(name).filter(|realm| realm.enabled)?;
    Some((realm, named.map(str::to_string)))
}

/// The name is not repeated: the page should not say what a link's author chose.
fn no_such_realm() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "No such realm",
        "There is no enabled realm by the name in this address; check the address you were given.".to_string(),
        None,
    )
}

pub(super) async fn show(
    State(state): State<AppState>,
    request: PortalRequest,
    Query(query): Query<LoginQuery>,
) -> Response {
    let (realm, realm_field) = match login_realm(&state, query.realm.as_deref()) {
        Some(found) => found,
        None => return no_such_realm(),
    };
    if let Ok(Some(session)) = session::current(&state, &request.headers, OffsetDateTime::now_utc()).await {
        if session.realm.id == realm.id {
            return Redirect::to("/account").into_response();
        }
    }
    let token = match session::random_token() {
        Ok(token) => token,
        Err(error) => return error_page(&error, None),
    };
    let cookie = match session::cookie(&state, &format!("{LOGIN_CSRF_COOKIE}={}; Max-Age=3600", token.as_str())) {
        Ok(cookie) => cookie,
        Err(error) => return error_page(&error, None),
    };
    let mut response = login_page(StatusCode::OK, None, token.to_string(), realm_field);
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
    let (realm, realm_field) = match login_realm(&state, Some(form.get("realm"))) {
        Some(found) => found,
        None => return no_such_realm(),
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
            let mut response = login_page(status, Some(refusal.message()), login_csrf.to_string(), realm_field);
            if let LoginRefusal::Throttled { retry_after_secs } = refusal {
                if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            return response;
        }
    };
    let now = OffsetDateTime::now_utc();
    // The browser's earlier session (this realm's or another's) ends here, on the server.
    if let Ok(Some(earlier)) = session::current(&state, &request.headers, now).await {
        if let Err(error) = session::end(&state, &earlier, request.client_ip, now).await {
            return error_page(&error, None);
        }
    }
    let (cookie, _) = match session::start(&state, principal, now).await {
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

pub(super) async fn logout(State(state): State<AppState>, Posted { session, caller, .. }: Posted<Anyone>) -> Response {
    if let Err(error) = session::end(&state, &session, caller.client_ip, OffsetDateTime::now_utc()).await {
        return error_page(&error, Chrome::of(&session));
    }
    // Back to the login page of the realm the person was in.
    let login = if session.realm.name == state.config.default_realm {
        "/login".to_string()
    } else {
        format!("/login?realm={}", form_urlencoded::byte_serialize(session.realm.name.as_bytes()).collect::<String>())
    };
    let mut response = Redirect::to(&login).into_response();
    match session::clear_cookie(&state) {
        Ok(clear) => {
            response.headers_mut().append(header::SET_COOKIE, clear);
        }
        Err(error) => return error_page(&error, None),
    }
    response
}
