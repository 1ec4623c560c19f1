//! `/account` (profile) and `/account/about`.

use super::{Anyone, Chrome, Gate, page};
use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

#[derive(Template)]
#[template(path = "account.html")]
struct ProfilePage {
    title: &'static str,
    chrome: Option<Chrome>,
    username: String,
    email: String,
    user_id: String,
    realm: String,
    session_expires: String,
}

pub(super) async fn profile(Gate { session, .. }: Gate<Anyone>) -> Response {
    let principal = &session.principal;
    page(
        StatusCode::OK,
        &ProfilePage {
            title: "Profile",
            chrome: Chrome::of(&session),
            username: principal.username.clone(),
            email: principal.email.clone(),
            user_id: principal.public_id.clone(),
            realm: session.realm.name.clone(),
            session_expires: super::api_keys::date_time(Some(session.expires_at)),
        },
    )
}

#[derive(Template)]
#[template(path = "about.html")]
struct AboutPage {
    title: &'static str,
    chrome: Option<Chrome>,
    version: &'static str,
}

pub(super) async fn about(Gate { session, .. }: Gate<Anyone>) -> Response {
    page(
        StatusCode::OK,
        &AboutPage { title: "About", chrome: Chrome::of(&session), version: env!("CARGO_PKG_VERSION") },
    )
}
