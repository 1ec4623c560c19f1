//! Projects and their collaborators. Any identified caller may create a project and
//! becomes its owner; everything else depends on the caller's role on the project
//! (`keyward_core::projects`). A project the caller cannot see answers 404 on every
//! route, exactly as an unknown or malformed id does.

use crate::api::users::load_user;
use crate::api::{audit_event, commit, decode_cursor, new_public_id, next_cursor, page_limit, parse_id};
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::projects::removes_last_owner;
use keyward_core::{ProjectAccess, ProjectAction, ProjectRole, PublicId, Role, validate};
use proto::{Collaborator, CreateProject, Page, PageQuery, Project, SetCollaborator};
use store::{CollaboratorRow, NewProject, ProjectQuery, ProjectRow, ProjectWithRole, StoreError, UserRow};
use time::OffsetDateTime;

fn project_dto(project: ProjectRow, my_role: Option<ProjectRole>) -> Project {
    Project {
        id: project.public_id,
        name: project.name,
        description: project.description,
        my_role: my_role.map(|role| role.as_str().to_string()),
        created_at: project.created_at,
    }
}

fn collaborator_dto(row: CollaboratorRow) -> Collaborator {
    Collaborator {
        user_id: row.user_public_id,
        username: row.username,
        kind: row.kind,
        role: row.role.as_str().to_string(),
        added_at: row.added_at,
    }
}

/// The caller's standing on a project, from their collaborator role and realm roles.
fn access_of(caller: &Caller, role: Option<ProjectRole>) -> ProjectAccess {
    ProjectAccess { role, realm_admin: caller.has_role(Role::Admin) }
}

/// Loads a project of the caller's realm that the caller may see, with their standing
/// on it. Malformed, unknown, other realms' and invisible ids all answer the same 404.
pub async fn load_project(state: &AppState, caller: &Caller, id: &str) -> ApiResult<(ProjectRow, ProjectAccess)> {
    let id = parse_id(id, "project")?;
    let user_id = caller.principal.as_ref().map(|principal| principal.id);
    let found = state.store.project_by_public_id(caller.realm_id, id.as_str(), user_id).await;
    let ProjectWithRole { project, role } = found.map_err(crate::error::not_found("project"))?;
    let access = access_of(caller, role);
    if !access.can_see() {
        return Err(ApiError::NotFound("project"));
    }
    Ok((project, access))
}

/// Refuses a caller who can see the project but holds too small a role for `action`.
fn require(access: ProjectAccess, action: ProjectAction) -> ApiResult<()> {
    if access.allows(action) {
        return Ok(());
    }
    let needed = action.required_role().as_str();
    let held = access.role.map_or("no role", ProjectRole::as_str);
    Err(ApiError::Forbidden(format!(
        "This needs the {needed} role on the project (or the admin role); you are a {held} here. \
         Ask one of its owners."
    )))
}

/// [`require`] with the caller's role read again inside `mutation`: a role another
/// change took away before this one began is not used, so a demoted owner's requests
/// already on their way change nothing (mutations run one at a time).
async fn require_in_mutation(
    mutation: &mut store::Mutation,
    caller: &Caller,
    project_id: i64,
    action: ProjectAction,
) -> ApiResult<()> {
    let role = match &caller.principal {
        Some(principal) => mutation.collaborator_role(project_id, principal.id).await?,
        None => None,
    };
    let access = access_of(caller, role);
    // Removed from the project, or the project deleted, meanwhile: it is not theirs to
    // see any more, and answers as any project they cannot see does.
    if !access.can_see() {
        return Err(ApiError::NotFound("project"));
    }
    require(access, action)
}

/// Parses a collaborator role from a request body.
fn parse_project_role(name: &str) -> ApiResult<ProjectRole> {
    ProjectRole::parse(name).ok_or_else(|| ApiError::invalid("role", "must be one of owner, contributor, viewer"))
}

/// The first owner of a new project: the caller, or for administrators whoever
/// `ownerId` names.
async fn first_owner(state: &AppState, caller: &Caller, owner_id: Option<&str>) -> ApiResult<UserRow> {
    let Some(owner_id) = owner_id else {
        let principal = caller.principal.as_ref().ok_or_else(|| {
            ApiError::invalid("ownerId", "is required with an admin key, which belongs to no user; name the owner")
        })?;
        return Ok(state.store.user_by_id(principal.id).await?);
    };
    if !caller.has_role(Role::Admin) {
        return Err(ApiError::Forbidden(
            "Only administrators may name a project's owner; leave ownerId out to become the owner yourself."
                .to_string(),
        ));
    }
    let unknown = || ApiError::invalid("ownerId", "is not the id of a user in this realm");
    let owner_id = PublicId::parse(owner_id).ok_or_else(unknown)?;
    state.store.user_by_public_id(caller.realm_id, owner_id.as_str()).await.map_err(|error| match error {
        StoreError::NotFound => unknown(),
        other => other.into(),
    })
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = Project), (status = 403, body = proto::Problem), (status = 409, body = proto::Problem),
        (status = 422, body = proto::Problem)))]
pub async fn create_project(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    validate::object_name(&body.name).map_err(|detail| ApiError::invalid("name", detail))?;
    validate::free_text(&body.description, validate::MAX_DESCRIPTION_CHARS)
        .map_err(|detail| ApiError::invalid("description", detail))?;
    let owner = first_owner(&state, &caller, body.owner_id.as_deref()).await?;
    let public_id = new_public_id();
    let now = OffsetDateTime::now_utc();
    let mut mutation = state.store.begin().await?;
    let new = NewProject {
        public_id: public_id.as_str(),
        realm_id: caller.realm_id,
        name: &body.name,
        description: &body.description,
        created_by: &caller.actor(),
        now,
    };
    mutation.insert_project(&new, owner.id).await?;
    let detail = format!("{} owner=user:{}", body.name, owner.public_id);
    let event = audit_event(&caller, "project.create", format!("project:{public_id}"), detail);
    commit(&state, mutation, event).await?;
    let user_id = caller.principal.as_ref().map(|principal| principal.id);
    let created = state.store.project_by_public_id(caller.realm_id, public_id.as_str(), user_id).await?;
    Ok((StatusCode::CREATED, Json(project_dto(created.project, created.role))))
}

#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", params(PageQuery),
    responses((status = 200, body = Page<Project>)))]
pub async fn list_projects(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Project>>> {
    let limit = page_limit(query.limit)?;
    let after = decode_cursor(query.cursor.as_deref())?;
    let rows = state
        .store
        .list_projects(&ProjectQuery {
            realm_id: caller.realm_id,
            user_id: caller.principal.as_ref().map(|principal| principal.id),
            collaborating_only: !caller.has_role(Role::Admin),
            after,
            limit,
        })
        .await?;
    let count = rows.len();
    let last = rows.last().map(|row| row.project.id);
    let items = rows.into_iter().map(|row| project_dto(row.project, row.role)).collect();
    Ok(Json(Page { items, next_cursor: next_cursor(count, limit, last) }))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = Project), (status = 404, body = proto::Problem)))]
pub async fn get_project(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Project>> {
    let (project, access) = load_project(&state, &caller, &id).await?;
    require(access, ProjectAction::Read)?;
    Ok(Json(project_dto(project, access.role)))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn delete_project(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let (project, access) = load_project(&state, &caller, &id).await?;
    require(access, ProjectAction::Admin)?;
    let mut mutation = state.store.begin().await?;
    require_in_mutation(&mut mutation, &caller, project.id, ProjectAction::Admin).await?;
    mutation.delete_project(project.id).await.map_err(crate::error::not_found("project"))?;
    let event = audit_event(&caller, "project.delete", format!("project:{}", project.public_id), project.name.clone());
    commit(&state, mutation, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/collaborators", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Collaborator>), (status = 404, body = proto::Problem)))]
pub async fn list_collaborators(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<Collaborator>>> {
    let (project, access) = load_project(&state, &caller, &id).await?;
    require(access, ProjectAction::Read)?;
    let rows = state.store.project_collaborators(project.id).await?;
    Ok(Json(rows.into_iter().map(collaborator_dto).collect()))
}

/// Refuses a change that would leave the project without the owner it has.
fn refuse_last_owner(owners: u64, current: Option<ProjectRole>, new: Option<ProjectRole>) -> ApiResult<()> {
    if removes_last_owner(owners, current, new) {
        return Err(ApiError::Conflict {
            field: Some("role".to_string()),
            detail: "This is the project's last owner; make another collaborator an owner first.".to_string(),
        });
    }
    Ok(())
}

#[utoipa::path(put, path = "/api/v1/projects/{id}/collaborators/{userId}", tag = "projects",
    params(("id" = String, Path), ("userId" = String, Path)), request_body = SetCollaborator,
    responses((status = 200, body = Collaborator), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn set_collaborator(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, user_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetCollaborator>,
) -> ApiResult<Json<Collaborator>> {
    let (project, access) = load_project(&state, &caller, &id).await?;
    require(access, ProjectAction::Admin)?;
    let user = load_user(&state, &caller, &user_id).await?;
    let role = parse_project_role(&body.role)?;
    let mut mutation = state.store.begin().await?;
    require_in_mutation(&mut mutation, &caller, project.id, ProjectAction::Admin).await?;
    // Read inside the transaction, so two owners cannot demote each other at once.
    let current = mutation.collaborator_role(project.id, user.id).await?;
    refuse_last_owner(mutation.owner_count(project.id).await?, current, Some(role))?;
    mutation.set_collaborator(project.id, user.id, role, OffsetDateTime::now_utc()).await?;
    let (action, detail) = match current {
        None => ("project.collaborator.add", format!("user:{} role={}", user.public_id, role.as_str())),
        Some(old) => (
            "project.collaborator.update",
            format!("user:{} role={} (was {})", user.public_id, role.as_str(), old.as_str()),
        ),
    };
    let event = audit_event(&caller, action, format!("project:{}", project.public_id), detail);
    commit(&state, mutation, event).await?;
    Ok(Json(collaborator_dto(state.store.project_collaborator(project.id, user.id).await?)))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}/collaborators/{userId}", tag = "projects",
    params(("id" = String, Path), ("userId" = String, Path)),
    responses((status = 204), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem)))]
pub async fn remove_collaborator(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, user_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let (project, access) = load_project(&state, &caller, &id).await?;
    require(access, ProjectAction::Admin)?;
    let user = load_user(&state, &caller, &user_id).await?;
    let mut mutation = state.store.begin().await?;
    require_in_mutation(&mut mutation, &caller, project.id, ProjectAction::Admin).await?;
    let Some(current) = mutation.collaborator_role(project.id, user.id).await? else {
        return Err(ApiError::NotFound("collaborator"));
    };
    refuse_last_owner(mutation.owner_count(project.id).await?, Some(current), None)?;
    mutation.remove_collaborator(project.id, user.id).await?;
    let detail = format!("user:{} role={}", user.public_id, current.as_str());
    let event = audit_event(&caller, "project.collaborator.remove", format!("project:{}", project.public_id), detail);
    commit(&state, mutation, event).await?;
    Ok(StatusCode::NO_CONTENT)
}
