//! Admin > Users and Admin > Groups (`/admin/users`, `/admin/groups`): people, their
//! roles, passwords and enabled switch; groups, their members and roles. Admins only.
//!
//! Each form is one action and one call to the API's own handler (`api::users`,
//! `api::groups`, `api::passwords`) with the session as the caller, so the rules (no
//! admin role for a service account, no taking the admin role from yourself, realm
//! scoping, audit events) are the API's. A role is granted or revoked with its own
//! button: one click, one mutation, never a half-applied set.

use super::{Admins, Chrome, Gate, Posted, error_page, page};
use crate::api::{groups, passwords, users};
use crate::authn::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keyward_core::Role;
use proto::{CreateGroup, CreateUser, Group, PageQuery, SetPassword, User};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::api_keys::date_time;
use super::session::Session;

const USERS: &str = "/admin/users";
const GROUPS: &str = "/admin/groups";
/// Users and groups per page: each costs a few reads for its roles and groups.
const PAGE: u32 = 100;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    cursor: Option<String>,
}

/// What a page says after a redirect: a fixed text chosen by name, never the query's
/// own text.
#[derive(Deserialize)]
pub(super) struct DoneQuery {
    done: Option<String>,
}

impl DoneQuery {
    fn notice(&self) -> Option<String> {
        let text = match self.done.as_deref()? {
            "password" => "The password was set. Their sessions go on; disable the user to end them.",
            "created" => "Created.",
            _ => return None,
        };
        Some(text.to_string())
    }
}

/// One role of a user or group, with what the page may do about it.
struct RoleLine {
    name: &'static str,
    direct: bool,
    /// Held through a group, not (only) directly.
    inherited: bool,
}

fn role_lines(direct: &[String], effective: &[String]) -> Vec<RoleLine> {
    Role::ALL
        .iter()
        .map(|role| {
            let name = role.as_str();
            let direct = direct.iter().any(|held| held == name);
            RoleLine { name, direct, inherited: !direct && effective.iter().any(|held| held == name) }
        })
        .collect()
}

// ---- users ----

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    users: Vec<User>,
    next: Option<String>,
    message: Option<String>,
    entered: NewUser,
}

#[derive(Default)]
struct NewUser {
    username: String,
    email: String,
    first_name: String,
    last_name: String,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    user: User,
    created: String,
    roles: Vec<RoleLine>,
    is_self: bool,
    message: Option<String>,
}

async fn users_page(
    state: &AppState,
    session: &Session,
    caller: Caller,
    status: StatusCode,
    cursor: Option<String>,
    message: Option<String>,
    entered: NewUser,
) -> Response {
    let query = PageQuery { limit: Some(PAGE), cursor };
    let listed = match users::list_users(State(state.clone()), caller, ApiQuery(query)).await {
        Ok(Json(listed)) => listed,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    page(
        status,
        &UsersPage {
            title: "Users",
            chrome: Chrome::of(session),
            csrf: session.csrf_token().to_string(),
            users: listed.items,
            next: listed.next_cursor,
            message,
            entered,
        },
    )
}

pub(super) async fn list_users(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
    Gate { session, caller, .. }: Gate<Admins>,
) -> Response {
    users_page(&state, &session, caller, StatusCode::OK, query.cursor, None, NewUser::default()).await
}

pub(super) async fn create_user(
    State(state): State<AppState>,
    Posted { session, caller, form, .. }: Posted<Admins>,
) -> Response {
    let entered = NewUser {
        username: form.get("username").trim().to_string(),
        email: form.get("email").trim().to_string(),
        first_name: form.get("first_name").trim().to_string(),
        last_name: form.get("last_name").trim().to_string(),
    };
    let password = Zeroizing::new(form.get("password").to_string());
    let body = CreateUser {
        username: entered.username.clone(),
        email: entered.email.clone(),
        first_name: entered.first_name.clone(),
        last_name: entered.last_name.clone(),
        avatar_url: None,
        password: (!password.is_empty()).then(|| password.to_string()),
        attributes: Default::default(),
    };
    match users::create_user(State(state.clone()), caller.clone(), ApiJson(body)).await {
        Ok((_, Json(user))) => Redirect::to(&format!("{USERS}/{}?done=created", user.id)).into_response(),
        Err(error) => {
            let (status, text) = error.status_and_message();
            users_page(&state, &session, caller, status, None, Some(text), entered).await
        }
    }
}

pub(super) async fn show_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(done): Query<DoneQuery>,
    Gate { session, caller, .. }: Gate<Admins>,
) -> Response {
    user_page(&state, &session, caller, &id, StatusCode::OK, done.notice()).await
}

async fn user_page(
    state: &AppState,
    session: &Session,
    caller: Caller,
    id: &str,
    status: StatusCode,
    message: Option<String>,
) -> Response {
    let user = match users::get_user(State(state.clone()), caller, ApiPath(id.to_string())).await {
        Ok(Json(user)) => user,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    page(
        status,
        &UserPage {
            title: "User",
            chrome: Chrome::of(session),
            csrf: session.csrf_token().to_string(),
            created: date_time(Some(user.created_at)),
            roles: role_lines(&user.roles, &user.effective_roles),
            is_self: user.id == session.principal.public_id,
            user,
            message,
        },
    )
}

/// The outcome of one action on user `id`: back to the user's page, or the refusal.
fn back_to_user(session: &Session, id: &str, done: Result<(), ApiError>, notice: &str) -> Response {
    match done {
        Ok(()) if notice.is_empty() => Redirect::to(&format!("{USERS}/{id}")).into_response(),
        Ok(()) => Redirect::to(&format!("{USERS}/{id}?done={notice}")).into_response(),
        Err(error) => error_page(&error, Chrome::of(session)),
    }
}

pub(super) async fn user_role(
    State(state): State<AppState>,
    Path((id, role, action)): Path<(String, String, String)>,
    Posted { session, caller, .. }: Posted<Admins>,
) -> Response {
    let path = ApiPath((id.clone(), role));
    let done = match action.as_str() {
        "grant" => users::grant_role(State(state.clone()), caller, path).await.map(drop),
        "revoke" => users::revoke_role(State(state.clone()), caller, path).await.map(drop),
        _ => Err(ApiError::NotFound("page")),
    };
    back_to_user(&session, &id, done, "")
}

pub(super) async fn user_switch(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Posted { session, caller, .. }: Posted<Admins>,
) -> Response {
    let path = ApiPath(id.clone());
    let done = match action.as_str() {
        "enable" => users::enable_user(State(state.clone()), caller, path).await.map(drop),
        "disable" => users::disable_user(State(state.clone()), caller, path).await.map(drop),
        "delete" => {
            return match users::delete_user(State(state.clone()), caller, path).await {
                Ok(_) => Redirect::to(USERS).into_response(),
                Err(error) => error_page(&error, Chrome::of(&session)),
            };
        }
        _ => Err(ApiError::NotFound("page")),
    };
    back_to_user(&session, &id, done, "")
}

pub(super) async fn user_password(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, form, .. }: Posted<Admins>,
) -> Response {
    let body = SetPassword { password: form.get("password").to_string() };
    match passwords::set_password(State(state.clone()), caller.clone(), ApiPath(id.clone()), ApiJson(body)).await {
        Ok(_) => back_to_user(&session, &id, Ok(()), "password"),
        Err(error @ (ApiError::NotFound(_) | ApiError::Forbidden(_))) => error_page(&error, Chrome::of(&session)),
        Err(error) => {
            let (status, text) = error.status_and_message();
            user_page(&state, &session, caller, &id, status, Some(text)).await
        }
    }
}

// ---- groups ----

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    groups: Vec<Group>,
    next: Option<String>,
    message: Option<String>,
    name: String,
    description: String,
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    group: Group,
    created: String,
    roles: Vec<RoleLine>,
    message: Option<String>,
    username: String,
}

async fn groups_page(
    state: &AppState,
    session: &Session,
    caller: Caller,
    status: StatusCode,
    cursor: Option<String>,
    message: Option<String>,
    entered: (String, String),
) -> Response {
    let query = PageQuery { limit: Some(PAGE), cursor };
    let listed = match groups::list_groups(State(state.clone()), caller, ApiQuery(query)).await {
        Ok(Json(listed)) => listed,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    page(
        status,
        &GroupsPage {
            title: "Groups",
            chrome: Chrome::of(session),
            csrf: session.csrf_token().to_string(),
            groups: listed.items,
            next: listed.next_cursor,
            message,
            name: entered.0,
            description: entered.1,
        },
    )
}

pub(super) async fn list_groups(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
    Gate { session, caller, .. }: Gate<Admins>,
) -> Response {
    groups_page(&state, &session, caller, StatusCode::OK, query.cursor, None, Default::default()).await
}

pub(super) async fn create_group(
    State(state): State<AppState>,
    Posted { session, caller, form, .. }: Posted<Admins>,
) -> Response {
    let body =
        CreateGroup { name: form.get("name").trim().to_string(), description: form.get("description").to_string() };
    let entered = (body.name.clone(), body.description.clone());
    match groups::create_group(State(state.clone()), caller.clone(), ApiJson(body)).await {
        Ok((_, Json(group))) => Redirect::to(&format!("{GROUPS}/{}", group.id)).into_response(),
        Err(error) => {
            let (status, text) = error.status_and_message();
            groups_page(&state, &session, caller, status, None, Some(text), entered).await
        }
    }
}

pub(super) async fn show_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Gate { session, caller, .. }: Gate<Admins>,
) -> Response {
    group_page(&state, &session, caller, &id, StatusCode::OK, None, String::new()).await
}

async fn group_page(
    state: &AppState,
    session: &Session,
    caller: Caller,
    id: &str,
    status: StatusCode,
    message: Option<String>,
    username: String,
) -> Response {
    let group = match groups::get_group(State(state.clone()), caller, ApiPath(id.to_string())).await {
        Ok(Json(group)) => group,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    page(
        status,
        &GroupPage {
            title: "Group",
            chrome: Chrome::of(session),
            csrf: session.csrf_token().to_string(),
            created: date_time(Some(group.created_at)),
            roles: role_lines(&group.roles, &[]),
            group,
            message,
            username,
        },
    )
}

fn back_to_group(session: &Session, id: &str, done: Result<(), ApiError>) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("{GROUPS}/{id}")).into_response(),
        Err(error) => error_page(&error, Chrome::of(session)),
    }
}

pub(super) async fn add_member(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, form, .. }: Posted<Admins>,
) -> Response {
    let username = form.get("username").trim().to_string();
    let user = match state.store.user_by_username(caller.realm_id, &username).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            let text = format!("Username: there is no user or service account called {username:?} in this realm.");
            return group_page(&state, &session, caller, &id, StatusCode::UNPROCESSABLE_ENTITY, Some(text), username)
                .await;
        }
        Err(error) => return error_page(&ApiError::from(error), Chrome::of(&session)),
    };
    let path = ApiPath((id.clone(), user.public_id));
    let done = groups::add_member(State(state.clone()), caller, path).await.map(drop);
    back_to_group(&session, &id, done)
}

pub(super) async fn remove_member(
    State(state): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
    Posted { session, caller, .. }: Posted<Admins>,
) -> Response {
    let done = groups::remove_member(State(state.clone()), caller, ApiPath((id.clone(), user_id))).await.map(drop);
    back_to_group(&session, &id, done)
}

pub(super) async fn group_role(
    State(state): State<AppState>,
    Path((id, role, action)): Path<(String, String, String)>,
    Posted { session, caller, .. }: Posted<Admins>,
) -> Response {
    let path = ApiPath((id.clone(), role));
    let done = match action.as_str() {
        "grant" => groups::grant_group_role(State(state.clone()), caller, path).await.map(drop),
        "revoke" => groups::revoke_group_role(State(state.clone()), caller, path).await.map(drop),
        _ => Err(ApiError::NotFound("page")),
    };
    back_to_group(&session, &id, done)
}

pub(super) async fn delete_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, .. }: Posted<Admins>,
) -> Response {
    match groups::delete_group(State(state.clone()), caller, ApiPath(id)).await {
        Ok(_) => Redirect::to(GROUPS).into_response(),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}
