//! Deployer > group permissions on an API service or an infrastructure: the list, a
//! grant form and a Remove button per group, on the resource's page.
//!
//! Each is the resource's own API handler (`set_permission`, `remove_permission`,
//! which use `api::grants`) called with the session as the caller: who may grant, which
//! privileges exist, the realm scoping and the audit events are the API's.

use super::deployer::infrastructure_page;
use super::deployer_services::service_page;
use super::{Anyone, Chrome, Posted, error_page};
use crate::api::groups;
use crate::api::{api_services, infrastructures};
use crate::authn::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use proto::PageQuery;
use proto::deployer::{Grant, SetGrant};

/// The privileges groups may be granted on an API service (owner is only its creator's).
pub(super) const SERVICE_PRIVILEGES: &[&str] = &["read", "write", "deploy", "admin"];
/// The privileges groups may be granted on an infrastructure.
pub(super) const INFRASTRUCTURE_PRIVILEGES: &[&str] = &["view", "deploy", "admin"];

/// The grant form as entered.
#[derive(Default)]
pub(super) struct GrantEntered {
    pub group: String,
    pub privilege: String,
}

pub(super) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// A resource's permissions section: its grants and the grant form.
pub(super) struct Permissions {
    /// Where the forms post: `…/permissions`.
    pub path: String,
    pub grants: Vec<Grant>,
    /// The realm's groups, for those who may list them (administrators); everyone else
    /// types a group's id.
    pub groups: Option<Vec<Choice>>,
    pub privileges: Vec<Choice>,
    pub group_entered: String,
}

impl Permissions {
    pub async fn load(
        state: &AppState,
        caller: &Caller,
        path: String,
        grants: Vec<Grant>,
        privileges: &[&'static str],
        entered: GrantEntered,
    ) -> Result<Permissions, ApiError> {
        let query = PageQuery { limit: Some(200), cursor: None };
        let groups = match groups::list_groups(State(state.clone()), caller.clone(), ApiQuery(query)).await {
            Ok(Json(listed)) => Some(
                listed
                    .items
                    .into_iter()
                    .map(|group| Choice { selected: group.id == entered.group, value: group.id, label: group.name })
                    .collect(),
            ),
            Err(ApiError::Forbidden(_)) => None,
            Err(error) => return Err(error),
        };
        let privileges = privileges
            .iter()
            .map(|privilege| Choice {
                value: privilege.to_string(),
                label: privilege.to_string(),
                selected: *privilege == entered.privilege,
            })
            .collect();
        Ok(Permissions { path, grants, groups, privileges, group_entered: entered.group })
    }
}

/// Which resource a permission form is about.
#[derive(Clone, Copy)]
enum Resource {
    Service,
    Infrastructure,
}

impl Resource {
    fn page_path(self, id: &str) -> String {
        match self {
            Resource::Service => format!("/deployer/services/{id}"),
            Resource::Infrastructure => format!("/deployer/infrastructures/{id}"),
        }
    }
}

async fn grant(state: AppState, posted: Posted<Anyone>, resource: Resource, id: String) -> Response {
    let Posted { session, caller, form, .. } = posted;
    let entered =
        GrantEntered { group: form.get("group").trim().to_string(), privilege: form.get("privilege").to_string() };
    let path = ApiPath((id.clone(), entered.group.clone()));
    let body = ApiJson(SetGrant { privilege: entered.privilege.clone() });
    let done = match resource {
        Resource::Service => api_services::set_permission(State(state.clone()), caller.clone(), path, body).await,
        Resource::Infrastructure => {
            infrastructures::set_permission(State(state.clone()), caller.clone(), path, body).await
        }
    };
    match done {
        Ok(_) => Redirect::to(&resource.page_path(&id)).into_response(),
        Err(error) => {
            let (status, text) = error.status_and_message();
            match resource {
                Resource::Service => {
                    service_page(&state, &session, &caller, &id, status, Some(text), entered.into()).await
                }
                Resource::Infrastructure => {
                    infrastructure_page(&state, &session, &caller, &id, status, Some(text), entered).await
                }
            }
        }
    }
}

async fn remove(state: AppState, posted: Posted<Anyone>, resource: Resource, id: String, group_id: String) -> Response {
    let Posted { session, caller, .. } = posted;
    let path = ApiPath((id.clone(), group_id));
    let done = match resource {
        Resource::Service => api_services::remove_permission(State(state.clone()), caller, path).await,
        Resource::Infrastructure => infrastructures::remove_permission(State(state.clone()), caller, path).await,
    };
    match done {
        Ok(_) => Redirect::to(&resource.page_path(&id)).into_response(),
        Err(error) => error_page(&error, Chrome::of(&session)),
    }
}

pub(super) async fn grant_on_service(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<Anyone>,
) -> Response {
    grant(state, posted, Resource::Service, id).await
}

pub(super) async fn grant_on_infrastructure(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<Anyone>,
) -> Response {
    grant(state, posted, Resource::Infrastructure, id).await
}

pub(super) async fn remove_on_service(
    State(state): State<AppState>,
    Path((id, group_id)): Path<(String, String)>,
    posted: Posted<Anyone>,
) -> Response {
    remove(state, posted, Resource::Service, id, group_id).await
}

pub(super) async fn remove_on_infrastructure(
    State(state): State<AppState>,
    Path((id, group_id)): Path<(String, String)>,
    posted: Posted<Anyone>,
) -> Response {
    remove(state, posted, Resource::Infrastructure, id, group_id).await
}
