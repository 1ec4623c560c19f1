//! `/account/api-keys` and `/account/model-monitor`: the person's own API keys, and the
//! ones bound to the `model-monitor` audience (the Model Monitor token, sent in the
//! header the configuration binds to that audience, `X-DMM-API-KEY` by default).
//! Creating and revoking go through `api::api_keys` (realm policy, audit event, change
//! feed), exactly as the API does.

use super::{Anyone, Chrome, Gate, Posted, SecretPage, error_page, page};
use crate::api::api_keys::{create_key, keys_of, revoke as revoke_key};
use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use proto::{ApiKey, CreateApiKey};
use time::{Duration, OffsetDateTime};

use super::session::Session;

/// One key as listed: never its secret.
struct KeyLine {
    id: String,
    name: String,
    description: String,
    prefix: String,
    audience: String,
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
            audience: key.audience.unwrap_or_default(),
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

/// The audience of Model Monitor tokens.
pub(super) const MODEL_MONITOR: &str = "model-monitor";

/// Which of the two key pages: every personal key, or the Model Monitor tokens.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Personal,
    ModelMonitor,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Personal => "/account/api-keys",
            Kind::ModelMonitor => "/account/model-monitor",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Personal => "API keys",
            Kind::ModelMonitor => "Model Monitor token",
        }
    }

    fn audience(self) -> Option<&'static str> {
        match self {
            Kind::Personal => None,
            Kind::ModelMonitor => Some(MODEL_MONITOR),
        }
    }

    fn default_name(self) -> &'static str {
        match self {
            Kind::Personal => "",
            Kind::ModelMonitor => "model-monitor",
        }
    }

    fn shows(self, key: &ApiKey) -> bool {
        match self {
            Kind::Personal => true,
            Kind::ModelMonitor => key.audience.as_deref() == Some(MODEL_MONITOR),
        }
    }
}

/// The header a key of `audience` is sent in: the first alias bound to it.
fn header_for(state: &AppState, audience: Option<&str>) -> Option<String> {
    match audience {
        None => Some("X-Api-Key".to_string()),
        Some(audience) => state
            .config
            .alias_headers
            .iter()
            .find(|alias| alias.audience.as_deref() == Some(audience))
            .map(|alias| alias.name.clone()),
    }
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    title: &'static str,
    model_monitor: bool,
    path: &'static str,
    header: Option<String>,
    chrome: Option<Chrome>,
    csrf: String,
    keys: Vec<KeyLine>,
    max_days: i64,
    allowed: bool,
    message: Option<String>,
    name: String,
    days: String,
    description: String,
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
    kind: Kind,
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
            title: kind.title(),
            model_monitor: matches!(kind, Kind::ModelMonitor),
            path: kind.path(),
            header: header_for(state, kind.audience()),
            chrome: Chrome::of(session),
            csrf: session.csrf_token().to_string(),
            keys: keys.into_iter().filter(|key| kind.shows(key)).map(KeyLine::from).collect(),
            max_days: policy.max_lifetime.whole_days(),
            allowed: policy.allowed,
            message,
            name: entered.name,
            days: entered.days,
            description: entered.description,
        },
    )
}

pub(super) async fn list_personal(State(state): State<AppState>, Gate { session, .. }: Gate<Anyone>) -> Response {
    list(&state, &session, Kind::Personal).await
}

pub(super) async fn list_model_monitor(State(state): State<AppState>, Gate { session, .. }: Gate<Anyone>) -> Response {
    list(&state, &session, Kind::ModelMonitor).await
}

pub(super) async fn create_personal(State(state): State<AppState>, posted: Posted<Anyone>) -> Response {
    create(&state, posted, Kind::Personal).await
}

pub(super) async fn create_model_monitor(State(state): State<AppState>, posted: Posted<Anyone>) -> Response {
    create(&state, posted, Kind::ModelMonitor).await
}

async fn list(state: &AppState, session: &Session, kind: Kind) -> Response {
    let days = session.realm.user_key_policy.max_lifetime.whole_days().to_string();
    let entered = Entered { name: kind.default_name().to_string(), days, description: String::new() };
    keys_page(state, session, kind, StatusCode::OK, None, entered).await
}

async fn create(state: &AppState, Posted { session, caller, form, .. }: Posted<Anyone>, kind: Kind) -> Response {
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
        return keys_page(state, &session, kind, StatusCode::UNPROCESSABLE_ENTITY, Some(message), entered).await;
    };
    let body = CreateApiKey {
        name: entered.name.trim().to_string(),
        description: entered.description.clone(),
        expires_at: Some(expires_at),
        audience: kind.audience().map(str::to_string),
    };
    let created = match state.store.user_by_id(session.principal.id).await {
        Ok(user) => create_key(state, &caller, &user, body).await,
        Err(error) => Err(ApiError::from(error)),
    };
    match created {
        Ok(created) => {
            let key = KeyLine::from(created.key);
            let header = header_for(state, kind.audience());
            page(
                StatusCode::CREATED,
                &SecretPage {
                    title: match kind {
                        Kind::Personal => "API key created",
                        Kind::ModelMonitor => "Model Monitor token created",
                    },
                    chrome: Chrome::of(&session),
                    summary: format!("{} ({}…) was created and expires {}.", key.name, key.prefix, key.expires),
                    hint: header.map(|header| format!("Send it in the {header} header.")).unwrap_or_default(),
                    secret: created.secret,
                    back: kind.path().to_string(),
                },
            )
        }
        Err(error) => {
            let (status, message) = error.status_and_message();
            keys_page(state, &session, kind, status, Some(message), entered).await
        }
    }
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    Posted { session, caller, form, .. }: Posted<Anyone>,
) -> Response {
    let revoked = match state.store.user_by_id(session.principal.id).await {
        Ok(user) => revoke_key(&state, &caller, &user, &key_id).await,
        Err(error) => Err(ApiError::from(error)),
    };
    match revoked {
        Ok(_) => {
            let back = if form.get("back") == Kind::ModelMonitor.path() { Kind::ModelMonitor } else { Kind::Personal };
            Redirect::to(back.path()).into_response()
        }
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}
