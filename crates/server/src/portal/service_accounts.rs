//! Admin > Service accounts (`/admin/service-accounts`): create accounts, issue and
//! invalidate their tokens, deactivate and activate them. Admins only.
//!
//! As on the other pages, every action is the API's own handler
//! (`api::service_accounts`) called with the session as the caller: the admin check,
//! the realm scoping (another realm's id is 404), the audit events and the change feed
//! are the API's.

use super::{Admins, Chrome, Gate, Posted, SecretPage, error_page, page};
use crate::api::service_accounts as api;
use crate::authn::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keyward_core::policy::ServiceTokenPolicy;
use proto::{CreateServiceAccount, CreateServiceToken, ExpiringQuery, PageQuery, ServiceAccount, ServiceToken};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::api_keys::date_time;
use super::session::Session;

const LIST: &str = "/admin/service-accounts";

/// Tokens that expire sooner than this are highlighted.
const SOON: Duration = Duration::days(30);

struct AccountLine {
    id: String,
    idp_id: String,
    username: String,
    email: String,
    enabled: bool,
    created: String,
}

impl From<ServiceAccount> for AccountLine {
    fn from(account: ServiceAccount) -> Self {
        AccountLine {
            id: account.id,
            idp_id: account.idp_id,
            username: account.username,
            email: account.email,
            enabled: account.enabled,
            created: date_time(Some(account.created_at)),
        }
    }
}

/// One token as listed: never its secret.
struct TokenLine {
    id: String,
    name: String,
    description: String,
    prefix: String,
    account_id: String,
    account: String,
    valid: bool,
    /// "valid", "expired", "invalidated" or "account deactivated".
    state: &'static str,
    /// Whole days left, when the token is valid and expires within [`SOON`].
    days_left: Option<i64>,
    created: String,
    created_by: String,
    expires: String,
    last_used: String,
}

impl TokenLine {
    fn of(token: ServiceToken, account_enabled: bool, now: OffsetDateTime) -> TokenLine {
        let left = token.expires_at.map(|at| at - now);
        let state = if token.is_valid {
            "valid"
        } else if token.invalidated_at.is_some() {
            "invalidated"
        } else if left.is_some_and(|left| left <= Duration::ZERO) {
            "expired"
        } else if !account_enabled {
            "account deactivated"
        } else {
            "not valid"
        };
        TokenLine {
            // Days begun count: a token made for 10 days says 10, not 9.
            days_left: left
                .filter(|left| token.is_valid && *left < SOON)
                .map(|left| (left.whole_seconds() + 86_399).div_euclid(86_400)),
            id: token.id,
            name: token.name,
            description: token.description,
            prefix: token.prefix,
            account_id: token.service_account_id,
            account: token.service_account_username,
            valid: token.is_valid,
            state,
            created: date_time(Some(token.created_at)),
            created_by: token.created_by,
            expires: date_time(token.expires_at),
            last_used: date_time(token.last_used_at),
        }
    }
}

#[derive(Template)]
#[template(path = "service_accounts.html")]
struct ListPage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    accounts: Vec<AccountLine>,
    expiring: Vec<TokenLine>,
    next: Option<String>,
    message: Option<String>,
    username: String,
    email: String,
}

#[derive(Template)]
#[template(path = "service_account.html")]
struct AccountPage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    account: AccountLine,
    roles: String,
    tokens: Vec<TokenLine>,
    message: Option<String>,
    name: String,
    days: String,
    description: String,
    max_days: i64,
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    cursor: Option<String>,
}

async fn list_page(
    state: &AppState,
    session: &Session,
    caller: Caller,
    status: StatusCode,
    cursor: Option<String>,
    message: Option<String>,
    entered: (String, String),
) -> Response {
    let query = PageQuery { limit: Some(200), cursor };
    let listed = match api::list(State(state.clone()), caller.clone(), ApiQuery(query)).await {
        Ok(Json(listed)) => listed,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    let soon = ExpiringQuery { expiring_within: format!("{}d", SOON.whole_days()) };
    let expiring = match api::expiring_tokens(State(state.clone()), caller, ApiQuery(soon)).await {
        Ok(Json(tokens)) => tokens,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    let now = OffsetDateTime::now_utc();
    page(
        status,
        &ListPage {
            title: "Service accounts",
            chrome: Chrome::of(session),
            csrf: session.csrf_token().to_string(),
            accounts: listed.items.into_iter().map(AccountLine::from).collect(),
            // The expiring list holds valid tokens only; their accounts are active.
            expiring: expiring.into_iter().map(|token| TokenLine::of(token, true, now)).collect(),
            next: listed.next_cursor,
            message,
            username: entered.0,
            email: entered.1,
        },
    )
}

pub(super) async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
    Gate { session, caller, .. }: Gate<Admins>,
) -> Response {
    list_page(&state, &session, caller, StatusCode::OK, query.cursor, None, Default::default()).await
}

pub(super) async fn create(
    State(state): State<AppState>,
    Posted { session, caller, form, .. }: Posted<Admins>,
) -> Response {
    let body = CreateServiceAccount {
        username: form.get("username").trim().to_string(),
        email: form.get("email").trim().to_string(),
    };
    let entered = (body.username.clone(), body.email.clone());
    match api::create(State(state.clone()), caller.clone(), ApiJson(body)).await {
        Ok((_, Json(account))) => Redirect::to(&format!("{LIST}/{}", account.id)).into_response(),
        Err(error) => {
            let (status, text) = error.status_and_message();
            list_page(&state, &session, caller, status, None, Some(text), entered).await
        }
    }
}

/// The form to issue a token, as entered.
struct Entered {
    name: String,
    days: String,
    description: String,
}

impl Entered {
    fn blank() -> Entered {
        Entered {
            name: String::new(),
            days: ServiceTokenPolicy::DEFAULT_LIFETIME.whole_days().to_string(),
            description: String::new(),
        }
    }
}

async fn account_page(
    state: &AppState,
    session: &Session,
    caller: &Caller,
    id: &str,
    status: StatusCode,
    message: Option<String>,
    entered: Entered,
) -> Response {
    let loaded = async {
        let Json(account) = api::get_one(State(state.clone()), caller.clone(), ApiPath(id.to_string())).await?;
        let Json(tokens) = api::list_tokens(State(state.clone()), caller.clone(), ApiPath(id.to_string())).await?;
        Ok::<_, ApiError>((account, tokens))
    }
    .await;
    let (account, tokens) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    let now = OffsetDateTime::now_utc();
    let enabled = account.enabled;
    let max_days = state.realm(caller.realm_id).map_or(0, |realm| realm.service_token_policy.max_lifetime.whole_days());
    // Newest first: the token just made is at the top.
    let tokens = tokens.into_iter().rev().map(|token| TokenLine::of(token, enabled, now)).collect();
    page(
        status,
        &AccountPage {
            title: "Service account",
            chrome: Chrome::of(session),
            csrf: session.csrf_token().to_string(),
            roles: if account.roles.is_empty() { "none".to_string() } else { account.roles.join(", ") },
            account: AccountLine::from(account),
            tokens,
            message,
            name: entered.name,
            days: entered.days,
            description: entered.description,
            max_days,
        },
    )
}

pub(super) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Gate { session, caller, .. }: Gate<Admins>,
) -> Response {
    account_page(&state, &session, &caller, &id, StatusCode::OK, None, Entered::blank()).await
}

pub(super) async fn create_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, form, .. }: Posted<Admins>,
) -> Response {
    let entered = Entered {
        name: form.get("name").trim().to_string(),
        days: form.get("lifetime_days").trim().to_string(),
        description: form.get("description").to_string(),
    };
    let Ok(days) = entered.days.parse::<i64>() else {
        let text = "Expires in (days): enter a whole number of days.".to_string();
        return account_page(&state, &session, &caller, &id, StatusCode::UNPROCESSABLE_ENTITY, Some(text), entered)
            .await;
    };
    let body = CreateServiceToken {
        name: entered.name.clone(),
        description: entered.description.clone(),
        expires_at: None,
        lifetime_days: Some(days),
    };
    match api::create_token(State(state.clone()), caller.clone(), ApiPath(id.clone()), ApiJson(body)).await {
        Ok((_, Json(created))) => page(
            StatusCode::CREATED,
            &SecretPage {
                title: "Service account token created",
                chrome: Chrome::of(&session),
                summary: format!(
                    "The token {} ({}…) of {} was created and expires {}.",
                    created.token.name,
                    created.token.prefix,
                    created.token.service_account_username,
                    date_time(created.token.expires_at)
                ),
                hint: "Send it as X-Api-Key or Authorization: Bearer.".to_string(),
                secret: created.secret,
                back: format!("{LIST}/{}", created.token.service_account_id),
            },
        ),
        Err(error) => {
            let (status, text) = error.status_and_message();
            account_page(&state, &session, &caller, &id, status, Some(text), entered).await
        }
    }
}

pub(super) async fn invalidate_token(
    State(state): State<AppState>,
    Path((id, token_id)): Path<(String, String)>,
    Posted { session, caller, .. }: Posted<Admins>,
) -> Response {
    match api::invalidate_token(State(state.clone()), caller, ApiPath((id.clone(), token_id))).await {
        Ok(_) => Redirect::to(&format!("{LIST}/{id}")).into_response(),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}

async fn activation(state: AppState, session: Session, caller: Caller, id: String, active: bool) -> Response {
    let path = ApiPath(id);
    let done = if active {
        api::activate(State(state.clone()), caller, path).await
    } else {
        api::deactivate(State(state.clone()), caller, path).await
    };
    match done {
        Ok(Json(account)) => Redirect::to(&format!("{LIST}/{}", account.id)).into_response(),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}

pub(super) async fn deactivate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, .. }: Posted<Admins>,
) -> Response {
    activation(state, session, caller, id, false).await
}

pub(super) async fn activate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, .. }: Posted<Admins>,
) -> Response {
    activation(state, session, caller, id, true).await
}
