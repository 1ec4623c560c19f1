//! The web portal: server-rendered pages (askama templates in `templates/`) for people
//! who log in with a password. Pages act through the same functions as the API (realm
//! policy, audit events, the change feed); nothing here decides on its own who may do
//! what.
//!
//! Every response carries a Content-Security-Policy that allows only this origin's one
//! script and one stylesheet (no inline script or style anywhere), and refuses framing.
//! Every POST from a session carries the session's synchronizer token (`csrf` field).

mod account;
mod api_keys;
mod api_tokens;
mod audit;
mod deployer;
mod deployer_deployments;
mod deployer_permissions;
mod deployer_services;
mod login;
mod people;
mod service_accounts;
pub mod session;

use crate::authn::Caller;
use crate::error::ApiError;
use crate::extract::client_ip;
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use keyward_core::{CredentialKind, Role};
use session::Session;
use std::collections::HashMap;
use std::net::IpAddr;
use time::OffsetDateTime;
use tower_http::set_header::SetResponseHeaderLayer;

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The portal's one script and one stylesheet, compiled into the binary so the portal
/// works with no external assets. Pages link them with `?v=` and the crate version, so
/// a new release is fetched again despite the year-long cache.
const PORTAL_JS: &str = include_str!("../../static/portal.js");
const PORTAL_CSS: &str = include_str!("../../static/portal.css");

/// The portal's routes, with their security headers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/account", get(account::profile))
        .route("/account/about", get(account::about))
        .route("/account/api-keys", get(api_keys::list_personal).post(api_keys::create_personal))
        .route("/account/model-monitor", get(api_keys::list_model_monitor).post(api_keys::create_model_monitor))
        .route("/account/api-keys/{key_id}/revoke", post(api_keys::revoke))
        .route("/manage/api-tokens", get(api_tokens::list).post(api_tokens::create))
        .route("/manage/api-tokens/{id}/edit", get(api_tokens::edit_form).post(api_tokens::edit))
        .route("/manage/api-tokens/{id}/unlock", post(api_tokens::unlock))
        .route("/manage/api-tokens/{id}/expire", post(api_tokens::expire))
        .route("/manage/api-tokens/{id}/delete", get(api_tokens::delete_form).post(api_tokens::delete))
        .route("/admin/users", get(people::list_users).post(people::create_user))
        .route("/admin/users/{id}", get(people::show_user))
        .route("/admin/users/{id}/roles/{role}/{action}", post(people::user_role))
        .route("/admin/users/{id}/password", post(people::user_password))
        .route("/admin/users/{id}/{action}", post(people::user_switch))
        .route("/admin/groups", get(people::list_groups).post(people::create_group))
        .route("/admin/groups/{id}", get(people::show_group))
        .route("/admin/groups/{id}/members", post(people::add_member))
        .route("/admin/groups/{id}/members/{user_id}/remove", post(people::remove_member))
        .route("/admin/groups/{id}/roles/{role}/{action}", post(people::group_role))
        .route("/admin/groups/{id}/delete", post(people::delete_group))
        .route("/admin/service-accounts", get(service_accounts::list).post(service_accounts::create))
        .route("/admin/service-accounts/{id}", get(service_accounts::show))
        .route("/admin/service-accounts/{id}/tokens", post(service_accounts::create_token))
        .route("/admin/service-accounts/{id}/tokens/{token_id}/invalidate", post(service_accounts::invalidate_token))
        .route("/admin/service-accounts/{id}/deactivate", post(service_accounts::deactivate))
        .route("/admin/service-accounts/{id}/activate", post(service_accounts::activate))
        .route("/admin/audit", get(audit::show))
        .route("/admin/audit.csv", get(audit::download_csv))
        .route("/admin/audit.jsonl", get(audit::download_jsonl))
        .route("/deployer", get(deployer::overview))
        .route("/deployer/services", post(deployer_services::create))
        .route("/deployer/services/{id}", get(deployer_services::show))
        .route("/deployer/services/{id}/versions", post(deployer_services::create_version))
        .route("/deployer/services/{id}/deployments", post(deployer_services::create_deployment))
        .route("/deployer/services/{id}/auth", post(deployer_services::update_auth))
        .route("/deployer/services/{id}/auth/jwt", post(deployer_services::update_jwt))
        .route("/deployer/services/{id}/keys", post(deployer_services::create_key))
        .route("/deployer/services/{id}/keys/{key_id}/delete", post(deployer_services::delete_key))
        .route("/deployer/infrastructures", post(deployer::create_infrastructure))
        .route("/deployer/infrastructures/{id}", get(deployer::show_infrastructure))
        .route("/deployer/infrastructures/{id}/permissions", post(deployer_permissions::grant_on_infrastructure))
        .route(
            "/deployer/infrastructures/{id}/permissions/{group_id}/remove",
            post(deployer_permissions::remove_on_infrastructure),
        )
        .route("/deployer/services/{id}/permissions", post(deployer_permissions::grant_on_service))
        .route("/deployer/services/{id}/permissions/{group_id}/remove", post(deployer_permissions::remove_on_service))
        .route("/deployer/deployments/{id}", get(deployer_deployments::show))
        .route("/deployer/deployments/{id}/enable", post(deployer_deployments::enable))
        .route("/deployer/deployments/{id}/disable", post(deployer_deployments::disable))
        .route("/deployer/deployments/{id}/sample", post(deployer_deployments::sample))
        .route("/deployer/deployments/{id}/keys", post(deployer_deployments::create_key))
        .route("/deployer/deployments/{id}/keys/{key_id}/reveal", post(deployer_deployments::reveal_key))
        .route("/deployer/deployments/{id}/keys/{key_id}/delete", post(deployer_deployments::delete_key))
        .route("/deployer/services/{id}/keys/{key_id}/reveal", post(deployer_deployments::reveal_service_key))
        .route("/portal/static/portal.js", get(|| async { asset("text/javascript; charset=utf-8", PORTAL_JS) }))
        .route("/portal/static/portal.css", get(|| async { asset("text/css; charset=utf-8", PORTAL_CSS) }))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
}

/// The crate version, for the assets' `?v=`.
pub(crate) const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The app sets `no-store` only where a response has no Cache-Control of its own.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    response
}

/// The request facts every portal handler needs.
pub(crate) struct PortalRequest {
    pub headers: HeaderMap,
    pub client_ip: IpAddr,
}

impl FromRequestParts<AppState> for PortalRequest {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(PortalRequest::of(parts, state))
    }
}

impl PortalRequest {
    fn of(parts: &Parts, state: &AppState) -> PortalRequest {
        PortalRequest { headers: parts.headers.clone(), client_ip: client_ip(parts, state) }
    }
}

/// What the page layout shows a logged-in person: their name, the logout form's token,
/// and which sections of the navigation are theirs. Hiding a link is a courtesy only:
/// every page checks the caller's roles itself, through the API's functions.
pub(crate) struct Chrome {
    pub username: String,
    pub realm: String,
    pub csrf: String,
    pub admin: bool,
    pub manages_tokens: bool,
}

impl Chrome {
    pub fn of(session: &Session) -> Option<Chrome> {
        let roles = session.principal.roles;
        Some(Chrome {
            username: session.principal.username.clone(),
            realm: session.realm.name.clone(),
            csrf: session.csrf_token().to_string(),
            admin: roles.contains(Role::Admin),
            manages_tokens: roles.contains(Role::Admin) || roles.contains(Role::TokenManager),
        })
    }
}

/// The session as a caller of the API's functions: the person acting with the rights of
/// their own personal key (their roles, their realm). A session has no expiry of its own
/// that what it makes must stay within, as a personal key has none either.
pub(crate) fn caller_of(session: &Session, client_ip: IpAddr) -> Caller {
    Caller {
        realm_id: session.realm.id,
        realm_name: session.realm.name.clone(),
        credential_id: 0,
        kind: CredentialKind::UserApiKey,
        credential_expires_at: None,
        audience: None,
        principal: Some(session.principal.clone()),
        client_ip,
        access_token: None,
        credential_head: None,
        api_token: None,
        ceiling: Default::default(),
    }
}

/// A rendered page with `status`.
pub(crate) fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            response
        }
        Err(error) => {
            tracing::error!(%error, "a portal template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side.").into_response()
        }
    }
}

/// A secret shown once: a new key's or token's, behind a Copy button (never as text).
#[derive(Template)]
#[template(path = "secret_created.html")]
pub(crate) struct SecretPage {
    pub title: &'static str,
    pub chrome: Option<Chrome>,
    /// What was made, without the secret.
    pub summary: String,
    /// Where to send it, or empty.
    pub hint: String,
    pub secret: String,
    pub back: String,
}

/// A page with only a message: refusals and errors.
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    pub title: &'static str,
    pub message: String,
    pub chrome: Option<Chrome>,
}

pub(crate) fn message(status: StatusCode, title: &'static str, message: String, chrome: Option<Chrome>) -> Response {
    page(status, &MessagePage { title, message, chrome })
}

/// An API error as a page with its status and message.
pub(crate) fn error_page(error: &ApiError, chrome: Option<Chrome>) -> Response {
    let (status, text) = error.status_and_message();
    message(status, "Something is not right", text, chrome)
}

/// The session, or the way to the login page.
async fn require_session(state: &AppState, request: &PortalRequest) -> Result<Session, Response> {
    match session::current(state, &request.headers, OffsetDateTime::now_utc()).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(Redirect::to("/login").into_response()),
        Err(error) => Err(error_page(&error, None)),
    }
}

/// The session of a form POST whose synchronizer token is right; otherwise the 403 page
/// (or the login page), before anything is changed.
async fn require_session_post(state: &AppState, request: &PortalRequest, form: &Form) -> Result<Session, Response> {
    let session = require_session(state, request).await?;
    if !session.csrf_matches(form.get("csrf")) {
        return Err(csrf_refused(Chrome::of(&session)));
    }
    Ok(session)
}

/// Who may use a page: any of `roles`, and what to tell anyone else.
pub(crate) struct Needs {
    pub roles: &'static [Role],
    pub why: &'static str,
}

/// A section of the portal, as a type: who may open its pages.
pub(crate) trait Section {
    const NEEDS: Needs;
}

/// Pages for everyone logged in.
pub(crate) struct Anyone;

impl Section for Anyone {
    const NEEDS: Needs = Needs { roles: &[], why: "" };
}

/// The Admin section.
pub(crate) struct Admins;

impl Section for Admins {
    const NEEDS: Needs =
        Needs { roles: &[Role::Admin], why: "This page is for administrators; ask one to grant you the admin role." };
}

/// Management > API tokens.
pub(crate) struct TokenManagers;

impl Section for TokenManagers {
    const NEEDS: Needs = Needs {
        roles: &[Role::Admin, Role::TokenManager],
        why: "Managing API tokens needs the admin or token-manager (API Token Manager) role; ask an \
              administrator to grant it.",
    };
}

/// A page of section `S` opened with a GET: the session and its caller. Without a
/// session the request is sent to the login page; without the section's role it gets
/// the 403 page that says which role, before the handler runs.
pub(crate) struct Gate<S> {
    pub session: Session,
    pub caller: Caller,
    section: std::marker::PhantomData<S>,
}

impl<S: Section> FromRequestParts<AppState> for Gate<S> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let (session, caller) = session_with(state, &PortalRequest::of(parts, state), &S::NEEDS).await?;
        Ok(Gate { session, caller, section: std::marker::PhantomData })
    }
}

/// A form POST to section `S`: its fields, the session and its caller, once the CSRF
/// token is the session's (else the 403 page, nothing changed) and the role is held.
pub(crate) struct Posted<S> {
    pub session: Session,
    pub caller: Caller,
    pub form: Form,
    section: std::marker::PhantomData<S>,
}

impl<S: Section> axum::extract::FromRequest<AppState> for Posted<S> {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let portal = PortalRequest::of(&parts, state);
        let request = axum::extract::Request::from_parts(parts, body);
        let body = axum::body::Bytes::from_request(request, state).await.map_err(IntoResponse::into_response)?;
        let form = Form::parse(&body);
        let (session, caller) = session_with_post(state, &portal, &form, &S::NEEDS).await?;
        Ok(Posted { session, caller, form, section: std::marker::PhantomData })
    }
}

/// The session and its caller, if the person holds one of `needs.roles`; otherwise the
/// 403 page that says why (or the way to the login page). The API's handlers that the
/// page then calls check the same roles again.
async fn session_with(state: &AppState, request: &PortalRequest, needs: &Needs) -> Result<(Session, Caller), Response> {
    let session = require_session(state, request).await?;
    match with_role(&session, request, needs) {
        Some(caller) => Ok((session, caller)),
        None => Err(lacks_role(&session, needs)),
    }
}

/// The same for a form POST, whose CSRF token is checked first.
pub(crate) async fn session_with_post(
    state: &AppState,
    request: &PortalRequest,
    form: &Form,
    needs: &Needs,
) -> Result<(Session, Caller), Response> {
    let session = require_session_post(state, request, form).await?;
    match with_role(&session, request, needs) {
        Some(caller) => Ok((session, caller)),
        None => Err(lacks_role(&session, needs)),
    }
}

/// The caller of `session`, if it holds one of `needs.roles` (or none are needed).
fn with_role(session: &Session, request: &PortalRequest, needs: &Needs) -> Option<Caller> {
    let caller = caller_of(session, request.client_ip);
    (needs.roles.is_empty() || needs.roles.iter().any(|role| caller.has_role(*role))).then_some(caller)
}

fn lacks_role(session: &Session, needs: &Needs) -> Response {
    message(StatusCode::FORBIDDEN, "Not allowed", needs.why.to_string(), Chrome::of(session))
}

pub(crate) fn csrf_refused(chrome: Option<Chrome>) -> Response {
    message(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form was refused: its security (CSRF) token is missing or does not belong to your session, so \
         nothing was changed. Reload the page and submit the form again."
            .to_string(),
        chrome,
    )
}

/// A `YYYY-MM-DD` field's day (`label` names the field in the message), or `None` when
/// it is empty.
fn day_of(text: &str, label: &str) -> Result<Option<time::Date>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format).map(Some).map_err(|_| format!("{label}: enter a date as YYYY-MM-DD (UTC)."))
}

/// 00:00 UTC of `day`.
fn midnight_utc(day: time::Date) -> OffsetDateTime {
    day.with_time(time::Time::MIDNIGHT).assume_utc()
}

/// An `application/x-www-form-urlencoded` body; the first value of a name wins and a
/// missing field reads as empty.
pub(crate) struct Form(HashMap<String, String>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        let mut fields = HashMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            fields.entry(name.into_owned()).or_insert_with(|| value.into_owned());
        }
        Form(fields)
    }

    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}
