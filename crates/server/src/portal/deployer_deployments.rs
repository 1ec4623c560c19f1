//! Deployer > a deployment (`/deployer/deployments/{id}`): what it runs where, its
//! effective auth, how to call it, its keys (revealed one at a time, audited), and
//! Enable / Disable for those who may.
//!
//! Each read and action is the API's own handler with the session as the caller. A
//! key's secret reaches a page only as the answer to its own POST (the API's reveal,
//! which is audited), behind the Copy button; list and detail pages never hold one.

use super::deployer::{KeyLine, describe_auth};
use super::{Anyone, Chrome, Gate, Posted, error_page, page};
use crate::api::deployment_keys as keys;
use crate::api::deployments as api;
use crate::authn::Caller;
use crate::deployer::Standing;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keyward_core::deployer::DeploymentAction;
use proto::deployer::{CreateDeploymentKey, Deployment, GatewayAuth, RevealedDeploymentKey};

use super::api_keys::date_time;
use super::session::Session;

const DEPLOYMENTS: &str = "/deployer/deployments";

/// Whose keys open a deployment, and where their reveal forms post.
enum KeysOf {
    /// The service's settings apply: the service's keys.
    Service,
    /// Its own API-key settings: its own keys.
    Deployment,
    /// JWT or none: no keys.
    Nobody,
}

#[derive(Template)]
#[template(path = "deployment.html")]
struct DeploymentPage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    deployment: Deployment,
    url: String,
    auth: String,
    effective_auth: String,
    created: String,
    updated: String,
    may_switch: bool,
    /// A sample that holds no key, shown as text (JWT or public deployments).
    sample: Option<String>,
    /// Where the keys' reveal forms post (`…/keys`), or empty when no keys apply.
    keys_path: String,
    keys_of_service: bool,
    keys: Vec<KeyLine>,
    /// The deployment a service key's reveal comes back to.
    from_deployment: String,
    /// Whether the page offers to create and delete keys: its own keys only (the
    /// service's are managed on the service's page).
    manage_keys: bool,
    message: Option<String>,
    key_name: String,
}

/// Text with every `kwd_` key in it replaced by `$KEY`: what a page may show of a sample.
fn without_keys(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("kwd_") {
        shown.push_str(&rest[..at]);
        shown.push_str("$KEY");
        let key = &rest[at..];
        let end = key.find(|c: char| c == '\'' || c == '"' || c.is_whitespace()).unwrap_or(key.len());
        rest = &key[end..];
    }
    shown.push_str(rest);
    shown
}

fn keys_of(deployment: &Deployment) -> KeysOf {
    match (&deployment.auth, &deployment.effective_auth) {
        (GatewayAuth::Service, GatewayAuth::ApiKeys) => KeysOf::Service,
        (GatewayAuth::ApiKeys, _) => KeysOf::Deployment,
        _ => KeysOf::Nobody,
    }
}

/// The deployment's page, with `message` (and the key form as entered) after a refused
/// form.
async fn deployment_page(
    state: &AppState,
    session: &Session,
    caller: &Caller,
    id: &str,
    status: StatusCode,
    message: Option<String>,
    key_name: String,
) -> Response {
    let loaded = async {
        let Json(deployment) = api::get_one(State(state.clone()), caller.clone(), ApiPath(id.to_string())).await?;
        let (keys_path, listed) = match keys_of(&deployment) {
            KeysOf::Service => {
                let path = ApiPath(deployment.service_id.clone());
                let Json(listed) = keys::list_service_keys(State(state.clone()), caller.clone(), path).await?;
                (format!("/deployer/services/{}/keys", deployment.service_id), listed)
            }
            KeysOf::Deployment => {
                let path = ApiPath(deployment.id.clone());
                let Json(listed) = keys::list_deployment_keys(State(state.clone()), caller.clone(), path).await?;
                (format!("{DEPLOYMENTS}/{}/keys", deployment.id), listed)
            }
            KeysOf::Nobody => (String::new(), Vec::new()),
        };
        // The API's sample reveals a key (audited) when API keys apply: that happens
        // only on its own button, never on a page view. Otherwise the sample is made from
        // the deployment as read above, so a page view never reveals a key even if its
        // auth changes meanwhile.
        let sample = match (keys_of(&deployment), &deployment.effective_auth) {
            (KeysOf::Nobody, GatewayAuth::Jwt(_)) => {
                Some(keys::sample_curl(&deployment.url, Some("Authorization: Bearer $ACCESS_TOKEN")))
            }
            (KeysOf::Nobody, _) => Some(keys::sample_curl(&deployment.url, None)),
            (KeysOf::Service | KeysOf::Deployment, _) => None,
        };
        // Whether the switch is theirs is the API's decision, asked without acting.
        let standing = Standing::of(state, caller).await?;
        let action = if deployment.enabled { DeploymentAction::Disable } else { DeploymentAction::Enable };
        let may_switch = api::load_deployment(state, caller, &standing, id, action).await.is_ok();
        Ok::<_, ApiError>((deployment, keys_path, listed, sample, may_switch))
    }
    .await;
    let (deployment, keys_path, listed, sample, may_switch) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    page(
        status,
        &DeploymentPage {
            title: "Deployment",
            chrome: Chrome::of(session),
            csrf: session.csrf_token().to_string(),
            url: format!("{}/", deployment.url),
            auth: describe_auth(&deployment.auth),
            effective_auth: describe_auth(&deployment.effective_auth),
            created: date_time(Some(deployment.created_at)),
            updated: date_time(Some(deployment.updated_at)),
            may_switch,
            sample,
            keys_of_service: matches!(keys_of(&deployment), KeysOf::Service),
            keys_path,
            keys: listed.into_iter().map(KeyLine::from).collect(),
            from_deployment: deployment.id.clone(),
            manage_keys: matches!(keys_of(&deployment), KeysOf::Deployment),
            message,
            key_name,
            deployment,
        },
    )
}

pub(super) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Gate { session, caller, .. }: Gate<Anyone>,
) -> Response {
    deployment_page(&state, &session, &caller, &id, StatusCode::OK, None, String::new()).await
}

/// Makes a key of the deployment's own; its secret is shown on the answer, behind Copy.
pub(super) async fn create_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, form, .. }: Posted<Anyone>,
) -> Response {
    let name = form.get("name").trim().to_string();
    let body = CreateDeploymentKey { name: name.clone() };
    match keys::create_deployment_key(State(state.clone()), caller.clone(), ApiPath(id.clone()), ApiJson(body)).await {
        Ok((_, Json(created))) => key_created(&session, created, format!("{DEPLOYMENTS}/{id}")),
        Err(error) => {
            let (status, text) = error.status_and_message();
            deployment_page(&state, &session, &caller, &id, status, Some(text), name).await
        }
    }
}

/// Deletes a key of the deployment's own.
pub(super) async fn delete_key(
    State(state): State<AppState>,
    Path((id, key_id)): Path<(String, String)>,
    Posted { session, caller, .. }: Posted<Anyone>,
) -> Response {
    match keys::delete_deployment_key(State(state.clone()), caller, ApiPath((id.clone(), key_id))).await {
        Ok(_) => Redirect::to(&format!("{DEPLOYMENTS}/{id}")).into_response(),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}

async fn switch(state: AppState, posted: Posted<Anyone>, id: String, enabled: bool) -> Response {
    let Posted { session, caller, .. } = posted;
    let path = ApiPath(id);
    let done = if enabled {
        api::enable(State(state.clone()), caller, path).await
    } else {
        api::disable(State(state.clone()), caller, path).await
    };
    match done {
        Ok(Json(deployment)) => Redirect::to(&format!("{DEPLOYMENTS}/{}", deployment.id)).into_response(),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}

pub(super) async fn enable(State(state): State<AppState>, Path(id): Path<String>, posted: Posted<Anyone>) -> Response {
    switch(state, posted, id, true).await
}

pub(super) async fn disable(State(state): State<AppState>, Path(id): Path<String>, posted: Posted<Anyone>) -> Response {
    switch(state, posted, id, false).await
}

/// A secret shown again on request: a revealed key, or a sample call holding one.
#[derive(Template)]
#[template(path = "secret_revealed.html")]
pub(super) struct RevealedPage {
    pub title: &'static str,
    pub chrome: Option<Chrome>,
    pub summary: String,
    /// What may be shown of it as text (a sample without its key), or empty.
    pub shown: String,
    pub copy_label: &'static str,
    pub secret: String,
    pub back: String,
}

/// The page for a key just made: the secret behind Copy.
pub(super) fn key_created(session: &Session, created: RevealedDeploymentKey, back: String) -> Response {
    page(
        StatusCode::CREATED,
        &RevealedPage {
            title: "API key created",
            chrome: Chrome::of(session),
            summary: format!(
                "The key {} ({}…) was created. Those who may read it can reveal it again, on the audit record.",
                created.key.name, created.key.prefix
            ),
            shown: String::new(),
            copy_label: "Copy key",
            secret: created.secret,
            back,
        },
    )
}

/// The page for a key the API revealed.
fn revealed_key(session: &Session, revealed: RevealedDeploymentKey, back: String) -> Response {
    page(
        StatusCode::OK,
        &RevealedPage {
            title: "API key revealed",
            chrome: Chrome::of(session),
            summary: format!(
                "The key {} ({}…) was revealed to you; the audit log records it.",
                revealed.key.name, revealed.key.prefix
            ),
            shown: String::new(),
            copy_label: "Copy key",
            secret: revealed.secret,
            back,
        },
    )
}

/// Reveals one of a deployment's own keys.
pub(super) async fn reveal_key(
    State(state): State<AppState>,
    Path((id, key_id)): Path<(String, String)>,
    Posted { session, caller, .. }: Posted<Anyone>,
) -> Response {
    let back = format!("{DEPLOYMENTS}/{id}");
    match keys::reveal_deployment_key(State(state.clone()), caller, ApiPath((id, key_id))).await {
        Ok(Json(revealed)) => revealed_key(&session, revealed, back),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}

/// Reveals one of a service's keys: from its page, or a deployment's that takes them.
pub(super) async fn reveal_service_key(
    State(state): State<AppState>,
    Path((id, key_id)): Path<(String, String)>,
    Posted { session, caller, form, .. }: Posted<Anyone>,
) -> Response {
    // The deployment page's forms say where they came from; the way back is built
    // here, from an id only.
    let from = form.get("deployment");
    let back = if !from.is_empty() && from.chars().all(|c| c.is_ascii_alphanumeric()) {
        format!("{DEPLOYMENTS}/{from}")
    } else {
        format!("/deployer/services/{id}")
    };
    match keys::reveal_service_key(State(state.clone()), caller, ApiPath((id, key_id))).await {
        Ok(Json(revealed)) => revealed_key(&session, revealed, back),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}

/// The API's sample call with the first key (a reveal, audited), behind Copy.
pub(super) async fn sample(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, .. }: Posted<Anyone>,
) -> Response {
    let Json(sample) = match keys::deployment_sample(State(state.clone()), caller, ApiPath(id.clone())).await {
        Ok(sample) => sample,
        Err(error) => return error_page(&error, Chrome::of(&session)),
    };
    let summary = if sample.key_id.is_some() {
        "A sample call with the deployment's first key, revealed to you; the audit log records it. The command \
         below shows $KEY in its place."
    } else {
        "A sample call. No key opens this deployment yet: create one, and put it in place of KEY."
    };
    page(
        StatusCode::OK,
        &RevealedPage {
            title: "Sample call",
            chrome: Chrome::of(&session),
            summary: summary.to_string(),
            shown: without_keys(&sample.curl),
            copy_label: "Copy command",
            secret: sample.curl,
            back: format!("{DEPLOYMENTS}/{id}"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::without_keys;

    #[test]
    fn a_sample_is_shown_without_its_key() {
        let curl =
            "curl -X POST --header 'Authorization: Bearer kwd_abc_DEF-123' http://h/public/dev/churn --data '{}'";
        assert_eq!(
            without_keys(curl),
            "curl -X POST --header 'Authorization: Bearer $KEY' http://h/public/dev/churn --data '{}'"
        );
        assert_eq!(without_keys("kwd_x"), "$KEY");
        assert_eq!(without_keys("no key"), "no key");
    }
}
