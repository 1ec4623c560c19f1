//! Workloads: a launcher registers a run (a workspace, job, app, …) of a user and gets a
//! `kwr_` credential bound to that run. Access tokens exchanged from it carry the
//! workload's id as `sid`; ending the workload revokes the credential and that session
//! id together, on every node.

use crate::api::users::load_user;
use crate::api::{audit_event, commit, decode_cursor, new_public_id, next_cursor, page_limit, parse_id};
use crate::authn::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use keyward_core::{CredentialKind, Role, RoleSet, Secret};
use proto::{CreateWorkload, CreatedWorkload, Page, Workload, WorkloadQuery};
use store::{NewCredential, NewWorkload, RevokedTokenRow, StoreError, WorkloadRow};
use time::OffsetDateTime;

const WHAT: &str = "workload";

/// The kinds of run, as platforms name them.
pub const KINDS: [&str; 6] = ["workspace", "job", "app", "scheduledJob", "launcher", "modelApi"];
/// A model API is served, not run as its user: it gets no credential.
const NO_CREDENTIAL_KIND: &str = "modelApi";
/// How long a session id stays revoked: past the longest access token any realm or
/// client can issue (86,400 s) plus the leeway.
const SID_REVOCATION: time::Duration = time::Duration::seconds(86_400 + keyward_core::jwt::LEEWAY_SECS + 60);

pub fn workload_dto(row: WorkloadRow) -> Workload {
    Workload {
        id: row.public_id,
        user_id: row.user_public_id,
        username: row.username,
        kind: row.kind,
        run_id: row.run_id,
        project_id: row.project_public_id,
        status: if row.ended_at.is_some() { "ended" } else { "running" }.to_string(),
        created_at: row.created_at,
        created_by: row.created_by,
        ended_at: row.ended_at,
    }
}

fn require_launcher(caller: &Caller) -> ApiResult<()> {
    if caller.has_role(Role::Admin) || caller.has_role(Role::WorkloadLauncher) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Workloads are registered by launchers: this needs the workload-launcher or admin role.".to_string(),
        ))
    }
}

/// A run acts as its user, so a launcher may start one only for a user whose roles it
/// holds itself (groups' roles included): the workload-launcher role is never a way to
/// act as an admin or a token manager. Groups are not compared: starting the runs of
/// every team's users is what a launcher is for. Admins start runs for anyone.
///
/// Answers the run credential's ceiling: the roles the user holds now and the ids of the
/// groups they are in, when the caller is not an admin (`None` for an admin's runs). The
/// launcher keeps a copy of the credential, so the run must not gain the roles or groups
/// its user is given later; it keeps working with those it started with.
async fn check_may_launch_for(
    mutation: &mut store::Mutation,
    caller: &Caller,
    user: &store::UserRow,
) -> ApiResult<Option<(RoleSet, Vec<i64>)>> {
    if caller.has_role(Role::Admin) {
        return Ok(None);
    }
    let principal = mutation.load_principal(user.id).await?.ok_or(ApiError::NotFound("user"))?;
    let mut roles = principal.roles;
    if user.kind == crate::api::service_accounts::SERVICE_KIND {
        // What the run would hold: a service account never acts as admin (`Caller::roles`).
        roles.remove(Role::Admin);
    }
    let missing = roles.without(caller.roles());
    if missing == RoleSet::EMPTY {
        return Ok(Some((roles, principal.group_ids)));
    }
    Err(ApiError::Forbidden(format!(
        "{} holds roles this launcher does not ({}); a run for them would act with those privileges. \
         An administrator, or a launcher that holds them, can start it.",
        user.username,
        missing.names().join(", ")
    )))
}

fn check_run_id(run_id: &str) -> ApiResult<()> {
    let visible = run_id.bytes().all(|byte| byte.is_ascii_graphic());
    if run_id.is_empty() || run_id.len() > 128 || !visible {
        return Err(ApiError::invalid("runId", "must be 1 to 128 visible ASCII characters, without spaces"));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/workloads", tag = "workloads", request_body = CreateWorkload,
    responses((status = 201, body = CreatedWorkload), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem), (status = 422, body = proto::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWorkload>,
) -> ApiResult<(StatusCode, Json<CreatedWorkload>)> {
    require_launcher(&caller)?;
    crate::api::refuse_access_token_minting(&caller)?;
    if !KINDS.contains(&body.kind.as_str()) {
        return Err(ApiError::invalid("kind", format!("must be one of {}", KINDS.join(", "))));
    }
    check_run_id(&body.run_id)?;
    let user = load_user(&state, &caller, &body.user_id).await?;
    let project_id = match &body.project_id {
        Some(project) => {
            let id = parse_id(project, "project")?;
            let found = state
                .store
                .project_by_public_id(caller.realm_id, id.as_str(), Some(user.id))
                .await
                .map_err(crate::error::not_found("project"))?;
            if found.role.is_none() {
                return Err(ApiError::invalid("projectId", format!("{} does not collaborate on it", user.username)));
            }
            Some(found.project.id)
        }
        None => None,
    };
    let now = OffsetDateTime::now_utc();
    let public_id = new_public_id();
    let secret = (body.kind != NO_CREDENTIAL_KIND)
        .then(|| Secret::generate(CredentialKind::WorkloadCredential, &mut rand_core::UnwrapErr(rand_core::OsRng)));
    let actor = caller.actor();
    let mut mutation = state.store.begin().await?;
    // Read inside the mutation: no change to the user's roles or groups commits between
    // this read and the run's ceiling being written.
    let ceiling = check_may_launch_for(&mut mutation, &caller, &user).await?;
    let credential_id = match &secret {
        Some(secret) => Some(
            mutation
                .insert_credential(&NewCredential {
                    public_id: new_public_id().as_str(),
                    realm_id: caller.realm_id,
                    kind: CredentialKind::WorkloadCredential,
                    owner_id: Some(user.id),
                    name: &format!("workload:{public_id}"),
                    description: &format!("{} run {}", body.kind, body.run_id),
                    audience: None,
                    secret_prefix: &secret.display_prefix(),
                    digest: state.pepper.digest(secret.expose()),
                    created_at: now,
                    created_by: &actor,
                    expires_at: None,
                })
                .await?,
        ),
        None => None,
    };
    if let (Some(id), Some((roles, group_ids))) = (credential_id, &ceiling) {
        mutation.set_ceiling(id, *roles, group_ids).await?;
    }
    mutation
        .insert_workload(&NewWorkload {
            public_id: public_id.as_str(),
            realm_id: caller.realm_id,
            user_id: user.id,
            kind: &body.kind,
            run_id: &body.run_id,
            project_id,
            credential_id,
            created_at: now,
            created_by: &actor,
        })
        .await
        .map_err(|error| match error {
            StoreError::Conflict { .. } => ApiError::Conflict {
                field: Some("runId".to_string()),
                detail: format!("A workload for run {:?} is already running; end it first.", body.run_id),
            },
            other => other.into(),
        })?;
    let event = audit_event(
        &caller,
        "workload.create",
        format!("workload:{public_id}"),
        format!("user:{} ({}) kind={} run={:?}", user.public_id, user.username, body.kind, body.run_id),
    );
    commit(&state, mutation, event).await?;
    let row = state.store.workload_by_public_id(caller.realm_id, public_id.as_str()).await?;
    let note = secret.is_none().then(|| {
        "modelApi workloads get no credential: a model API serves requests, it does not call platform APIs as a \
         user."
            .to_string()
    });
    Ok((
        StatusCode::CREATED,
        Json(CreatedWorkload {
            workload: workload_dto(row),
            credential: secret.map(|secret| secret.expose().to_string()),
            note,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/workloads", tag = "workloads", params(WorkloadQuery),
    responses((status = 200, body = Page<Workload>), (status = 403, body = proto::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<WorkloadQuery>,
) -> ApiResult<Json<Page<Workload>>> {
    require_launcher(&caller)?;
    let limit = page_limit(query.limit)?;
    let after = decode_cursor(query.cursor.as_deref())?;
    let user = match &query.user_id {
        Some(user_id) => Some(load_user(&state, &caller, user_id).await?.id),
        None => None,
    };
    let rows = state.store.running_workloads(caller.realm_id, user, after, limit).await?;
    let (count, last) = (rows.len(), rows.last().map(|row| row.id));
    let items = rows.into_iter().map(workload_dto).collect();
    Ok(Json(Page { items, next_cursor: next_cursor(count, limit, last) }))
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> ApiResult<WorkloadRow> {
    let id = parse_id(id, WHAT)?;
    state.store.workload_by_public_id(caller.realm_id, id.as_str()).await.map_err(crate::error::not_found(WHAT))
}

#[utoipa::path(get, path = "/api/v1/workloads/{id}", tag = "workloads", params(("id" = String, Path)),
    responses((status = 200, body = Workload), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Workload>> {
    require_launcher(&caller)?;
    Ok(Json(workload_dto(load(&state, &caller, &id).await?)))
}

/// Ends a workload: its credential and every access token exchanged from it (by `sid`)
/// are refused from the next request on, on every node within a second.
#[utoipa::path(delete, path = "/api/v1/workloads/{id}", tag = "workloads", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn end(State(state): State<AppState>, caller: Caller, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    require_launcher(&caller)?;
    let row = load(&state, &caller, &id).await?;
    if row.ended_at.is_some() {
        return Err(ApiError::NotFound(WHAT));
    }
    let now = OffsetDateTime::now_utc();
    let mut mutation = state.store.begin().await?;
    mutation.end_workload(row.id, now, &caller.actor()).await.map_err(crate::error::not_found(WHAT))?;
    if let Some(credential_id) = row.credential_id {
        match mutation.revoke_credential(credential_id, now).await {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let revoked = RevokedTokenRow {
        realm_id: row.realm_id,
        kind: "sid".to_string(),
        value: row.public_id.clone(),
        expires_at: now + SID_REVOCATION,
    };
    mutation.revoke_token(&revoked, now).await?;
    let event = audit_event(
        &caller,
        "workload.end",
        format!("workload:{}", row.public_id),
        format!("{} run {:?}; its credential and tokens are revoked", row.kind, row.run_id),
    );
    commit(&state, mutation, event).await?;
    Ok(StatusCode::NO_CONTENT)
}
