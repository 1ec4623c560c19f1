//! Management > API tokens (`/manage/api-tokens`), for admins and API Token Managers.
//!
//! Every action calls the API's own handler (`api::api_tokens`) with the session as the
//! caller, so the role checks, the "no escalation through a token" rule, the realm
//! scoping, the audit events and the change feed are the API's, not a copy of them.
//!
//! A JWT is never part of a rendered list: **Unlock Token** posts to
//! `/manage/api-tokens/{id}/unlock`, which mints a new generation (the old JWT stops
//! working) and answers it as JSON to the portal script, which keeps it in memory only
//! (Copy, Show, Lock; collapsing the entry or leaving the page forgets it). Without the
//! script, the same form answers a page that offers the JWT once behind a Copy button.

use super::{
    Chrome, Form, Gate, PortalRequest, Posted, SecretPage, Section, TokenManagers, error_page, page, session_with_post,
};
use crate::api::api_tokens as api;
use crate::authn::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use keyward_core::policy::ApiTokenPolicy;
use proto::{ApiToken, ApiTokenQuery, CreateApiToken, UpdateApiToken};
use serde::Deserialize;
use time::{Date, OffsetDateTime};

use super::api_keys::date_time;
use super::session::Session;

const LIST: &str = "/manage/api-tokens";

/// One token as the list shows it: never its JWT.
struct TokenLine {
    id: String,
    name: String,
    username: String,
    description: String,
    filter: String,
    enabled: bool,
    status: String,
    expires: String,
    created: String,
    created_by: String,
    updated: String,
    last_used: String,
    generation: i64,
    open: bool,
}

impl TokenLine {
    fn of(token: ApiToken, open: Option<&str>) -> TokenLine {
        TokenLine {
            open: open == Some(token.id.as_str()),
            id: token.id,
            name: token.name,
            username: token.username,
            description: token.description,
            filter: if token.filter.is_empty() { "anywhere".to_string() } else { token.filter.join(", ") },
            enabled: token.enabled,
            status: token.status,
            expires: date_time(Some(token.expires_at)),
            created: date_time(Some(token.created_at)),
            created_by: token.created_by,
            updated: match (token.updated_at, token.updated_by) {
                (Some(at), Some(by)) => format!("{} by {by}", date_time(Some(at))),
                _ => "never".to_string(),
            },
            last_used: date_time(token.last_used_at),
            generation: token.generation,
        }
    }
}

/// The add and edit forms' fields, as entered.
struct Fields {
    username: String,
    name: String,
    expires_on: String,
    filter: String,
    description: String,
    enabled: bool,
}

impl Fields {
    fn from_form(form: &Form) -> Fields {
        Fields {
            username: form.get("username").trim().to_string(),
            name: form.get("name").trim().to_string(),
            expires_on: form.get("expires_on").trim().to_string(),
            filter: form.get("filter").to_string(),
            description: form.get("description").to_string(),
            enabled: !form.get("enabled").is_empty(),
        }
    }

    fn blank(now: OffsetDateTime) -> Fields {
        Fields {
            username: String::new(),
            name: String::new(),
            expires_on: date_text((now + ApiTokenPolicy::DEFAULT_LIFETIME).date()),
            filter: String::new(),
            description: String::new(),
            enabled: true,
        }
    }

    fn of(token: &ApiToken) -> Fields {
        Fields {
            username: token.username.clone(),
            name: token.name.clone(),
            expires_on: date_text(token.expires_at.to_offset(time::UtcOffset::UTC).date()),
            filter: token.filter.join("\n"),
            description: token.description.clone(),
            enabled: token.enabled,
        }
    }

    /// The filter's entries: separated by commas, spaces or new lines.
    fn filter_entries(&self) -> Vec<String> {
        self.filter
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(str::to_string)
            .collect()
    }
}

fn date_text(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// "Expires on" is a UTC date; the token stops working at 00:00 UTC that day.
fn expiry_of(text: &str) -> Result<OffsetDateTime, String> {
    let day = super::day_of(text, "Expires on")?;
    day.map(super::midnight_utc).ok_or_else(|| "Expires on: enter a date as YYYY-MM-DD (UTC).".to_string())
}

#[derive(Template)]
#[template(path = "api_tokens.html")]
struct TokensPage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    tokens: Vec<TokenLine>,
    next: Option<String>,
    message: Option<String>,
    fields: Fields,
    max_days: i64,
}

#[derive(Template)]
#[template(path = "api_token_edit.html")]
struct EditPage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    id: String,
    message: Option<String>,
    fields: Fields,
    max_days: i64,
}

#[derive(Template)]
#[template(path = "api_token_delete.html")]
struct DeletePage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    token: TokenLine,
}

async fn manager_post(state: &AppState, request: &PortalRequest, form: &Form) -> Result<(Session, Caller), Response> {
    session_with_post(state, request, form, &TokenManagers::NEEDS).await
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    cursor: Option<String>,
    open: Option<String>,
}

async fn tokens_page(
    state: &AppState,
    session: &Session,
    caller: Caller,
    status: StatusCode,
    query: ListQuery,
    message: Option<String>,
    fields: Fields,
) -> Response {
    let listed = api::list(
        State(state.clone()),
        caller,
        ApiQuery(ApiTokenQuery { limit: Some(200), cursor: query.cursor, user_id: None }),
    )
    .await;
    let listed = match listed {
        Ok(Json(listed)) => listed,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    let open = query.open.as_deref();
    page(
        status,
        &TokensPage {
            title: "API tokens",
            chrome: Chrome::of(session),
            csrf: session.csrf_token().to_string(),
            tokens: listed.items.into_iter().map(|token| TokenLine::of(token, open)).collect(),
            next: listed.next_cursor,
            message,
            fields,
            max_days: ApiTokenPolicy::MAX_LIFETIME.whole_days(),
        },
    )
}

pub(super) async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
    Gate { session, caller, .. }: Gate<TokenManagers>,
) -> Response {
    let fields = Fields::blank(OffsetDateTime::now_utc());
    tokens_page(&state, &session, caller, StatusCode::OK, query, None, fields).await
}

/// The user a form names, by username, as the API's `userId`.
async fn user_id_of(state: &AppState, caller: &Caller, username: &str) -> Result<String, String> {
    if username.is_empty() {
        return Err("User: enter the username the token acts as.".to_string());
    }
    match state.store.user_by_username(caller.realm_id, username).await {
        Ok(Some(user)) => Ok(user.public_id),
        Ok(None) => Err(format!("User: there is no user called {username:?} in this realm.")),
        Err(error) => Err(ApiError::from(error).status_and_message().1),
    }
}

/// The API's refusal as the form's message, with its status.
fn refusal(error: ApiError) -> (StatusCode, String) {
    error.status_and_message()
}

/// A form value the API would not even be asked about.
fn unprocessable(text: String) -> (StatusCode, String) {
    (StatusCode::UNPROCESSABLE_ENTITY, text)
}

pub(super) async fn create(
    State(state): State<AppState>,
    Posted { session, caller, form, .. }: Posted<TokenManagers>,
) -> Response {
    let fields = Fields::from_form(&form);
    let checked = async {
        let user_id = user_id_of(&state, &caller, &fields.username).await.map_err(unprocessable)?;
        let expires_at = expiry_of(&fields.expires_on).map_err(unprocessable)?;
        Ok::<_, (StatusCode, String)>(CreateApiToken {
            user_id,
            name: fields.name.clone(),
            description: fields.description.clone(),
            expires_at: Some(expires_at),
            filter: fields.filter_entries(),
            enabled: fields.enabled,
        })
    }
    .await;
    let created = match checked {
        Ok(body) => api::create(State(state.clone()), caller.clone(), ApiJson(body)).await.map_err(refusal),
        Err(refused) => Err(refused),
    };
    match created {
        Ok((_, Json(issued))) => page(
            StatusCode::CREATED,
            &SecretPage {
                title: "API token created",
                chrome: Chrome::of(&session),
                summary: format!(
                    "The API token {} for {} was created and expires {}.",
                    issued.record.name,
                    issued.record.username,
                    date_time(Some(issued.record.expires_at))
                ),
                hint: "Send it as Authorization: Bearer. Unlock Token on the list makes a new one later and ends \
                       this one."
                    .to_string(),
                secret: issued.token,
                back: LIST.to_string(),
            },
        ),
        Err((status, text)) => {
            let query = ListQuery { cursor: None, open: None };
            tokens_page(&state, &session, caller, status, query, Some(text), fields).await
        }
    }
}

/// The record `id`, through the API's handler (404 for another realm's).
async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<ApiToken, ApiError> {
    api::get_one(State(state.clone()), caller.clone(), ApiPath(id.to_string())).await.map(|Json(token)| token)
}

pub(super) async fn edit_form(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Gate { session, caller, .. }: Gate<TokenManagers>,
) -> Response {
    match load(&state, &caller, &id).await {
        Ok(token) => edit_page(&session, StatusCode::OK, token.id.clone(), None, Fields::of(&token)),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}

fn edit_page(session: &Session, status: StatusCode, id: String, message: Option<String>, fields: Fields) -> Response {
    page(
        status,
        &EditPage {
            title: "Edit API token",
            chrome: Chrome::of(session),
            csrf: session.csrf_token().to_string(),
            id,
            message,
            fields,
            max_days: ApiTokenPolicy::MAX_LIFETIME.whole_days(),
        },
    )
}

pub(super) async fn edit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, form, .. }: Posted<TokenManagers>,
) -> Response {
    let before = match load(&state, &caller, &id).await {
        Ok(token) => token,
        Err(error) => return error_page(&error, Chrome::of(&session)),
    };
    let fields = Fields::from_form(&form);
    let checked = async {
        // Only what changed is sent: an unchanged expiry date keeps the exact expiry.
        let user_id = if fields.username == before.username {
            None
        } else {
            Some(user_id_of(&state, &caller, &fields.username).await.map_err(unprocessable)?)
        };
        let expires_at = if fields.expires_on == Fields::of(&before).expires_on {
            None
        } else {
            Some(expiry_of(&fields.expires_on).map_err(unprocessable)?)
        };
        Ok::<_, (StatusCode, String)>(UpdateApiToken {
            user_id,
            name: Some(fields.name.clone()),
            description: Some(fields.description.clone()),
            expires_at,
            filter: Some(fields.filter_entries()),
            enabled: Some(fields.enabled),
        })
    }
    .await;
    let updated = match checked {
        Ok(body) => {
            api::update(State(state.clone()), caller, ApiPath(before.id.clone()), ApiJson(body)).await.map_err(refusal)
        }
        Err(refused) => Err(refused),
    };
    match updated {
        Ok(Json(updated)) => match updated.token {
            // A token given to another user has a new JWT: the old one names the old user.
            Some(token) => page(
                StatusCode::OK,
                &SecretPage {
                    title: "API token saved",
                    chrome: Chrome::of(&session),
                    summary: format!(
                        "The API token {} now acts as {}; its earlier JWT has stopped working.",
                        updated.record.name, updated.record.username
                    ),
                    hint: "Send it as Authorization: Bearer.".to_string(),
                    secret: token,
                    back: LIST.to_string(),
                },
            ),
            None => Redirect::to(&format!("{LIST}?open={}", updated.record.id)).into_response(),
        },
        Err((status, text)) => edit_page(&session, status, before.id, Some(text), fields),
    }
}

/// Whether the portal script asked (it wants JSON, not a page).
fn wants_json(request: &PortalRequest) -> bool {
    request
        .headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.starts_with("application/json"))
}

pub(super) async fn unlock(
    State(state): State<AppState>,
    request: PortalRequest,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let json = wants_json(&request);
    let (session, caller) = match manager_post(&state, &request, &form).await {
        Ok(manager) => manager,
        Err(response) if json && response.status().is_redirection() => {
            return json_refusal(StatusCode::UNAUTHORIZED, "Your session has ended; log in again.");
        }
        Err(response) if json => return json_refusal(response.status(), "Reload the page and try again."),
        Err(response) => return response,
    };
    let unlocked = api::unlock(State(state.clone()), caller, ApiPath(id)).await;
    match (unlocked, json) {
        (Ok(Json(issued)), true) => {
            Json(serde_json::json!({"token": issued.token, "generation": issued.record.generation})).into_response()
        }
        (Ok(Json(issued)), false) => page(
            StatusCode::OK,
            &SecretPage {
                title: "API token unlocked",
                chrome: Chrome::of(&session),
                summary: format!(
                    "{} has a new JWT (generation {}); the one before it has stopped working.",
                    issued.record.name, issued.record.generation
                ),
                hint: "Send it as Authorization: Bearer.".to_string(),
                secret: issued.token,
                back: LIST.to_string(),
            },
        ),
        (Err(error), true) => {
            let (status, text) = error.status_and_message();
            json_refusal(status, &text)
        }
        (Err(error), false) => error_page(&error, Chrome::of(&session)),
    }
}

fn json_refusal(status: StatusCode, text: &str) -> Response {
    (status, Json(serde_json::json!({"error": text}))).into_response()
}

pub(super) async fn expire(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, .. }: Posted<TokenManagers>,
) -> Response {
    match api::expire(State(state.clone()), caller, ApiPath(id)).await {
        Ok(Json(token)) => Redirect::to(&format!("{LIST}?open={}", token.id)).into_response(),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}

pub(super) async fn delete_form(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Gate { session, caller, .. }: Gate<TokenManagers>,
) -> Response {
    match load(&state, &caller, &id).await {
        Ok(token) => page(
            StatusCode::OK,
            &DeletePage {
                title: "Delete API token",
                chrome: Chrome::of(&session),
                csrf: session.csrf_token().to_string(),
                token: TokenLine::of(token, None),
            },
        ),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, .. }: Posted<TokenManagers>,
) -> Response {
    match api::delete(State(state.clone()), caller, ApiPath(id)).await {
        Ok(_) => Redirect::to(LIST).into_response(),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}
