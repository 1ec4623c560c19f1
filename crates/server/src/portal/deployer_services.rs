//! Deployer > an API service (`/deployer/services/{id}`): its settings, versions, keys
//! and deployments, with forms to create a service, upload a version, deploy it, make a
//! key and change its authentication.
//!
//! The forms are shown to everyone who can read the service; the API's handlers, called
//! with the session as the caller, refuse those who may not (and say why), audit what
//! is done and feed the gateway. Auth settings here are API keys or none: JWT settings
//! (issuer, JWKS URL, audience, required claims) are set through the API.

use super::deployer::{
    DeploymentLine, KeyLine, NewService, OverviewForms, deployments_where, describe_auth, overview_page,
};
use super::deployer_deployments::key_created;
use super::deployer_permissions::{GrantEntered, Permissions, SERVICE_PRIVILEGES};
use super::{Anyone, Chrome, Gate, Posted, error_page, page};
use crate::api::deployment_keys as keys;
use crate::api::{api_services as api, deployments, infrastructures};
use crate::authn::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use proto::deployer::{
    ApiService, CreateApiService, CreateDeployment, CreateDeploymentKey, CreateVersion, DeploymentQuery, GatewayAuth,
    JwtAuth, UpdateApiService,
};

use super::api_keys::date_time;
use super::session::Session;

const SERVICES: &str = "/deployer/services";

/// The auth choices the forms offer, by their form value.
fn auth_choice(value: &str, field: &str) -> Result<GatewayAuth, String> {
    match value {
        "apiKeys" => Ok(GatewayAuth::ApiKeys),
        "none" => Ok(GatewayAuth::None),
        "service" => Ok(GatewayAuth::Service),
        _ => Err(format!("{field}: choose one of the listed settings.")),
    }
}

/// The service page's forms as entered, so a refused one comes back as it was.
#[derive(Default)]
pub(super) struct Entered {
    upstream: String,
    version_description: String,
    version_id: String,
    infrastructure: String,
    deployment_auth: String,
    key_name: String,
    auth: String,
    jwt: JwtEntered,
    grant: GrantEntered,
}

/// The JWT settings form as entered.
#[derive(Default)]
pub(super) struct JwtEntered {
    /// `realm` (a keyward realm) or `issuer` (an outside one).
    source: String,
    realm: String,
    issuer: String,
    jwks_url: String,
    audience: String,
    /// `name=value`, one a line.
    claims: String,
    /// Separated by commas or spaces; empty for the default set.
    algorithms: String,
}

impl JwtEntered {
    fn from_form(form: &super::Form) -> JwtEntered {
        let text = |name: &str| form.get(name).trim().to_string();
        JwtEntered {
            source: text("source"),
            realm: text("realm"),
            issuer: text("issuer"),
            jwks_url: text("jwks_url"),
            audience: text("audience"),
            claims: form.get("claims").to_string(),
            algorithms: text("algorithms"),
        }
    }

    /// The form showing `jwt`, the settings in force.
    fn of(jwt: &JwtAuth) -> JwtEntered {
        let claims = jwt.required_claims.iter().map(|(name, value)| match value {
            serde_json::Value::String(text) => format!("{name}={text}"),
            other => format!("{name}={other}"),
        });
        JwtEntered {
            source: if jwt.realm.is_some() { "realm" } else { "issuer" }.to_string(),
            realm: jwt.realm.clone().unwrap_or_default(),
            issuer: jwt.issuer.clone().unwrap_or_default(),
            jwks_url: jwt.jwks_url.clone().unwrap_or_default(),
            audience: jwt.audience.clone(),
            claims: claims.collect::<Vec<_>>().join("\n"),
            algorithms: jwt.algorithms.join(", "),
        }
    }

    /// The settings the API takes, or what to fix in the form. Whether the realm, issuer,
    /// URL, audience and algorithms are acceptable is the API's to say.
    fn settings(&self) -> Result<JwtAuth, String> {
        let mut required_claims = std::collections::BTreeMap::new();
        for line in self.claims.lines().map(str::trim).filter(|line| !line.is_empty()) {
            let Some((name, value)) = line.split_once('=') else {
                return Err(format!("Required claims: write each as name=value, one a line ({line:?} has no =)."));
            };
            required_claims.insert(name.trim().to_string(), serde_json::Value::String(value.trim().to_string()));
        }
        let algorithms = self
            .algorithms
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|algorithm| !algorithm.is_empty())
            .map(str::to_string)
            .collect();
        let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_string());
        let (realm, issuer, jwks_url) = match self.source.as_str() {
            "realm" => (non_empty(&self.realm), None, None),
            "issuer" => (None, non_empty(&self.issuer), non_empty(&self.jwks_url)),
            _ => return Err("Tokens from: choose a keyward realm or an outside issuer.".to_string()),
        };
        Ok(JwtAuth { realm, issuer, jwks_url, audience: self.audience.clone(), required_claims, algorithms })
    }
}

impl From<GrantEntered> for Entered {
    fn from(grant: GrantEntered) -> Self {
        Entered { grant, ..Entered::default() }
    }
}

struct VersionLine {
    id: String,
    number: i64,
    upstream: String,
    description: String,
    created: String,
    created_by: String,
}

#[derive(Template)]
#[template(path = "api_service.html")]
struct ServicePage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    service: ApiService,
    auth: String,
    takes_keys: bool,
    privilege: String,
    created: String,
    versions: Vec<VersionLine>,
    keys_path: String,
    keys: Vec<KeyLine>,
    /// Reveals here come back here (the deployment page's name a deployment).
    from_deployment: String,
    manage_keys: bool,
    deployments: Vec<DeploymentLine>,
    infrastructures: Vec<String>,
    message: Option<String>,
    entered: Entered,
    permissions: Permissions,
}

/// The service's page, with `message` (and the forms as entered) after a refused form.
pub(super) async fn service_page(
    state: &AppState,
    session: &Session,
    caller: &Caller,
    id: &str,
    status: StatusCode,
    message: Option<String>,
    mut entered: Entered,
) -> Response {
    let loaded = async {
        let Json(service) = api::get_one(State(state.clone()), caller.clone(), ApiPath(id.to_string())).await?;
        let path = || ApiPath(service.id.clone());
        let Json(versions) = api::list_versions(State(state.clone()), caller.clone(), path()).await?;
        let Json(listed) = keys::list_service_keys(State(state.clone()), caller.clone(), path()).await?;
        let query = DeploymentQuery { service_id: Some(service.id.clone()), infrastructure_id: None };
        let deployments = deployments_where(state, caller, query).await?;
        let Json(infrastructures) = infrastructures::list(State(state.clone()), caller.clone()).await?;
        let Json(grants) = api::list_permissions(State(state.clone()), caller.clone(), path()).await?;
        let permissions_path = format!("{SERVICES}/{}/permissions", service.id);
        let grant = std::mem::take(&mut entered.grant);
        let permissions = Permissions::load(state, caller, permissions_path, grants, SERVICE_PRIVILEGES, grant).await?;
        Ok::<_, ApiError>((service, versions, listed, deployments, infrastructures, permissions))
    }
    .await;
    let (service, versions, listed, deployments, infrastructures, permissions) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    if entered.auth.is_empty() {
        entered.auth = if service.auth == GatewayAuth::None { "none" } else { "apiKeys" }.to_string();
    }
    if entered.jwt.source.is_empty() {
        entered.jwt = match &service.auth {
            GatewayAuth::Jwt(jwt) => JwtEntered::of(jwt),
            _ => JwtEntered { source: "realm".to_string(), realm: session.realm.name.clone(), ..JwtEntered::default() },
        };
    }
    page(
        status,
        &ServicePage {
            title: "API service",
            chrome: Chrome::of(session),
            csrf: session.csrf_token().to_string(),
            auth: describe_auth(&service.auth),
            takes_keys: service.auth == GatewayAuth::ApiKeys,
            privilege: service.my_privilege.clone().unwrap_or_else(|| "none".to_string()),
            created: date_time(Some(service.created_at)),
            // Newest first: the version to deploy is usually the latest.
            versions: versions
                .into_iter()
                .rev()
                .map(|version| VersionLine {
                    id: version.id,
                    number: version.number,
                    upstream: version.upstream,
                    description: version.description,
                    created: date_time(Some(version.created_at)),
                    created_by: version.created_by,
                })
                .collect(),
            keys_path: format!("{SERVICES}/{}/keys", service.id),
            keys: listed.into_iter().map(KeyLine::from).collect(),
            from_deployment: String::new(),
            manage_keys: true,
            deployments,
            infrastructures: infrastructures.into_iter().map(|infrastructure| infrastructure.name).collect(),
            message,
            entered,
            permissions,
            service,
        },
    )
}

pub(super) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Gate { session, caller, .. }: Gate<Anyone>,
) -> Response {
    service_page(&state, &session, &caller, &id, StatusCode::OK, None, Entered::default()).await
}

/// The answer to a service-page form the API refused: the page with its status and
/// message, and the form as entered.
async fn refused(
    state: &AppState,
    session: &Session,
    caller: &Caller,
    id: &str,
    error: ApiError,
    entered: Entered,
) -> Response {
    let (status, text) = error.status_and_message();
    service_page(state, session, caller, id, status, Some(text), entered).await
}

pub(super) async fn create(
    State(state): State<AppState>,
    Posted { session, caller, form, .. }: Posted<Anyone>,
) -> Response {
    let entered = NewService {
        name: form.get("name").trim().to_string(),
        description: form.get("description").trim().to_string(),
        auth: form.get("auth").to_string(),
    };
    let auth = match auth_choice(&entered.auth, "Authentication") {
        Ok(GatewayAuth::Service) | Err(_) => {
            let text = "Authentication: choose API keys or none.".to_string();
            let entered = OverviewForms { service: entered, ..OverviewForms::default() };
            return overview_page(&state, &session, &caller, StatusCode::UNPROCESSABLE_ENTITY, Some(text), entered)
                .await;
        }
        Ok(auth) => auth,
    };
    let body =
        CreateApiService { name: entered.name.clone(), description: entered.description.clone(), auth: Some(auth) };
    match api::create(State(state.clone()), caller.clone(), ApiJson(body)).await {
        Ok((_, Json(service))) => Redirect::to(&format!("{SERVICES}/{}", service.id)).into_response(),
        Err(error) => {
            let (status, text) = error.status_and_message();
            let entered = OverviewForms { service: entered, ..OverviewForms::default() };
            overview_page(&state, &session, &caller, status, Some(text), entered).await
        }
    }
}

pub(super) async fn create_version(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, form, .. }: Posted<Anyone>,
) -> Response {
    let entered = Entered {
        upstream: form.get("upstream").trim().to_string(),
        version_description: form.get("description").trim().to_string(),
        ..Entered::default()
    };
    let body = CreateVersion { upstream: entered.upstream.clone(), description: entered.version_description.clone() };
    match api::create_version(State(state.clone()), caller.clone(), ApiPath(id.clone()), ApiJson(body)).await {
        Ok(_) => Redirect::to(&format!("{SERVICES}/{id}")).into_response(),
        Err(error) => refused(&state, &session, &caller, &id, error, entered).await,
    }
}

pub(super) async fn create_deployment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, form, .. }: Posted<Anyone>,
) -> Response {
    let entered = Entered {
        version_id: form.get("version").to_string(),
        infrastructure: form.get("infrastructure").trim().to_string(),
        deployment_auth: form.get("auth").to_string(),
        ..Entered::default()
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let auth = match auth_choice(&entered.deployment_auth, "Authentication") {
        Ok(auth) => auth,
        Err(text) => return service_page(&state, &session, &caller, &id, unprocessable, Some(text), entered).await,
    };
    // The infrastructure is chosen by name, among those the caller can view.
    let found = match infrastructures::list(State(state.clone()), caller.clone()).await {
        Ok(Json(listed)) => listed.into_iter().find(|infrastructure| infrastructure.name == entered.infrastructure),
        Err(error) => return error_page(&error, Chrome::of(&session)),
    };
    let Some(infrastructure) = found else {
        let text = format!(
            "Infrastructure: there is no infrastructure called {} that you can view; choose one from the list.",
            entered.infrastructure
        );
        return service_page(&state, &session, &caller, &id, unprocessable, Some(text), entered).await;
    };
    let body = CreateDeployment {
        service_id: id.clone(),
        infrastructure_id: infrastructure.id,
        version_id: entered.version_id.clone(),
        enabled: None,
        auth: Some(auth),
    };
    match deployments::create(State(state.clone()), caller.clone(), ApiJson(body)).await {
        Ok((_, Json(deployment))) => Redirect::to(&format!("/deployer/deployments/{}", deployment.id)).into_response(),
        Err(error) => refused(&state, &session, &caller, &id, error, entered).await,
    }
}

pub(super) async fn update_auth(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, form, .. }: Posted<Anyone>,
) -> Response {
    let entered = Entered { auth: form.get("auth").to_string(), ..Entered::default() };
    let auth = match auth_choice(&entered.auth, "Authentication") {
        Ok(GatewayAuth::Service) | Err(_) => {
            let text = "Authentication: choose API keys or none.".to_string();
            return service_page(&state, &session, &caller, &id, StatusCode::UNPROCESSABLE_ENTITY, Some(text), entered)
                .await;
        }
        Ok(auth) => auth,
    };
    let body = UpdateApiService { description: None, auth: Some(auth) };
    match api::update(State(state.clone()), caller.clone(), ApiPath(id.clone()), ApiJson(body)).await {
        Ok(_) => Redirect::to(&format!("{SERVICES}/{id}")).into_response(),
        Err(error) => refused(&state, &session, &caller, &id, error, entered).await,
    }
}

/// JWT settings for the service: a keyward realm's access tokens or an outside issuer's,
/// with an audience, required claims and algorithms.
pub(super) async fn update_jwt(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, form, .. }: Posted<Anyone>,
) -> Response {
    let jwt = JwtEntered::from_form(&form);
    let settings = jwt.settings();
    let entered = Entered { jwt, ..Entered::default() };
    let settings = match settings {
        Ok(settings) => settings,
        Err(text) => {
            return service_page(&state, &session, &caller, &id, StatusCode::UNPROCESSABLE_ENTITY, Some(text), entered)
                .await;
        }
    };
    let body = UpdateApiService { description: None, auth: Some(GatewayAuth::Jwt(settings)) };
    match api::update(State(state.clone()), caller.clone(), ApiPath(id.clone()), ApiJson(body)).await {
        Ok(_) => Redirect::to(&format!("{SERVICES}/{id}")).into_response(),
        Err(error) => refused(&state, &session, &caller, &id, error, entered).await,
    }
}

pub(super) async fn create_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, caller, form, .. }: Posted<Anyone>,
) -> Response {
    let entered = Entered { key_name: form.get("name").trim().to_string(), ..Entered::default() };
    let body = CreateDeploymentKey { name: entered.key_name.clone() };
    match keys::create_service_key(State(state.clone()), caller.clone(), ApiPath(id.clone()), ApiJson(body)).await {
        Ok((_, Json(created))) => key_created(&session, created, format!("{SERVICES}/{id}")),
        Err(error) => refused(&state, &session, &caller, &id, error, entered).await,
    }
}

/// Deletes one of the service's keys.
pub(super) async fn delete_key(
    State(state): State<AppState>,
    Path((id, key_id)): Path<(String, String)>,
    Posted { session, caller, .. }: Posted<Anyone>,
) -> Response {
    match keys::delete_service_key(State(state.clone()), caller, ApiPath((id.clone(), key_id))).await {
        Ok(_) => Redirect::to(&format!("{SERVICES}/{id}")).into_response(),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}
