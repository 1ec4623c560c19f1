//! Deployer (`/deployer`): the infrastructures, API services and deployments a person
//! may see, and an infrastructure's page. Every logged-in person has these pages; what
//! they show is what the API's list and get handlers answer for them.
//!
//! As on the other pages, every read and action is the API's own handler
//! (`api::infrastructures`, `api::api_services`, `api::deployments`,
//! `api::deployment_keys`) called with the session as the caller: the View/Read/Deploy
//! rules, the realm scoping (another realm's id is 404), the audit events and the
//! change feed are the API's. The deployment and service pages are in
//! `deployer_deployments` and `deployer_services`.

use super::{Anyone, Chrome, Gate, Posted, error_page, page};
use crate::api::{api_services, deployments, infrastructures};
use crate::authn::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use keyward_core::Role;
use proto::deployer::{
    ApiService, CreateInfrastructure, Deployment, DeploymentKey, DeploymentQuery, GatewayAuth, Infrastructure,
};

use super::api_keys::date_time;
use super::deployer_permissions::{GrantEntered, INFRASTRUCTURE_PRIVILEGES, Permissions};
use super::session::Session;

/// Auth settings in words.
pub(super) fn describe_auth(auth: &GatewayAuth) -> String {
    match auth {
        GatewayAuth::ApiKeys => "API keys (kwd_…)".to_string(),
        GatewayAuth::Jwt(jwt) => {
            let from = match (&jwt.realm, &jwt.issuer) {
                (Some(realm), _) => format!("the keyward realm {realm}"),
                (None, Some(issuer)) => format!("the issuer {issuer}"),
                (None, None) => "an issuer".to_string(),
            };
            format!("JWT access tokens from {from} for the audience {}", jwt.audience)
        }
        GatewayAuth::None => "none: public, anyone may call it".to_string(),
        GatewayAuth::Service => "the API service's settings".to_string(),
    }
}

/// The gateway URL as shown: with the trailing slash every path under it starts from.
fn gateway_path(url: &str) -> String {
    format!("{url}/")
}

pub(super) struct InfrastructureLine {
    pub id: String,
    pub name: String,
    pub description: String,
    pub privilege: String,
}

impl From<Infrastructure> for InfrastructureLine {
    fn from(infrastructure: Infrastructure) -> Self {
        InfrastructureLine {
            id: infrastructure.id,
            name: infrastructure.name,
            description: infrastructure.description,
            privilege: infrastructure.my_privilege.unwrap_or_else(|| "none".to_string()),
        }
    }
}

pub(super) struct ServiceLine {
    pub id: String,
    pub name: String,
    pub description: String,
    pub auth: String,
    pub privilege: String,
}

impl From<ApiService> for ServiceLine {
    fn from(service: ApiService) -> Self {
        ServiceLine {
            auth: describe_auth(&service.auth),
            id: service.id,
            name: service.name,
            description: service.description,
            privilege: service.my_privilege.unwrap_or_else(|| "none".to_string()),
        }
    }
}

pub(super) struct DeploymentLine {
    pub id: String,
    pub service_id: String,
    pub service_name: String,
    pub infrastructure_id: String,
    pub infrastructure_name: String,
    pub version_number: i64,
    pub enabled: bool,
    pub url: String,
}

impl From<Deployment> for DeploymentLine {
    fn from(deployment: Deployment) -> Self {
        DeploymentLine {
            url: gateway_path(&deployment.url),
            id: deployment.id,
            service_id: deployment.service_id,
            service_name: deployment.service_name,
            infrastructure_id: deployment.infrastructure_id,
            infrastructure_name: deployment.infrastructure_name,
            version_number: deployment.version_number,
            enabled: deployment.enabled,
        }
    }
}

/// A key as listed: never its secret.
pub(super) struct KeyLine {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub created_by: String,
    pub last_used: String,
}

impl From<DeploymentKey> for KeyLine {
    fn from(key: DeploymentKey) -> Self {
        KeyLine {
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            created: date_time(Some(key.created_at)),
            created_by: key.created_by,
            last_used: date_time(key.last_used_at),
        }
    }
}

/// The deployments the caller may read, as the API lists them.
pub(super) async fn deployments_where(
    state: &AppState,
    caller: &Caller,
    query: DeploymentQuery,
) -> Result<Vec<DeploymentLine>, ApiError> {
    let Json(listed) = deployments::list(State(state.clone()), caller.clone(), ApiQuery(query)).await?;
    Ok(listed.into_iter().map(DeploymentLine::from).collect())
}

/// The create-service form as entered.
#[derive(Default)]
pub(super) struct NewService {
    pub name: String,
    pub description: String,
    pub auth: String,
}

/// The create-infrastructure form as entered.
#[derive(Default)]
pub(super) struct NewInfrastructure {
    pub name: String,
    pub description: String,
    /// One entry a line.
    pub allowed_upstreams: String,
}

/// The overview's forms as entered.
#[derive(Default)]
pub(super) struct OverviewForms {
    pub service: NewService,
    pub infrastructure: NewInfrastructure,
}

#[derive(Template)]
#[template(path = "deployer.html")]
struct OverviewPage {
    title: &'static str,
    chrome: Option<Chrome>,
    infrastructures: Vec<InfrastructureLine>,
    services: Vec<ServiceLine>,
    deployments: Vec<DeploymentLine>,
    csrf: String,
    creates_services: bool,
    creates_infrastructures: bool,
    message: Option<String>,
    entered: OverviewForms,
}

/// The overview, with `message` (and the create-service form as entered) after a
/// refused form.
pub(super) async fn overview_page(
    state: &AppState,
    session: &Session,
    caller: &Caller,
    status: StatusCode,
    message: Option<String>,
    entered: OverviewForms,
) -> Response {
    let loaded = async {
        let Json(infrastructures) = infrastructures::list(State(state.clone()), caller.clone()).await?;
        let Json(services) = api_services::list(State(state.clone()), caller.clone()).await?;
        let deployments = deployments_where(state, caller, DeploymentQuery::default()).await?;
        Ok::<_, ApiError>((infrastructures, services, deployments))
    }
    .await;
    let (infrastructures, services, deployments) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    page(
        status,
        &OverviewPage {
            title: "API services",
            chrome: Chrome::of(session),
            infrastructures: infrastructures.into_iter().map(InfrastructureLine::from).collect(),
            services: services.into_iter().map(ServiceLine::from).collect(),
            deployments,
            csrf: session.csrf_token().to_string(),
            // Showing the form is a courtesy; the API decides who may create.
            creates_services: caller.has_role(Role::CreateApiService) || caller.has_role(Role::Admin),
            creates_infrastructures: caller.has_role(Role::Admin),
            message,
            entered,
        },
    )
}

pub(super) async fn overview(State(state): State<AppState>, Gate { session, caller, .. }: Gate<Anyone>) -> Response {
    overview_page(&state, &session, &caller, StatusCode::OK, None, OverviewForms::default()).await
}

#[derive(Template)]
#[template(path = "infrastructure.html")]
struct InfrastructurePage {
    title: &'static str,
    chrome: Option<Chrome>,
    csrf: String,
    infrastructure: InfrastructureLine,
    allowed_upstreams: Vec<String>,
    created: String,
    created_by: String,
    deployments: Vec<DeploymentLine>,
    message: Option<String>,
    permissions: Permissions,
}

/// An infrastructure's page, with `message` (and the grant form as entered) after a
/// refused form.
pub(super) async fn infrastructure_page(
    state: &AppState,
    session: &Session,
    caller: &Caller,
    id: &str,
    status: StatusCode,
    message: Option<String>,
    grant: GrantEntered,
) -> Response {
    let loaded = async {
        let path = || ApiPath(id.to_string());
        let Json(infrastructure) = infrastructures::get_one(State(state.clone()), caller.clone(), path()).await?;
        let query = DeploymentQuery { service_id: None, infrastructure_id: Some(infrastructure.id.clone()) };
        let deployments = deployments_where(state, caller, query).await?;
        let Json(grants) = infrastructures::list_permissions(State(state.clone()), caller.clone(), path()).await?;
        let permissions_path = format!("/deployer/infrastructures/{}/permissions", infrastructure.id);
        let permissions =
            Permissions::load(state, caller, permissions_path, grants, INFRASTRUCTURE_PRIVILEGES, grant).await?;
        Ok::<_, ApiError>((infrastructure, deployments, permissions))
    }
    .await;
    let (infrastructure, deployments, permissions) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(&error, Chrome::of(session)),
    };
    page(
        status,
        &InfrastructurePage {
            title: "Infrastructure",
            chrome: Chrome::of(session),
            csrf: session.csrf_token().to_string(),
            allowed_upstreams: infrastructure.allowed_upstreams.clone(),
            created: date_time(Some(infrastructure.created_at)),
            created_by: infrastructure.created_by.clone(),
            infrastructure: InfrastructureLine::from(infrastructure),
            deployments,
            message,
            permissions,
        },
    )
}

pub(super) async fn show_infrastructure(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Gate { session, caller, .. }: Gate<Anyone>,
) -> Response {
    infrastructure_page(&state, &session, &caller, &id, StatusCode::OK, None, GrantEntered::default()).await
}

pub(super) async fn create_infrastructure(
    State(state): State<AppState>,
    Posted { session, caller, form, .. }: Posted<Anyone>,
) -> Response {
    let entered = NewInfrastructure {
        name: form.get("name").trim().to_string(),
        description: form.get("description").trim().to_string(),
        allowed_upstreams: form.get("allowed_upstreams").to_string(),
    };
    let body = CreateInfrastructure {
        name: entered.name.clone(),
        description: entered.description.clone(),
        allowed_upstreams: entered
            .allowed_upstreams
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect(),
    };
    match infrastructures::create(State(state.clone()), caller.clone(), ApiJson(body)).await {
        Ok((_, Json(infrastructure))) => {
            Redirect::to(&format!("/deployer/infrastructures/{}", infrastructure.id)).into_response()
        }
        Err(error) => {
            let (status, text) = error.status_and_message();
            let entered = OverviewForms { infrastructure: entered, ..OverviewForms::default() };
            overview_page(&state, &session, &caller, status, Some(text), entered).await
        }
    }
}
