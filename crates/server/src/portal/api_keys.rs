//! `/account/api-keys`: the person's own API keys. Creating and revoking go through
//! `api::api_keys` (realm policy, audit event, change feed), exactly as the API does.

use super::{Chrome, Form, PortalRequest, error_page, page, require_session, require_session_post};
use crate::api::api_keys::{create_key, keys_of, revoke as revoke_key};
use crate::authn::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keyward_core::CredentialKind;
use proto::{ApiKey, CreateApiKey};
use time::{Duration, OffsetDateTime};

use super::session::Session;

/// One key as listed: never its secret.
struct KeyLine {
    id: String,
    name: String,
    description: String,
    prefix: String,
    created: String,
    expires: String,
    last_used: String,
}

impl From<ApiKey> for KeyLine {
    fn from(key: ApiKey) -> Self {
        KeyLine {
            id: key.id,
            name: key.name,
            description: key.description,
            prefix: key.prefix,
            created: date_time(Some(key.created_at)),
            expires: date_time(key.expires_at),
            last_used: date_time(key.last_used_at),
        }
    }
}

/// A time as the pages show it: UTC to the minute, or "never".
pub(super) fn date_time(at: Option<OffsetDateTime>) -> String {
    let Some(at) = at else { return "never".to_string() };
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", at.year(), u8::from(at.month()), at.day(), at.hour(), at.minute())
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    title: &'static str,
    chrome: Option<Chrome>,
    asset_version: &'static str,
    csrf: String,
    keys: Vec<KeyLine>,
    max_days: i64,
    allowed: bool,
    message: Option<String>,
    name: String,
    days: String,
    description: String,
}

#[derive(Template)]
#[template(path = "api_key_created.html")]
struct CreatedPage {
    title: &'static str,
    chrome: Option<Chrome>,
    asset_version: &'static str,
    key: KeyLine,
    secret: String,
}

/// The session as a caller of the API-key functions: the person acting with the
/// rights of their own personal key. A session has no expiry of its own that a key
/// must stay within (a key made here may live as long as the realm allows, as one
/// made with the person's key does).
pub fn caller_of(session: &Session, client_ip: std::net::IpAddr) -> Caller {
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
    }
}

/// The form's values, kept when the page is shown again with a message.
struct Entered {
    name: String,
    days: String,
    description: String,
}

async fn keys_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    message: Option<String>,
    entered: Entered,
) -> Response {
    let user = match state.store.user_by_id(session.principal.id).await {
        Ok(user) => user,
        Err(error) => return error_page(&ApiError::from(error), Chrome::of(session)),
    };
    let keys = match keys_of(state, &user).await {
        Ok(keys) => keys,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    let policy = session.realm.user_key_policy;
    page(
        status,
        &KeysPage {
            title: "API keys",
            chrome: Chrome::of(session),
            asset_version: super::ASSET_VERSION,
            csrf: session.csrf_token().to_string(),
            keys: keys.into_iter().map(KeyLine::from).collect(),
            max_days: policy.max_lifetime.whole_days(),
            allowed: policy.allowed,
            message,
            name: entered.name,
            days: entered.days,
            description: entered.description,
        },
    )
}

pub(super) async fn list(State(state): State<AppState>, request: PortalRequest) -> Response {
    let session = match require_session(&state, &request).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let days = session.realm.user_key_policy.max_lifetime.whole_days().to_string();
    keys_page(&state, &session, StatusCode::OK, None, Entered { name: String::new(), days, description: String::new() })
        .await
}

pub(super) async fn create(State(state): State<AppState>, request: PortalRequest, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let session = match require_session_post(&state, &request, &form).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let entered = Entered {
        name: form.get("name").to_string(),
        days: form.get("expires_in_days").to_string(),
        description: form.get("description").to_string(),
    };
    let now = OffsetDateTime::now_utc();
    let max_days = session.realm.user_key_policy.max_lifetime.whole_days();
    let expires_at = match entered.days.trim().parse::<i64>() {
        Ok(days) if (1..=max_days).contains(&days) => now.checked_add(Duration::days(days)),
        _ => None,
    };
    let Some(expires_at) = expires_at else {
        let message = format!("Expires in (days): enter a whole number of days from 1 to {max_days}.");
        return keys_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, Some(message), entered).await;
    };
    let body = CreateApiKey {
        name: entered.name.trim().to_string(),
        description: entered.description.clone(),
        expires_at: Some(expires_at),
        audience: None,
    };
    let caller = caller_of(&session, request.client_ip);
    let created = match state.store.user_by_id(session.principal.id).await {
        Ok(user) => create_key(&state, &caller, &user, body).await,
        Err(error) => Err(ApiError::from(error)),
    };
    match created {
        Ok(created) => page(
            StatusCode::CREATED,
            &CreatedPage {
                title: "API key created",
                chrome: Chrome::of(&session),
                asset_version: super::ASSET_VERSION,
                key: KeyLine::from(created.key),
                secret: created.secret,
            },
        ),
        Err(error) => {
            let (status, message) = error.status_and_message();
            keys_page(&state, &session, status, Some(message), entered).await
        }
    }
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    request: PortalRequest,
    Path(key_id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let session = match require_session_post(&state, &request, &form).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let caller = caller_of(&session, request.client_ip);
    let revoked = match state.store.user_by_id(session.principal.id).await {
        Ok(user) => revoke_key(&state, &caller, &user, &key_id).await,
        Err(error) => Err(ApiError::from(error)),
    };
    match revoked {
        Ok(_) => Redirect::to("/account/api-keys").into_response(),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}
