//! Group privileges on the deployer's two permission-bearing resources, infrastructures
//! and API services: listing, granting and revoking, once for both. The handlers decide
//! who may do it and which privilege names are valid; this does the rest.

use crate::api::groups::load_group;
use crate::api::{audit_event, commit};
use crate::authn::Caller;
use crate::deployer::Standing;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use proto::deployer::Grant;
use store::GrantTarget;

/// The grants on `target`, as listed.
pub async fn list(state: &AppState, target: GrantTarget) -> ApiResult<Vec<Grant>> {
    let grants = state.store.grants_on(target).await?;
    Ok(grants
        .into_iter()
        .map(|row| Grant { group_id: row.group_public_id, group_name: row.group_name, privilege: row.privilege })
        .collect())
}

/// What a grant change is about, for the audit log: `infrastructure` or `api_service`,
/// and the resource's public id.
pub struct Audited<'a> {
    pub kind: &'static str,
    pub public_id: &'a str,
}

/// Who may change the grants on a target: `allowed` answers for a caller's standing. It
/// is asked again inside the change, so a caller whose privilege was taken away while
/// the request waited (a loop of requests racing a revocation) changes nothing.
pub type Allowed<'a> = &'a (dyn Fn(&Standing) -> ApiResult<()> + Sync);

async fn begin_checked(state: &AppState, caller: &Caller, allowed: Allowed<'_>) -> ApiResult<store::Mutation> {
    let mut mutation = state.store.begin().await?;
    allowed(&Standing::in_mutation(&mut mutation, caller).await?)?;
    Ok(mutation)
}

/// Gives the group `group_id` (a public id in the caller's realm) `privilege` on
/// `target`, replacing what it held, audited as `{kind}.grant`; answers the grants now.
pub async fn set(
    state: &AppState,
    caller: &Caller,
    (target, allowed): (GrantTarget, Allowed<'_>),
    audited: Audited<'_>,
    group_id: &str,
    privilege: &str,
) -> ApiResult<Vec<Grant>> {
    let group = load_group(state, caller, group_id).await?;
    let mut mutation = begin_checked(state, caller, allowed).await?;
    mutation.set_grant(target, group.id, privilege).await?;
    let detail = format!("group:{} {privilege}", group.public_id);
    let event = audit_event(
        caller,
        &format!("{}.grant", audited.kind),
        format!("{}:{}", audited.kind, audited.public_id),
        detail,
    );
    commit(state, mutation, event).await?;
    list(state, target).await
}

/// Takes the group's privilege on `target` away, audited as `{kind}.revoke`; a group that
/// held none answers 404.
pub async fn remove(
    state: &AppState,
    caller: &Caller,
    (target, allowed): (GrantTarget, Allowed<'_>),
    audited: Audited<'_>,
    group_id: &str,
) -> ApiResult<()> {
    let group = load_group(state, caller, group_id).await?;
    let mut mutation = begin_checked(state, caller, allowed).await?;
    if !mutation.remove_grant(target, group.id).await? {
        return Err(ApiError::NotFound("permission"));
    }
    let detail = format!("group:{}", group.public_id);
    let event = audit_event(
        caller,
        &format!("{}.revoke", audited.kind),
        format!("{}:{}", audited.kind, audited.public_id),
        detail,
    );
    commit(state, mutation, event).await
}
